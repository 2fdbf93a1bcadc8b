//! listener-service: consumes log events from RabbitMQ and stores them
//! through the logger (SPEC §4). Its HTTP port serves health only.
//!
//! This build serves liveness and readiness (RabbitMQ and the logger
//! reachable); the consumer is added with the AMQP path.

use service_kit::config::{ConfigError, Env, ServerConfig, Url};
use service_kit::health::{self, HttpCheck, Readiness, TcpCheck};
use service_kit::http::HttpServer;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `AMQP_URL`: RabbitMQ.
    pub amqp_url: Url,
    /// `LOGGER_URL`: where consumed events are stored.
    pub logger_url: Url,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, "127.0.0.1:8085")?,
            amqp_url: env.url(
                "AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                &["amqp", "amqps"],
            )?,
            logger_url: env.url("LOGGER_URL", "http://127.0.0.1:8083", &["http", "https"])?,
        })
    }
}

/// Binds the HTTP server and assembles the routes.
pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
    let readiness = Readiness::new()
        .with(TcpCheck::for_url("rabbitmq", &config.amqp_url, 5672))
        .with(HttpCheck::healthz("logger-service", &config.logger_url));
    HttpServer::bind(
        "listener-service",
        &config.server,
        health::routes(readiness),
    )
    .await
}
