//! The broker's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use proto::ports;
use resilience::Target;
use service_kit::config::{ConfigError, Env, ServerConfig, Upstream, Url};
use service_kit::origins::Origins;
use service_kit::token::TokenKey;

const HTTP: &[&str] = &["http", "https"];

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `AUTH_URL`: authentication-service's HTTP base URL (or a
    /// comma-separated list of its replicas', as every address below).
    pub auth_url: Upstream,
    /// `LOGGER_URL`: logger-service's HTTP base URL.
    pub logger_url: Upstream,
    /// `LOGGER_RPC_ADDR`: logger-service's tarpc `host:port`.
    pub logger_rpc_addr: Vec<Target>,
    /// `LOGGER_GRPC_URL`: logger-service's gRPC endpoint.
    pub logger_grpc_url: Upstream,
    /// `MAIL_URL`: mail-service's HTTP base URL.
    pub mail_url: Upstream,
    /// `AMQP_URL`: RabbitMQ.
    pub amqp_url: Url,
    /// `UPSTREAM_TIMEOUT_SECS`: the longest one call to another service may
    /// take (default 5); past it the broker answers 504.
    pub upstream_timeout: Duration,
    /// Tokens, origins and rate limits.
    pub security: Security,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

/// What the broker checks before it acts (docs/security.md).
#[derive(Debug, Clone)]
pub struct Security {
    /// `TOKEN_KEY` (or `TOKEN_KEY_FILE`): verifies the access tokens that
    /// `mail` and `GET /logs` need.
    pub token_key: TokenKey,
    /// `CORS_ORIGINS`: the pages a browser may call the broker from
    /// (default: [`service_kit::origins::PAGE_ORIGINS`], the test page on
    /// the front-end's port and behind Caddy under each of the machine's
    /// own names).
    pub origins: Origins,
    /// `TRUST_FORWARDED_FOR`: whether the client is the last address of
    /// `X-Forwarded-For` (only behind a proxy that sets it; default false).
    pub trust_forwarded_for: bool,
    /// `LOGIN_LIMIT_PER_MINUTE`: logins per client a minute (default 20;
    /// 0 is no limit, for load tests only).
    pub logins_per_minute: u32,
    /// `MAIL_LIMIT_PER_MINUTE`: mails per client a minute (default 30; 0
    /// is no limit).
    pub mails_per_minute: u32,
}

/// The broker's settings that may carry a secret, and so may come from a
/// file (`AMQP_URL_FILE`; `TOKEN_KEY_FILE` is read with the key).
pub const SECRETS: &[&str] = &["AMQP_URL"];

impl Security {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            token_key: TokenKey::from_env(env)?.with_login_hint("log in (action auth)"),
            origins: Origins::pages_from_env(env)?,
            trust_forwarded_for: env.parse("TRUST_FORWARDED_FOR", "false")?,
            logins_per_minute: env.parse("LOGIN_LIMIT_PER_MINUTE", "20")?,
            mails_per_minute: env.parse("MAIL_LIMIT_PER_MINUTE", "30")?,
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let env = &env.with_secret_files(SECRETS)?;
        Ok(Self {
            server: ServerConfig::from_env(env, &ports::local(ports::BROKER))?,
            auth_url: env.upstream("AUTH_URL", &ports::local_http(ports::AUTHENTICATION), HTTP)?,
            logger_url: env.upstream("LOGGER_URL", &ports::local_http(ports::LOGGER_HTTP), HTTP)?,
            logger_rpc_addr: env.host_ports("LOGGER_RPC_ADDR", &ports::local(ports::LOGGER_RPC))?,
            logger_grpc_url: env.upstream(
                "LOGGER_GRPC_URL",
                &ports::local_http(ports::LOGGER_GRPC),
                &["http"],
            )?,
            mail_url: env.upstream("MAIL_URL", &ports::local_http(ports::MAIL), HTTP)?,
            amqp_url: env.url("AMQP_URL", &ports::local_amqp(), &["amqp", "amqps"])?,
            upstream_timeout: env.seconds("UPSTREAM_TIMEOUT_SECS", "5")?,
            security: Security::from_env(env)?,
        })
    }
}
