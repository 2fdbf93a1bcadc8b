//! authentication-service's configuration (docs/contracts.md §2), from the environment.

use proto::ports;
use service_kit::config::{ConfigError, Env, ServerConfig, Url};

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
            server: ServerConfig::from_env(env, &ports::local(ports::AUTHENTICATION))?,
            database_url: env.url(
                "DATABASE_URL",
                &format!(
                    "postgres://postgres:password@127.0.0.1:{}/users",
                    ports::POSTGRES
                ),
                &["postgres", "postgresql"],
            )?,
            logger_url: env.logger_url()?,
        })
    }
}
