//! The broker with the real authentication and logger services behind it,
//! each on random ports, against a real PostgreSQL database and a real
//! MongoDB-compatible server.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::{ServerConfig, Url};
use service_kit::shutdown::CancellationToken;
use support::{TestBroker, spawn};
use test_support::MongoServer;
use tokio::task::JoinHandle;

/// A logger-service running in-process; it can be stopped and started
/// again on the same ports.
struct Logger {
    config: logger_service::Config,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Logger {
    async fn start(mongo: &MongoServer) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = logger_service::Config {
            server: ServerConfig::for_tests(),
            rpc_addr: any,
            grpc_addr: any,
            mongo_url: Url::parse(&mongo.url()).unwrap(),
            mongo_database: "logs".into(),
        };
        let mut logger = Self {
            config,
            shutdown: CancellationToken::new(),
            task: None,
        };
        logger.restart().await;
        logger
    }

    /// (Re)starts on the ports of the first start.
    async fn restart(&mut self) {
        let app = logger_service::Application::build(self.config.clone())
            .await
            .expect("the logger builds");
        self.config.server.http_addr.set_port(app.http_port());
        self.config.rpc_addr.set_port(app.rpc_port());
        self.config.grpc_addr.set_port(app.grpc_port());
        self.shutdown = CancellationToken::new();
        self.task = Some(tokio::spawn(app.run(self.shutdown.clone())));
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the logger stops")
                .unwrap()
                .unwrap();
        }
    }

    fn http_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.config.server.http_addr)).unwrap()
    }
}

async fn start_auth(logger_url: Url) -> Url {
    let config = authentication_service::Config {
        server: ServerConfig::for_tests(),
        database_url: Url::parse(&test_support::fresh_postgres_database().await).unwrap(),
        logger_url,
        migrate_timeout: Duration::from_secs(10),
    };
    let app = authentication_service::Application::build(config)
        .await
        .unwrap();
    let url = Url::parse(&format!("http://127.0.0.1:{}", app.port())).unwrap();
    tokio::spawn(app.run(CancellationToken::new()));
    url
}

async fn broker_for(logger: &Logger, auth_url: Url) -> TestBroker {
    let mut config = support::config();
    config.auth_url = auth_url;
    config.logger_url = logger.http_url();
    config.logger_rpc_addr = logger.config.rpc_addr.to_string();
    config.logger_grpc_url = Url::parse(&format!("http://{}", logger.config.grpc_addr)).unwrap();
    spawn(config).await
}

async fn handle(broker: &TestBroker, body: Value) -> (StatusCode, Value) {
    let response = broker
        .client
        .post(broker.url("/handle"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn log_via(broker: &TestBroker, transport: &str, name: &str) -> (StatusCode, Value) {
    handle(broker, json!({"action": "log", "transport": transport, "log": {"name": name, "data": "some data"}})).await
}

async fn recent_names(broker: &TestBroker) -> Vec<String> {
    let response = broker
        .client
        .get(broker.url("/logs?limit=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

const TRANSPORTS: [(&str, &str); 3] = [
    ("rpc", "Processed payload via RPC: entry-rpc"),
    ("http", "Processed payload via HTTP: entry-http"),
    ("grpc", "Processed payload via gRPC: entry-grpc"),
];

#[tokio::test]
async fn each_transport_stores_an_entry_that_get_logs_lists() {
    let mongo = MongoServer::start();
    let logger = Logger::start(&mongo).await;
    let broker = broker_for(&logger, support_dead_url()).await;

    for (transport, message) in TRANSPORTS {
        let (status, body) = log_via(&broker, transport, &format!("entry-{transport}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
        assert_eq!(body, json!({"error": false, "message": message}));
    }
    // No transport named: RPC.
    let (status, body) = handle(
        &broker,
        json!({"action": "log", "log": {"name": "entry-default"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["message"], "Processed payload via RPC: entry-default");
    // The course's own gRPC route.
    let response = broker
        .client
        .post(broker.url("/log-grpc"))
        .json(&json!({"action": "log", "log": {"name": "entry-log-grpc", "data": "d"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let names = recent_names(&broker).await;
    assert_eq!(
        names,
        [
            "entry-log-grpc",
            "entry-default",
            "entry-grpc",
            "entry-http",
            "entry-rpc"
        ],
        "newest first"
    );
}

#[tokio::test]
async fn a_bad_entry_is_refused_on_every_transport_and_nothing_is_stored() {
    let mongo = MongoServer::start();
    let logger = Logger::start(&mongo).await;
    let broker = broker_for(&logger, support_dead_url()).await;
    for (transport, _) in TRANSPORTS {
        for name in ["", "   ", &"n".repeat(257)] {
            let (status, body) = log_via(&broker, transport, name).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{transport} {name:?}: {body}"
            );
        }
    }
    assert!(recent_names(&broker).await.is_empty());
}

#[tokio::test]
async fn auth_passes_through_success_and_401_and_logs_the_attempt() {
    let mongo = MongoServer::start();
    let logger = Logger::start(&mongo).await;
    let auth_url = start_auth(logger.http_url()).await;
    let broker = broker_for(&logger, auth_url).await;

    let (status, body) = handle(
        &broker,
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message"], "Authenticated!");
    assert_eq!(body["data"]["email"], "admin@example.com");

    let (status, body) = handle(
        &broker,
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "nope"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": true, "message": "invalid credentials"})
    );

    // Both attempts reach the logger, in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let names = recent_names(&broker).await;
        if names.iter().filter(|n| *n == "authentication").count() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "login attempts not logged: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn auth_down_is_a_503() {
    let mongo = MongoServer::start();
    let logger = Logger::start(&mongo).await;
    let broker = broker_for(&logger, support_dead_url()).await;
    let (status, body) = handle(
        &broker,
        json!({"action": "auth", "auth": {"email": "a@b.c", "password": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["message"], "authentication-service is unreachable");
}

#[tokio::test]
async fn every_transport_survives_a_logger_restart() {
    let mongo = MongoServer::start();
    let mut logger = Logger::start(&mongo).await;
    let broker = broker_for(&logger, support_dead_url()).await;
    for (transport, _) in TRANSPORTS {
        let (status, body) = log_via(&broker, transport, "before").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
    }

    logger.stop().await;
    for (transport, _) in TRANSPORTS {
        let started = Instant::now();
        let (status, body) = log_via(&broker, transport, "while-down").await;
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT,
            "{transport}: {status} {body}"
        );
        assert_eq!(body["error"], true);
        // The broker's upstream timeout is 2 s here.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{transport} took {:?}",
            started.elapsed()
        );
    }

    logger.restart().await;
    for (transport, message) in TRANSPORTS {
        let (status, body) = log_via(&broker, transport, &format!("entry-{transport}")).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "first {transport} call after the restart: {body}"
        );
        assert_eq!(body["message"], message);
    }
}

fn support_dead_url() -> Url {
    Url::parse(&format!("http://127.0.0.1:{}", test_support::free_port())).unwrap()
}
