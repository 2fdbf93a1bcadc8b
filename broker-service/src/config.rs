//! The broker's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use proto::ports;
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
            server: ServerConfig::from_env(env, &ports::local(ports::BROKER))?,
            auth_url: env.url("AUTH_URL", &ports::local_http(ports::AUTHENTICATION), HTTP)?,
            logger_url: env.logger_url()?,
            logger_rpc_addr: env.host_port("LOGGER_RPC_ADDR", &ports::local(ports::LOGGER_RPC))?,
            logger_grpc_url: env.url(
                "LOGGER_GRPC_URL",
                &ports::local_http(ports::LOGGER_GRPC),
                HTTP,
            )?,
            mail_url: env.url("MAIL_URL", &ports::local_http(ports::MAIL), HTTP)?,
            amqp_url: env.amqp_url()?,
            upstream_timeout: env.seconds("UPSTREAM_TIMEOUT_SECS", "5")?,
        })
    }
}
