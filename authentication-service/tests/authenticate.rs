//! `POST /authenticate` against a real PostgreSQL database created fresh for
//! each test, over real HTTP.

use std::time::{Duration, Instant};

use authentication_service::{Application, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::{ServerConfig, Url};
use service_kit::shutdown::CancellationToken;
use sqlx::Connection;

struct TestAuth {
    base: String,
    database_url: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_on(database_url: String) -> TestAuth {
    service_kit::telemetry::init_for_tests();
    let config = Config {
        server: ServerConfig::for_tests(),
        database_url: Url::parse(&database_url).unwrap(),
        // Nothing listens here: logins must not depend on the logger.
        logger_url: Url::parse(&format!("http://127.0.0.1:{}", test_support::free_port())).unwrap(),
        migrate_timeout: Duration::from_secs(10),
    };
    let app = Application::build(config)
        .await
        .expect("the service builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    TestAuth {
        base,
        database_url,
        client,
        shutdown,
    }
}

async fn spawn() -> TestAuth {
    spawn_on(test_support::fresh_postgres_database().await).await
}

impl TestAuth {
    async fn login(&self, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/authenticate", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn insert_user(&self, email: &str, password: &str, active: bool) {
        let hash = bcrypt::hash(password, authentication_service::passwords::BCRYPT_COST).unwrap();
        let mut conn = sqlx::PgConnection::connect(&self.database_url)
            .await
            .unwrap();
        sqlx::query("INSERT INTO users (email, first_name, last_name, password, user_active) VALUES ($1, 'T', 'User', $2, $3)")
            .bind(email)
            .bind(hash)
            .bind(active)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

fn unauthorized() -> Value {
    json!({"error": true, "message": "invalid credentials"})
}

#[tokio::test]
async fn the_seed_user_logs_in_and_no_hash_leaves_the_service() {
    let auth = spawn().await;
    let (status, body) = auth
        .login(json!({"email": "admin@example.com", "password": "verysecret"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["error"], false);
    assert_eq!(body["message"], "Logged in user admin@example.com");
    let user = body["data"].as_object().expect("the user");
    assert_eq!(user["email"], "admin@example.com");
    assert_eq!(user["active"], true);
    assert!(user["id"].as_i64().is_some());
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&str> = user.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(!body.to_string().contains("$2b$"), "a hash leaked: {body}");
}

#[tokio::test]
async fn the_email_matches_case_insensitively() {
    let auth = spawn().await;
    let (status, body) = auth
        .login(json!({"email": "ADMIN@Example.COM", "password": "verysecret"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["email"], "admin@example.com");
}

#[tokio::test]
async fn wrong_password_unknown_user_and_inactive_user_get_the_same_401() {
    let auth = spawn().await;
    auth.insert_user("sleeper@example.com", "rightpassword", false)
        .await;
    for body in [
        json!({"email": "admin@example.com", "password": "wrong"}),
        json!({"email": "nobody@example.com", "password": "verysecret"}),
        json!({"email": "sleeper@example.com", "password": "rightpassword"}),
        json!({"email": "", "password": ""}),
    ] {
        let (status, answer) = auth.login(body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(answer, unauthorized(), "{body}");
    }
    // An active user with the same password does log in.
    auth.insert_user("awake@example.com", "rightpassword", true)
        .await;
    let (status, _) = auth
        .login(json!({"email": "awake@example.com", "password": "rightpassword"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_unknown_user_costs_about_as_much_time_as_a_wrong_password() {
    let auth = spawn().await;
    let timed = |body: Value| {
        let auth = &auth;
        async move {
            let mut best = Duration::MAX;
            for _ in 0..3 {
                let started = Instant::now();
                let (status, _) = auth.login(body.clone()).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED);
                best = best.min(started.elapsed());
            }
            best
        }
    };
    let wrong_password = timed(json!({"email": "admin@example.com", "password": "wrong"})).await;
    let unknown_user = timed(json!({"email": "nobody@example.com", "password": "wrong"})).await;
    // Without the dummy hash an unknown user answers some 50x faster.
    assert!(
        unknown_user * 3 >= wrong_password,
        "unknown user {unknown_user:?} vs wrong password {wrong_password:?}"
    );
}

#[tokio::test]
async fn a_password_over_72_bytes_is_a_400() {
    let auth = spawn().await;
    let (status, body) = auth
        .login(json!({"email": "admin@example.com", "password": "a".repeat(73)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "password is longer than 72 bytes");
    // 72 bytes is still checked (and wrong).
    let (status, _) = auth
        .login(json!({"email": "admin@example.com", "password": "a".repeat(72)}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_fields_and_malformed_json_are_400s() {
    let auth = spawn().await;
    let (status, body) = auth.login(json!({"email": "admin@example.com"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing field `password`"),
        "{body}"
    );

    let response = auth
        .client
        .post(format!("{}/authenticate", auth.base))
        .body("{email")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body"),
        "{body}"
    );
}

#[tokio::test]
async fn the_seed_survives_a_second_start() {
    let first = spawn().await;
    let database_url = first.database_url.clone();
    drop(first);
    let second = spawn_on(database_url.clone()).await;
    let (status, _) = second
        .login(json!({"email": "admin@example.com", "password": "verysecret"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut conn = sqlx::PgConnection::connect(&database_url).await.unwrap();
    let admins: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE lower(email) = 'admin@example.com'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn a_burst_of_logins_does_not_stall_other_requests() {
    let auth = spawn().await;
    let burst_started = Instant::now();
    let burst: Vec<_> = (0..24)
        .map(|_| {
            let client = auth.client.clone();
            let url = format!("{}/authenticate", auth.base);
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .json(&json!({"email": "admin@example.com", "password": "verysecret"}))
                    .send()
                    .await;
                assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
                Instant::now()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let probe_started = Instant::now();
    let response = auth
        .client
        .get(format!("{}/readyz", auth.base))
        .send()
        .await
        .unwrap();
    let probe_done = Instant::now();
    assert_eq!(response.status(), StatusCode::OK);
    let mut last_login = burst_started;
    for login in burst {
        last_login = last_login.max(login.await.unwrap());
    }
    // The probe (a database round trip) finished while bcrypt was still busy.
    assert!(
        probe_done < last_login,
        "readyz took {:?}; the burst took {:?}",
        probe_done - probe_started,
        last_login - burst_started
    );
}

#[tokio::test]
async fn readyz_reports_postgres() {
    let auth = spawn().await;
    let body: Value = auth
        .client
        .get(format!("{}/readyz", auth.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["postgres"], "ok", "{body}");
}
