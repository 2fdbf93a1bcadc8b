//! Starts the real broker in-process on a random port.
//! Compiled into each test binary; not every binary uses every item.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use broker_service::{Application, Config};
use service_kit::config::{ServerConfig, Url};
use service_kit::shutdown::CancellationToken;
use tokio::task::JoinHandle;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
}

impl TestBroker {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// A port on which nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration whose dependencies are all unreachable.
pub fn config() -> Config {
    let dead = |scheme: &str| Url::parse(&format!("{scheme}://127.0.0.1:{}", dead_port())).unwrap();
    Config {
        server: ServerConfig::for_tests(),
        auth_url: dead("http"),
        logger_url: dead("http"),
        logger_rpc_addr: format!("127.0.0.1:{}", dead_port()),
        logger_grpc_url: dead("http"),
        mail_url: dead("http"),
        amqp_url: dead("amqp"),
        upstream_timeout: Duration::from_secs(2),
    }
}

pub async fn spawn(config: Config) -> TestBroker {
    service_kit::telemetry::init_for_tests();
    let app = Application::build(config).await.expect("the broker builds");
    let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    TestBroker {
        addr,
        shutdown,
        server,
        client,
    }
}
