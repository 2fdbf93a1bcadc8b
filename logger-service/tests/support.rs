//! Starts the real logger in-process on random ports, against a MongoDB
//! server of the test's own. Compiled into each test binary; not every
//! binary uses every item.
#![allow(dead_code)]

use std::time::Duration;

use logger_service::{Application, Config};
use proto::http::{Envelope, LogEntry};
use service_kit::config::Url;
use service_kit::shutdown::CancellationToken;
use test_support::MongoServer;
use tokio::task::JoinHandle;

pub struct TestLogger {
    /// `None` once the test has stopped MongoDB.
    pub mongo: Option<MongoServer>,
    pub http_port: u16,
    pub rpc_port: u16,
    pub grpc_port: u16,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
}

impl TestLogger {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, path)
    }

    pub fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `POST /log`; returns the status and the envelope.
    pub async fn post_log(&self, body: serde_json::Value) -> (u16, Envelope) {
        let response = self
            .client
            .post(self.url("/log"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `GET <path>`; returns the status and the envelope.
    pub async fn get(&self, path: &str) -> (u16, Envelope) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `GET /logs` with `query`, which must succeed.
    pub async fn list(&self, query: &str) -> Vec<LogEntry> {
        let (status, envelope) = self.get(&format!("/logs{query}")).await;
        assert_eq!(status, 200, "{envelope:?}");
        serde_json::from_value(envelope.data.expect("a list carries data")).unwrap()
    }

    /// Stops the application and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the logger stops in time")
            .unwrap()
            .unwrap();
    }
}

/// A fresh MongoDB server and a logger using it.
pub async fn spawn() -> TestLogger {
    let mongo = MongoServer::start();
    let config = Config::for_tests(Url::parse(&mongo.url()).unwrap());
    spawn_with(Some(mongo), config).await
}

pub async fn spawn_with(mongo: Option<MongoServer>, config: Config) -> TestLogger {
    service_kit::telemetry::init_for_tests();
    let app = Application::build(config).await.expect("the logger builds");
    let (http_port, rpc_port, grpc_port) = (app.http_port(), app.rpc_port(), app.grpc_port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    TestLogger {
        mongo,
        http_port,
        rpc_port,
        grpc_port,
        shutdown,
        server,
        client,
    }
}

/// An entry's data from an envelope.
pub fn entry(envelope: &Envelope) -> LogEntry {
    serde_json::from_value(envelope.data.clone().expect("an entry")).unwrap()
}
