//! authentication-service's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use proto::ports;
use service_kit::config::{ConfigError, Env, ServerConfig, Upstream, Url};
use service_kit::token::TokenKey;

use crate::lockout::LockoutPolicy;
use crate::passwords::BcryptLimits;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `DATABASE_URL`: the PostgreSQL database holding `users`.
    pub database_url: Url,
    /// `LOGGER_URL`: where login attempts are logged.
    pub logger_url: Upstream,
    /// `TOKEN_KEY` (or `TOKEN_KEY_FILE`): signs the access tokens.
    pub token_key: TokenKey,
    /// `TOKEN_TTL_SECS`: how long a token is valid (default 900).
    pub token_ttl: Duration,
    /// `LOCKOUT_AFTER`, `LOCKOUT_BASE_SECS`, `LOCKOUT_MAX_SECS`.
    pub lockout: LockoutPolicy,
    /// `BCRYPT_THREADS`, `BCRYPT_QUEUE_SECS`.
    pub bcrypt: BcryptLimits,
    /// `SEED_ADMIN`: whether the trial user `admin@example.com` /
    /// `verysecret` exists (default false; `make start` and the compose
    /// trial turn it on).
    pub seed_admin: bool,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

/// The settings that may carry a secret, and so may come from a file
/// (`DATABASE_URL_FILE`; `TOKEN_KEY_FILE` is read with the key).
pub const SECRETS: &[&str] = &["DATABASE_URL"];

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let env = &env.with_secret_files(SECRETS)?;
        Ok(Self {
            server: ServerConfig::from_env(env, &ports::local(ports::AUTHENTICATION))?,
            database_url: env.url(
                "DATABASE_URL",
                &format!(
                    "postgres://authentication@127.0.0.1:{}/users",
                    ports::POSTGRES
                ),
                &["postgres", "postgresql"],
            )?,
            logger_url: env.upstream(
                "LOGGER_URL",
                &ports::local_http(ports::LOGGER_HTTP),
                &["http", "https"],
            )?,
            token_key: TokenKey::from_env(env)?,
            token_ttl: env.seconds("TOKEN_TTL_SECS", "900")?,
            lockout: LockoutPolicy {
                after: env.parse("LOCKOUT_AFTER", "5")?,
                base: env.seconds("LOCKOUT_BASE_SECS", "1")?,
                max: env.seconds("LOCKOUT_MAX_SECS", "60")?,
            },
            bcrypt: BcryptLimits {
                threads: env.parse(
                    "BCRYPT_THREADS",
                    &BcryptLimits::default_threads().to_string(),
                )?,
                queue_timeout: env.seconds("BCRYPT_QUEUE_SECS", "2")?,
            },
            seed_admin: env.parse("SEED_ADMIN", "false")?,
        })
    }
}
