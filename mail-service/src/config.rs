//! mail-service's configuration (docs/contracts.md §2), from the environment.

use std::time::Duration;

use lettre::Address;
use proto::ports;
use service_kit::config::{ConfigError, Env, Secret, ServerConfig};

/// How the connection to the SMTP server is secured (`MAIL_ENCRYPTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// `none`: plain SMTP, for a local mail catcher.
    None,
    /// `tls`: plain connection upgraded with STARTTLS (usually port 587).
    StartTls,
    /// `ssl`: TLS from the first byte, "SMTPS" (usually port 465).
    Tls,
}

impl Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::StartTls => "tls",
            Encryption::Tls => "ssl",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `MAIL_HOST`, `MAIL_PORT`: the SMTP server.
    pub host: String,
    pub port: u16,
    /// `MAIL_ENCRYPTION`: `none`, `tls` (STARTTLS) or `ssl` (implicit TLS).
    pub encryption: Encryption,
    /// `MAIL_USERNAME`, `MAIL_PASSWORD`: SMTP credentials; none when the
    /// username is empty.
    pub username: String,
    pub password: Secret,
    /// `MAIL_DOMAIN`: the domain this service sends for: its name in the
    /// SMTP greeting (`EHLO`) and the right-hand side of each Message-ID.
    pub domain: String,
    /// `FROM_NAME`, `FROM_ADDRESS`: the sender when a request names none.
    pub from_name: String,
    pub from_address: String,
    /// `SEND_TIMEOUT_SECS`: the longest one send may take, connecting,
    /// greeting and the whole SMTP exchange included (default 10).
    pub send_timeout: Duration,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

/// The settings that may carry a secret, and so may come from a file
/// (`MAIL_USERNAME_FILE`, `MAIL_PASSWORD_FILE`).
pub const SECRETS: &[&str] = &["MAIL_USERNAME", "MAIL_PASSWORD"];

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let env = &env.with_secret_files(SECRETS)?;
        let config = Self {
            server: ServerConfig::from_env(env, &ports::local(ports::MAIL))?,
            host: env.string("MAIL_HOST", "127.0.0.1"),
            port: port(env)?,
            encryption: match env
                .one_of("MAIL_ENCRYPTION", "none", &["none", "tls", "ssl"])?
                .as_str()
            {
                "tls" => Encryption::StartTls,
                "ssl" => Encryption::Tls,
                _ => Encryption::None,
            },
            username: env.string("MAIL_USERNAME", ""),
            password: env.secret("MAIL_PASSWORD"),
            domain: env.string("MAIL_DOMAIN", "localhost"),
            from_name: env.string("FROM_NAME", "Microservices"),
            from_address: env.string("FROM_ADDRESS", "noreply@example.com"),
            send_timeout: env.seconds("SEND_TIMEOUT_SECS", "10")?,
        };
        // Checked here so that a bad sender stops the service at start
        // instead of failing every request that names no sender.
        if let Err(e) = config.from_address.parse::<Address>() {
            return Err(ConfigError {
                variable: "FROM_ADDRESS".to_owned(),
                value: config.from_address,
                reason: format!("not an email address: {e}"),
            });
        }
        Ok(config)
    }
}

/// `MAIL_PORT`: a TCP port from 1 to 65535.
fn port(env: &Env) -> Result<u16, ConfigError> {
    let port: u16 = env.parse("MAIL_PORT", &ports::SMTP.to_string())?;
    if port == 0 {
        return Err(ConfigError {
            variable: "MAIL_PORT".to_owned(),
            value: "0".to_owned(),
            reason: "must be a port from 1 to 65535".to_owned(),
        });
    }
    Ok(port)
}

#[cfg(test)]
mod tests {
    use service_kit::config::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_are_the_native_values() {
        let config = Config::from_env(&Env::default()).unwrap();
        assert_eq!(config.server.http_addr.port(), 8084);
        assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 1025));
        assert_eq!(config.encryption, Encryption::None);
        assert!(config.username.is_empty() && config.password.expose_secret().is_empty());
        assert_eq!(config.from_address, "noreply@example.com");
        assert_eq!(config.send_timeout, Duration::from_secs(10));
    }

    #[test]
    fn encryption_words_map_to_modes() {
        for (word, mode) in [
            ("none", Encryption::None),
            ("TLS", Encryption::StartTls),
            ("ssl", Encryption::Tls),
        ] {
            let env = Env::from_pairs([("MAIL_ENCRYPTION", word)]);
            assert_eq!(Config::from_env(&env).unwrap().encryption, mode);
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("MAIL_PORT", "smtp"),
            ("MAIL_PORT", "0"),
            ("MAIL_PORT", "70000"),
            ("MAIL_ENCRYPTION", "starttls"),
            ("SEND_TIMEOUT_SECS", "0"),
            ("SEND_TIMEOUT_SECS", "-3"),
            ("FROM_ADDRESS", "not an address"),
        ] {
            let err = Config::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{value}: {err}");
        }
    }

    #[test]
    fn the_password_stays_out_of_debug_output() {
        let env = Env::from_pairs([("MAIL_USERNAME", "mailer"), ("MAIL_PASSWORD", "hunter2")]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.password.expose_secret(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
