//! authentication-service: checks credentials against the `users` table in
//! PostgreSQL (docs/contracts.md §4).
//!
//! `POST /authenticate` answers 202 with the user (never the hash), or the
//! same 401 for an unknown user, a wrong password and an inactive user, in
//! about the same time. Every attempt is logged to the logger, and a logger
//! outage never fails a login. A successful login carries an access token
//! (`service_kit::token`); failures lock the address for a while
//! ([`lockout`]), and bcrypt runs on at most one thread per core.

mod activity;
pub mod config;
pub mod lockout;
pub mod passwords;
mod routes;
mod store;

use std::sync::Arc;
use std::time::Duration;

use service_kit::health::{self, Readiness};
use service_kit::http::HttpServer;
use service_kit::metrics::Metrics;
use service_kit::shutdown::CancellationToken;
use service_kit::token::TokenKey;
use service_kit::upstream::ServiceClient;

pub use config::Config;

use crate::activity::ActivityLog;
use crate::lockout::Lockout;
use crate::passwords::Passwords;
use crate::store::UserStore;

/// What every request handler shares.
#[derive(Clone)]
struct AppState {
    users: UserStore,
    passwords: Arc<Passwords>,
    activity: ActivityLog,
    lockout: Arc<Lockout>,
    token_key: TokenKey,
    token_ttl: Duration,
}

/// The service, bound to its port, ready to run.
pub struct Application {
    http: HttpServer,
    users: UserStore,
}

impl Application {
    /// Sets up the (lazy) PostgreSQL pool and binds the HTTP listener;
    /// nothing here needs PostgreSQL to be up.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let users =
            UserStore::connect(&config.database_url, config.seed_admin)?.with_metrics(&metrics);
        let passwords = Arc::new(Passwords::new(config.bcrypt).await?);
        let logger = ServiceClient::new(
            "logger-service",
            config.logger_url.clone(),
            Duration::from_secs(2),
        )
        .with_metrics(&metrics);
        let state = AppState {
            users: users.clone(),
            passwords,
            activity: ActivityLog::new(logger),
            lockout: Arc::new(Lockout::new(config.lockout)),
            token_key: config.token_key.clone(),
            token_ttl: config.token_ttl,
        };
        let readiness = Readiness::new().with(users.clone());
        let routes = routes::router(state).merge(health::routes(readiness));
        let http = HttpServer::bind("authentication-service", &config.server, routes)
            .await?
            .with_metrics(metrics);
        Ok(Self { http, users })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// Serves, and applies the migrations in the background as soon as
    /// PostgreSQL answers (until then `/authenticate` is a 503 and `/readyz`
    /// red).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Stopped with the server, whether it ends by shutdown or by failing:
        // a failed server must not leave the process waiting on migrations.
        let stop = shutdown.child_token();
        let migrating = tokio::spawn(self.users.keep_migrating(stop.clone()));
        let served = self.http.run(shutdown).await;
        stop.cancel();
        migrating.await?;
        served
    }
}
