//! `POST /authenticate` against a real PostgreSQL database created fresh for
//! each test, over real HTTP.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use test_support::{TestAuth, config, spawn_auth, spawn_auth_starting, spawn_auth_with};

/// `POST /authenticate`: the status and the body as sent.
async fn login(auth: &TestAuth, body: Value) -> (StatusCode, Value) {
    auth.post_json("/authenticate", body).await
}

async fn insert_user(auth: &TestAuth, email: &str, password: &str, active: bool) {
    let hash = bcrypt::hash(password, authentication_service::passwords::BCRYPT_COST).unwrap();
    let mut conn = sqlx::PgConnection::connect(&auth.database_url)
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

fn unauthorized() -> Value {
    json!({"error": true, "message": "invalid credentials"})
}

#[tokio::test]
async fn the_seed_user_logs_in_and_no_hash_leaves_the_service() {
    let auth = spawn_auth().await;
    let (status, body) = login(
        &auth,
        json!({"email": "admin@example.com", "password": "verysecret"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["error"], false);
    assert_eq!(body["message"], "Logged in user admin@example.com");
    let login = body["data"].as_object().expect("the login");
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 900);
    let claims = test_support::token_key()
        .verify(login["access_token"].as_str().expect("a token"))
        .expect("a token the other services accept");
    assert_eq!(claims.sub, "admin@example.com");
    assert_eq!(claims.exp - claims.iat, 900);
    let user = login["user"].as_object().expect("the user");
    assert_eq!(claims.uid, user["id"].as_i64().unwrap());
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
    let auth = spawn_auth().await;
    let (status, body) = login(
        &auth,
        json!({"email": "ADMIN@Example.COM", "password": "verysecret"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["user"]["email"], "admin@example.com");
}

#[tokio::test]
async fn wrong_password_unknown_user_and_inactive_user_get_the_same_401() {
    let auth = spawn_auth().await;
    insert_user(&auth, "sleeper@example.com", "rightpassword", false).await;
    for body in [
        json!({"email": "admin@example.com", "password": "wrong"}),
        json!({"email": "nobody@example.com", "password": "verysecret"}),
        json!({"email": "sleeper@example.com", "password": "rightpassword"}),
        json!({"email": "", "password": ""}),
    ] {
        let (status, answer) = login(&auth, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(answer, unauthorized(), "{body}");
    }
    // An active user with the same password does log in.
    insert_user(&auth, "awake@example.com", "rightpassword", true).await;
    let (status, _) = login(
        &auth,
        json!({"email": "awake@example.com", "password": "rightpassword"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_password_over_72_bytes_is_a_400() {
    let auth = spawn_auth().await;
    let (status, body) = login(
        &auth,
        json!({"email": "admin@example.com", "password": "a".repeat(73)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "password is longer than 72 bytes");
    // 72 bytes is still checked (and wrong).
    let (status, _) = login(
        &auth,
        json!({"email": "admin@example.com", "password": "a".repeat(72)}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_fields_and_malformed_json_are_400s() {
    let auth = spawn_auth().await;
    let (status, body) = login(&auth, json!({"email": "admin@example.com"})).await;
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
        .post(auth.url("/authenticate"))
        .header("content-type", "application/json")
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
    let first = spawn_auth().await;
    let database_url = first.database_url.clone();
    drop(first);
    let second = spawn_auth_with(config::auth(&database_url, config::dead_url("http"))).await;
    let (status, _) = login(
        &second,
        json!({"email": "admin@example.com", "password": "verysecret"}),
    )
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
    let auth = spawn_auth().await;
    let burst_started = Instant::now();
    let burst: Vec<_> = (0..24)
        .map(|_| {
            let client = auth.client.clone();
            let url = auth.url("/authenticate");
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
    let response = auth.client.get(auth.url("/readyz")).send().await.unwrap();
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
    let auth = spawn_auth().await;
    let body: Value = auth
        .client
        .get(auth.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"]["postgres"], "ok", "{body}");
}

#[tokio::test]
async fn the_service_starts_without_its_database_and_gets_ready_when_it_appears() {
    // A database that does not exist yet: PostgreSQL refuses every
    // connection to it, as if it were down.
    let admin = test_support::postgres_admin_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("late_{}_{nanos}", std::process::id());
    let (server, _) = admin.rsplit_once('/').unwrap();
    let database_url = format!("{server}/{name}");
    let auth = spawn_auth_starting(config::auth(&database_url, config::dead_url("http"))).await;

    let (status, _) = auth.get_json("/healthz").await;
    assert_eq!(status, StatusCode::OK, "alive without its database");
    let (status, body) = auth.get_json("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_ne!(body["data"]["postgres"], "ok", "{body}");
    let started = Instant::now();
    let (status, body) = login(
        &auth,
        json!({"email": "admin@example.com", "password": "verysecret"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The database appears: the service migrates it by itself.
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    let ready = test_support::eventually(Duration::from_secs(15), || async {
        auth.get_json("/readyz").await.0 == StatusCode::OK
    })
    .await;
    assert!(ready, "ready once the database is there");
    let (status, body) = login(
        &auth,
        json!({"email": "admin@example.com", "password": "verysecret"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_a_415() {
    let auth = spawn_auth().await;
    let right = json!({"email": "admin@example.com", "password": "verysecret"}).to_string();
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let response = auth
            .client
            .post(auth.url("/authenticate"))
            .header("content-type", content_type)
            .body(right.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], true);
        assert!(body.get("data").is_none(), "no token: {body}");
    }
}

/// A page on another site guessing passwords through the user's browser:
/// every attempt is refused before the password is checked, so none
/// counts toward the address's lockout, and even the right password gets
/// no token (docs/security.md).
#[tokio::test]
async fn cross_site_logins_are_403s_and_none_is_counted() {
    let auth = spawn_auth().await;
    let wrong = json!({"email": "admin@example.com", "password": "guess"});
    let right = json!({"email": "admin@example.com", "password": "verysecret"});
    // Twice the lockout's threshold (5 in a row).
    for _ in 0..10 {
        let (status, envelope) = auth
            .post_from_page("http://evil.example", "/authenticate", &wrong)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{envelope:?}");
        assert!(
            envelope.message.contains("http://evil.example"),
            "{envelope:?}"
        );
    }
    for origin in [
        "http://evil.example",
        "http://localhost",
        "http://127.0.0.1:8081",
    ] {
        let (status, envelope) = auth.post_from_page(origin, "/authenticate", &right).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        assert!(envelope.data.is_none(), "no token for {origin}");
    }
    let (status, body) = login(&auth, right).await;
    assert_eq!(status, StatusCode::ACCEPTED, "not locked out: {body}");
}

#[tokio::test]
async fn repeated_failures_lock_the_address_for_a_while_then_the_user_gets_in() {
    let database_url = test_support::fresh_postgres_database().await;
    let mut config = config::auth(&database_url, config::dead_url("http"));
    config.lockout = authentication_service::lockout::LockoutPolicy {
        after: 3,
        base: Duration::from_secs(2),
        max: Duration::from_secs(2),
    };
    let auth = spawn_auth_with(config).await;
    let wrong = json!({"email": "admin@example.com", "password": "guess"});
    let right = json!({"email": "Admin@example.com", "password": "verysecret"});
    for _ in 0..3 {
        assert_eq!(
            login(&auth, wrong.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused, at once, and saying how
    // long to wait; another address is not affected.
    for body in [wrong.clone(), right.clone()] {
        let started = Instant::now();
        let response = auth
            .client
            .post(auth.url("/authenticate"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "no bcrypt work"
        );
    }
    let (status, _) = login(
        &auth,
        json!({"email": "nobody@example.com", "password": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Attempts while locked do not extend the lock: it ends on time.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = login(&auth, right).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test]
async fn a_flood_past_the_bcrypt_slots_is_refused_with_503_not_queued_for_ever() {
    let database_url = test_support::fresh_postgres_database().await;
    let mut config = config::auth(&database_url, config::dead_url("http"));
    config.bcrypt = authentication_service::passwords::BcryptLimits {
        threads: 1,
        queue_timeout: Duration::from_millis(100),
    };
    let auth = spawn_auth_with(config).await;
    let flood: Vec<_> = (0..16)
        .map(|i| {
            let (client, url) = (auth.client.clone(), auth.url("/authenticate"));
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"email": format!("user{i}@example.com"), "password": "x"}))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().get("retry-after").cloned();
                (response.status(), retry_after)
            })
        })
        .collect();
    let mut busy = 0;
    for answer in flood {
        let (status, retry_after) = answer.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(retry_after.unwrap(), "1");
            }
            other => panic!("{other}"),
        }
    }
    // One bcrypt at a time, each tens of milliseconds: most of the 16 could
    // not get a slot within 100 ms.
    assert!(busy > 0, "no login was refused");
}

#[tokio::test]
async fn without_seed_admin_the_trial_user_is_removed_but_a_real_account_stays() {
    let database_url = test_support::fresh_postgres_database().await;
    let seedless = || {
        let mut config = config::auth(&database_url, config::dead_url("http"));
        config.seed_admin = false;
        config
    };
    let mut auth = spawn_auth_with(seedless()).await;
    let trial = json!({"email": "admin@example.com", "password": "verysecret"});
    assert_eq!(
        login(&auth, trial.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Someone's real account under that address, with its own password, is
    // not the trial user: a restart leaves it alone.
    insert_user(&auth, "admin@example.com", "a password of its own", true).await;
    auth.app.stop().await;
    let auth = spawn_auth_with(seedless()).await;
    let own = json!({"email": "admin@example.com", "password": "a password of its own"});
    assert_eq!(login(&auth, own).await.0, StatusCode::ACCEPTED);
    assert_eq!(login(&auth, trial).await.0, StatusCode::UNAUTHORIZED);
}
