//! broker-service: the system's single entry point (docs/contracts.md §4).
//!
//! `POST /` answers that the broker was hit; `POST /handle` takes
//! `{"action": ..., "auth"|"log"|"mail": {...}}` and dispatches it.
//! `mail` and `GET /logs` need an access token; logins and mails are
//! limited per client; browsers are answered only from `CORS_ORIGINS`
//! (docs/security.md).

pub mod config;
mod grpc_logger;
mod request;
mod routes;
mod rpc_logger;

use axum::extract::FromRef;
use service_kit::health::{HttpCheck, TcpCheck};
use service_kit::limit::PerClient;
use service_kit::metrics::{Reading, Recorder};
use service_kit::token::TokenKey;
use service_kit::upstream::ServiceClient;
use service_kit::{Bound, Service};
use std::sync::Arc;

pub use config::{Config, Security};

use crate::grpc_logger::GrpcLogger;
use crate::rpc_logger::RpcLogger;

/// The clients to every other service, created once at start and shared by
/// all requests: nothing is dialed per request.
#[derive(Clone)]
struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The clients and settings every request shares, behind one `Arc`: axum
/// clones a handler's state for every request, and a clone of all these
/// (the gRPC channel's, the HTTP clients') cost about a tenth of the
/// broker's CPU on `POST /` (docs/bench/README.md, the flame graph).
struct Shared {
    auth: ServiceClient,
    logger: ServiceClient,
    mail: ServiceClient,
    publisher: Arc<log_queue::Publisher>,
    amqp_calls: Recorder,
    rpc_logger: Arc<RpcLogger>,
    grpc_logger: GrpcLogger,
    token_key: TokenKey,
    trust_forwarded_for: bool,
    login_limit: Arc<PerClient>,
    mail_limit: Arc<PerClient>,
}

impl FromRef<AppState> for TokenKey {
    fn from_ref(state: &AppState) -> TokenKey {
        state.token_key.clone()
    }
}

/// The broker, its port bound (port 0 picks a free port), its clients to
/// every other service made (without dialing).
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    let service = Service::new("broker-service", &config.server);
    let metrics = service.metrics();
    let timeout = config.upstream_timeout;
    let publisher = Arc::new(log_queue::Publisher::new(
        config.amqp_url.to_string(),
        timeout,
    ));
    let rpc_logger = Arc::new(RpcLogger::new(
        config.logger_rpc_addr.clone(),
        timeout,
        metrics.calls_to("logger-service", "tarpc"),
    ));
    let opened = |dependency, transport, count: Box<dyn Fn() -> u64 + Send + Sync>| {
        metrics.register_reading(
            "dependency_connections_opened",
            "Connections made to a dependency: the first, then one after each loss.",
            Reading::Counter,
            &[("dependency", dependency), ("transport", transport)],
            move || i64::try_from(count()).unwrap_or(i64::MAX),
        );
    };
    let rpc = rpc_logger.clone();
    opened(
        "logger-service",
        "tarpc",
        Box::new(move || rpc.connections()),
    );
    let amqp = publisher.clone();
    opened("rabbitmq", "amqp", Box::new(move || amqp.connections()));
    let state = AppState(Arc::new(Shared {
        auth: ServiceClient::new("authentication-service", config.auth_url.clone(), timeout)
            .with_metrics(metrics),
        logger: ServiceClient::new("logger-service", config.logger_url.clone(), timeout)
            .with_metrics(metrics),
        // mail-service itself may take SEND_TIMEOUT_SECS (10) on SMTP.
        mail: ServiceClient::new("mail-service", config.mail_url.clone(), timeout * 3)
            .with_metrics(metrics),
        publisher,
        amqp_calls: metrics.calls_to("rabbitmq", "amqp"),
        rpc_logger,
        grpc_logger: GrpcLogger::new(
            &config.logger_grpc_url,
            timeout,
            metrics.calls_to("logger-service", "grpc"),
        ),
        token_key: config.security.token_key.clone(),
        trust_forwarded_for: config.security.trust_forwarded_for,
        login_limit: Arc::new(PerClient::per_minute(
            "logins",
            config.security.logins_per_minute,
        )),
        mail_limit: Arc::new(PerClient::per_minute(
            "mails",
            config.security.mails_per_minute,
        )),
    }));
    // Each dependency serves only some of the broker's paths: with one
    // down, the broker still routes the others (and answers that path
    // 503), so it stays ready and says it is degraded.
    service
        .origins(config.security.origins.clone())
        .routes(routes::router(state))
        .degraded_without(HttpCheck::readyz(
            "authentication-service",
            &config.auth_url,
        ))
        .degraded_without(HttpCheck::readyz("logger-service", &config.logger_url))
        .degraded_without(HttpCheck::readyz("mail-service", &config.mail_url))
        .degraded_without(TcpCheck::for_url(
            "rabbitmq",
            &config.amqp_url,
            proto::ports::RABBITMQ,
        ))
        .bind()
        .await
}
