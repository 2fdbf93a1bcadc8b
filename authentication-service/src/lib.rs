//! authentication-service: checks credentials against the `users` table in
//! PostgreSQL (SPEC §4).
//!
//! This build serves liveness and readiness (PostgreSQL reachable); the
//! `/authenticate` route is added with the PostgreSQL store.

use service_kit::config::{ConfigError, Env, ServerConfig, Url};
use service_kit::health::{self, Readiness, TcpCheck};
use service_kit::http::HttpServer;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `DATABASE_URL`: the PostgreSQL database holding `users`.
    pub database_url: Url,
    /// `LOGGER_URL`: where login attempts are logged.
    pub logger_url: Url,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, "127.0.0.1:8082")?,
            database_url: env.url(
                "DATABASE_URL",
                "postgres://postgres:password@127.0.0.1:5432/users",
                &["postgres", "postgresql"],
            )?,
            logger_url: env.url("LOGGER_URL", "http://127.0.0.1:8083", &["http", "https"])?,
        })
    }
}

/// Binds the HTTP server and assembles the routes.
pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
    let readiness =
        Readiness::new().with(TcpCheck::for_url("postgres", &config.database_url, 5432));
    HttpServer::bind(
        "authentication-service",
        &config.server,
        health::routes(readiness),
    )
    .await
}
