//! authentication-service: checks credentials against the `users` table in
//! PostgreSQL (docs/contracts.md §4).
//!
//! `POST /authenticate` answers 202 with the user (never the hash), or the
//! same 401 for an unknown user, a wrong password and an inactive user, in
//! about the same time. Every attempt is logged to the logger, and a logger
//! outage never fails a login.

mod activity;
pub mod config;
pub mod passwords;
mod routes;
mod store;

use std::sync::Arc;
use std::time::Duration;

use service_kit::health::{self, Readiness};
use service_kit::http::HttpServer;
use service_kit::shutdown::CancellationToken;
use service_kit::upstream::ServiceClient;

pub use config::Config;

use crate::activity::ActivityLog;
use crate::passwords::Passwords;
use crate::store::UserStore;

/// What every request handler shares.
#[derive(Clone)]
struct AppState {
    users: UserStore,
    passwords: Arc<Passwords>,
    activity: ActivityLog,
}

/// The service, migrated and bound to its port, ready to run.
pub struct Application {
    http: HttpServer,
}

impl Application {
    /// Connects to PostgreSQL, runs the migrations (waiting up to
    /// `migrate_timeout` for the database), and binds the HTTP listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let users = UserStore::connect(&config.database_url)?;
        users.migrate(config.migrate_timeout).await?;
        let passwords = Arc::new(Passwords::new().await?);
        let logger = ServiceClient::new(
            "logger-service",
            config.logger_url.clone(),
            Duration::from_secs(2),
        );
        let state = AppState {
            users: users.clone(),
            passwords,
            activity: ActivityLog::new(logger),
        };
        let readiness = Readiness::new().with(users);
        let routes = routes::router(state).merge(health::routes(readiness));
        let http = HttpServer::bind("authentication-service", &config.server, routes).await?;
        Ok(Self { http })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.http.run(shutdown).await
    }
}
