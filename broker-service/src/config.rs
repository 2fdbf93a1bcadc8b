//! The broker's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use service_kit::config::{ConfigError, Env, ServerConfig, Url};

const HTTP: &[&str] = &["http", "https"];

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `AUTH_URL`: authentication-service's HTTP base URL.
    pub auth_url: Url,
    /// `LOGGER_URL`: logger-service's HTTP base URL.
    pub logger_url: Url,
    /// `LOGGER_RPC_ADDR`: logger-service's tarpc `host:port`.
    pub logger_rpc_addr: String,
    /// `LOGGER_GRPC_URL`: logger-service's gRPC endpoint.
    pub logger_grpc_url: Url,
    /// `MAIL_URL`: mail-service's HTTP base URL.
    pub mail_url: Url,
    /// `AMQP_URL`: RabbitMQ.
    pub amqp_url: Url,
    /// `UPSTREAM_TIMEOUT_SECS`: the longest one call to another service may
    /// take (default 5); past it the broker answers 504.
    pub upstream_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, "127.0.0.1:8080")?,
            auth_url: env.url("AUTH_URL", "http://127.0.0.1:8082", HTTP)?,
            logger_url: env.url("LOGGER_URL", "http://127.0.0.1:8083", HTTP)?,
            logger_rpc_addr: env.host_port("LOGGER_RPC_ADDR", "127.0.0.1:5001")?,
            logger_grpc_url: env.url("LOGGER_GRPC_URL", "http://127.0.0.1:50001", HTTP)?,
            mail_url: env.url("MAIL_URL", "http://127.0.0.1:8084", HTTP)?,
            amqp_url: env.url(
                "AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                &["amqp", "amqps"],
            )?,
            upstream_timeout: env.seconds("UPSTREAM_TIMEOUT_SECS", "5")?,
        })
    }
}
