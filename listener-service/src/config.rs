//! listener-service's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use proto::ports;
use service_kit::config::{ConfigError, Env, ServerConfig, Upstream, Url};

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `AMQP_URL`: RabbitMQ.
    pub amqp_url: Url,
    /// `LOGGER_URL`: where consumed events are stored.
    pub logger_url: Upstream,
    /// `PREFETCH`: how many unacknowledged events this listener holds at
    /// once (default 32).
    pub prefetch: u16,
    /// `RETRY_BACKOFF_SECS`: the wait after the first failed attempt; it
    /// doubles with each further one, up to 5 s (default 0.25).
    pub retry_backoff: Duration,
    /// `LOGGER_TIMEOUT_SECS`: the longest one store call may take (default 5).
    pub logger_timeout: Duration,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

/// The settings that may carry a secret, and so may come from a file
/// (`AMQP_URL_FILE`).
pub const SECRETS: &[&str] = &["AMQP_URL"];

/// `AMQP_URL` (or the file `AMQP_URL_FILE` names): RabbitMQ, as the
/// listener and `replay-dead-letters` read it.
pub fn amqp_url(env: &Env) -> Result<Url, ConfigError> {
    let env = env.with_secret_files(SECRETS)?;
    env.url("AMQP_URL", &ports::local_amqp(), &["amqp", "amqps"])
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let prefetch: u16 = env.parse("PREFETCH", "32")?;
        if prefetch == 0 {
            return Err(ConfigError {
                variable: "PREFETCH".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            server: ServerConfig::from_env(env, &ports::local(ports::LISTENER))?,
            amqp_url: amqp_url(env)?,
            logger_url: env.upstream(
                "LOGGER_URL",
                &ports::local_http(ports::LOGGER_HTTP),
                &["http", "https"],
            )?,
            prefetch,
            retry_backoff: env.seconds("RETRY_BACKOFF_SECS", "0.25")?,
            logger_timeout: env.seconds("LOGGER_TIMEOUT_SECS", "5")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_prefetch_is_refused_by_name() {
        let err = Config::from_env(&Env::from_pairs([("PREFETCH", "0")])).unwrap_err();
        assert_eq!(err.variable, "PREFETCH");
        assert_eq!(
            Config::from_env(&Env::from_pairs([("PREFETCH", "x")]))
                .unwrap_err()
                .variable,
            "PREFETCH"
        );
        assert_eq!(Config::from_env(&Env::default()).unwrap().prefetch, 32);
    }
}
