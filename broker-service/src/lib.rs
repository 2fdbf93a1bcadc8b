//! broker-service: the system's single entry point (docs/contracts.md §4).
//!
//! `POST /` answers that the broker was hit; `POST /handle` takes
//! `{"action": ..., "auth"|"log"|"mail": {...}}` and dispatches it.

pub mod config;
mod grpc_logger;
mod routes;
mod rpc_logger;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use service_kit::health::{self, HttpCheck, Readiness, TcpCheck};
use service_kit::http::HttpServer;
use service_kit::shutdown::CancellationToken;
use service_kit::upstream::ServiceClient;
use tower_http::cors::{Any, CorsLayer};

pub use config::Config;

use crate::grpc_logger::GrpcLogger;
use crate::rpc_logger::RpcLogger;

/// The clients to every other service, created once at start and shared by
/// all requests: nothing is dialed per request.
#[derive(Clone)]
struct AppState {
    auth: ServiceClient,
    logger: ServiceClient,
    mail: ServiceClient,
    publisher: Arc<log_queue::Publisher>,
    rpc_logger: Arc<RpcLogger>,
    grpc_logger: GrpcLogger,
}

/// The broker, bound to its port and ready to run.
pub struct Application {
    http: HttpServer,
}

impl Application {
    /// Binds the HTTP listener (port 0 picks a free port) and assembles the
    /// routes.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Each dependency serves only some of the broker's paths: with one
        // down, the broker still routes the others (and answers that path
        // 503), so it stays ready and says it is degraded.
        let readiness = Readiness::new()
            .with_optional(HttpCheck::readyz(
                "authentication-service",
                &config.auth_url,
            ))
            .with_optional(HttpCheck::readyz("logger-service", &config.logger_url))
            .with_optional(HttpCheck::readyz("mail-service", &config.mail_url))
            .with_optional(TcpCheck::for_url(
                "rabbitmq",
                &config.amqp_url,
                proto::ports::RABBITMQ,
            ));
        let timeout = config.upstream_timeout;
        let state = AppState {
            auth: ServiceClient::new("authentication-service", config.auth_url.clone(), timeout),
            logger: ServiceClient::new("logger-service", config.logger_url.clone(), timeout),
            // mail-service itself may take SEND_TIMEOUT_SECS (10) on SMTP.
            mail: ServiceClient::new("mail-service", config.mail_url.clone(), timeout * 3),
            publisher: Arc::new(log_queue::Publisher::new(
                config.amqp_url.to_string(),
                timeout,
            )),
            rpc_logger: Arc::new(RpcLogger::new(config.logger_rpc_addr.clone(), timeout)),
            grpc_logger: GrpcLogger::new(&config.logger_grpc_url, timeout)?,
        };
        let routes = routes::router(state).merge(health::routes(readiness));
        let http = HttpServer::bind("broker-service", &config.server, routes)
            .await?
            .with_cors(cors());
        Ok(Self { http })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.http.run(shutdown).await
    }
}

/// The test page is served from another origin (the front-end), so the
/// broker answers cross-origin requests from any origin, without cookies.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .max_age(Duration::from_secs(300))
}
