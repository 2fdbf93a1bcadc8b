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
use service_kit::health::TcpCheck;
use service_kit::{Bound, Service};

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

/// The service, its port bound: builds the SMTP transport (without
/// dialing); port 0 picks a free port. Once it stops and in-flight sends
/// are done, the pooled SMTP connections are closed.
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    let from_address = config
        .from_address
        .parse()
        .with_context(|| format!("FROM_ADDRESS {:?} is not an address", config.from_address))?;
    let service = Service::new("mail-service", &config.server);
    let mailer = Mailer::new(&config, service.metrics())?;
    let state = AppState {
        mailer: mailer.clone(),
        default_from: Mailbox::new(Some(config.from_name.clone()), from_address),
        domain: config.domain.clone(),
    };
    service
        .routes(routes::router(state))
        .ready(TcpCheck::new("smtp", &config.host, config.port))
        .on_stop(async move { mailer.close().await })
        .bind()
        .await
}
