//! What the chassis's test suites share: a server config, a service, and
//! running one on a task of its own.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use service_kit::config::ServerConfig;
use service_kit::http::ConnectionLimits;
use service_kit::shutdown::CancellationToken;
use service_kit::{Bound, Service};
use tokio::task::JoinHandle;

pub fn server(grace: Duration) -> ServerConfig {
    ServerConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        request_timeout: Duration::from_secs(10),
        shutdown_grace: grace,
        limits: ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 64,
        },
    }
}

pub fn service() -> Service {
    Service::new("test-service", &server(Duration::from_secs(2)))
}

/// Runs `bound` on a task with a shutdown token of its own.
pub fn start(
    bound: Bound,
) -> (
    CancellationToken,
    SocketAddr,
    JoinHandle<anyhow::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let task = tokio::spawn(bound.run(shutdown.clone()));
    (shutdown, addr, task)
}

/// The service's result, which must come within `limit`.
pub async fn ended(task: JoinHandle<anyhow::Result<()>>, limit: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(limit, task)
        .await
        .expect("the service ends in time")
        .expect("the service does not panic")
}

pub async fn get_status(addr: SocketAddr, path: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the service answers")
}
