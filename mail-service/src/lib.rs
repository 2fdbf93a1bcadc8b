//! mail-service: sends mail over SMTP (docs/contracts.md §4).
//!
//! `POST /send` answers 202 once the SMTP server has accepted the mail: one
//! multipart/alternative message with the text as given and an HTML version
//! rendered from a template with its CSS inlined.
//!
//! - [`config`]: the environment, validated at start.
//! - [`compose`]: from a request to a MIME message.
//! - [`mailer`]: the one pooled SMTP transport, each send bounded.

pub mod compose;
pub mod config;
pub mod mailer;
mod routes;

use anyhow::Context as _;
use lettre::message::Mailbox;
use service_kit::health::{self, Readiness, TcpCheck};
use service_kit::http::HttpServer;
use service_kit::metrics::Metrics;
use service_kit::shutdown::CancellationToken;

pub use config::{Config, Encryption};
pub use mailer::{Mailer, SendError};

/// What every request handler shares.
#[derive(Clone)]
struct AppState {
    mailer: Mailer,
    /// `FROM_NAME <FROM_ADDRESS>`, for requests that name no sender.
    default_from: Mailbox,
    /// `MAIL_DOMAIN`, for Message-IDs.
    domain: String,
}

/// The service, bound to its port, ready to run.
pub struct Application {
    http: HttpServer,
    mailer: Mailer,
}

impl Application {
    /// Builds the SMTP transport (without dialing) and binds the HTTP
    /// listener; port 0 picks a free port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let from_address = config
            .from_address
            .parse()
            .with_context(|| format!("FROM_ADDRESS {:?} is not an address", config.from_address))?;
        let default_from = Mailbox::new(Some(config.from_name.clone()), from_address);
        let metrics = Metrics::new();
        let mailer = Mailer::new(&config, &metrics)?;
        let state = AppState {
            mailer: mailer.clone(),
            default_from,
            domain: config.domain.clone(),
        };
        let readiness = Readiness::new().with(TcpCheck::new("smtp", &config.host, config.port));
        let routes = routes::router(state).merge(health::routes(readiness));
        let http = HttpServer::bind("mail-service", &config.server, routes)
            .await?
            .with_metrics(metrics);
        Ok(Self { http, mailer })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Serves until `shutdown` is cancelled and in-flight sends are done,
    /// then closes the pooled SMTP connections.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let result = self.http.run(shutdown).await;
        self.mailer.close().await;
        result
    }
}
