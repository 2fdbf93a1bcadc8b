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

use service_kit::token::TokenKey;
use service_kit::upstream::ServiceClient;
use service_kit::{Bound, Service};

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

/// The service, its port bound: sets up the (lazy) PostgreSQL pool, and
/// applies the migrations in the background as soon as PostgreSQL answers
/// (until then `/authenticate` is a 503 and `/readyz` red).
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    let service = Service::new("authentication-service", &config.server);
    let metrics = service.metrics();
    let users = UserStore::connect(&config.database_url, config.seed_admin)?.with_metrics(metrics);
    let logger = ServiceClient::new(
        "logger-service",
        config.logger_url.clone(),
        Duration::from_secs(2),
    )
    .with_metrics(metrics);
    let state = AppState {
        users: users.clone(),
        passwords: Arc::new(Passwords::new(config.bcrypt).await?),
        activity: ActivityLog::new(logger),
        lockout: Arc::new(Lockout::new(config.lockout)),
        token_key: config.token_key.clone(),
        token_ttl: config.token_ttl,
    };
    let migrations = users.clone();
    service
        .routes(routes::router(state))
        .ready(users)
        .task("migrations", |stop| migrations.keep_migrating(stop))
        .bind()
        .await
}
