//! One way to start any of the system's services, or the whole system, for
//! a test: in-process, on random ports, against real servers of the test's
//! own, with a client for it back (in the spirit of zero2prod's
//! `spawn_app`). Every integration test of the workspace starts what it
//! needs through this crate; no service ships test-only constructors.
//!
//! - [`infra`]: the real servers underneath: a fresh PostgreSQL database,
//!   a MongoDB-wire-compatible server, a RabbitMQ vhost, an SMTP catcher.
//! - [`config`]: each service's test configuration.
//! - `spawn_*`: start one service; [`TestApp`] is the running service and
//!   its HTTP client (`get`, `post`, `list_logs`, `stop`).
//! - [`System`]: all six services wired together, for the tests of paths
//!   across services (in `system-tests`).
//! - [`ProcessSystem`]: the six binaries as processes, for what needs one
//!   process per service (traces, log streams); [`otlp`] receives their
//!   traces.

mod app;
pub mod infra;
pub mod otlp;
mod processes;
mod services;
mod system;

pub use app::{TestApp, data};
pub use infra::{
    MailCatcher, MongoServer, RabbitVhost, free_port, fresh_postgres_database, postgres_admin_url,
    wait_for_listener,
};
pub use processes::ProcessSystem;
pub use services::{
    TestAuth, TestListener, TestLogger, config, spawn_auth, spawn_auth_starting, spawn_auth_with,
    spawn_broker, spawn_front_end, spawn_listener, spawn_logger, spawn_logger_with, spawn_mail,
};
pub use system::System;

/// The token key of every service a test starts.
pub const TEST_TOKEN_KEY: &str = "the tests' token key, thirty-two bytes or more"; // check-secrets: a test fixture

/// [`TEST_TOKEN_KEY`] as the services hold it.
pub fn token_key() -> service_kit::token::TokenKey {
    service_kit::token::TokenKey::new(TEST_TOKEN_KEY.as_bytes()).expect("a long enough key")
}

/// A valid access token for the seed user, as a login returns it: every
/// [`TestApp`]'s client sends it, so a test of a route that needs a token
/// is signed in unless it uses a client of its own.
pub fn access_token() -> String {
    token_key().issue(1, "admin@example.com", std::time::Duration::from_secs(3600))
}

/// A new log entry id (24 hex digits), as the broker makes them.
pub fn new_entry_id() -> String {
    bson::oid::ObjectId::new().to_hex()
}

/// Service logs on stderr when `TEST_LOG` is set; quiet otherwise.
/// `host:port[,host:port...]`, as the broker reads `LOGGER_RPC_ADDR`.
pub fn targets(list: &str) -> Vec<resilience::Target> {
    resilience::replicas::parse_targets(list).expect("host:port pairs")
}

pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        service_kit::telemetry::init(service_kit::telemetry::LogFormat::Text, "tests", false);
    }
}

/// Polls `condition` every 100 ms until it holds (`true`) or `limit` has
/// passed (`false`).
pub async fn eventually<F, Fut>(limit: std::time::Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
