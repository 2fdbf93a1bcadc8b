//! Configuration from environment variables.
//!
//! Every variable has a default (the native value of docs/contracts.md §2). A variable that
//! is unset or empty takes its default; one that is set but invalid is an
//! error naming the variable, and the service refuses to start.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

mod server;
mod upstream;

pub use server::ServerConfig;
pub use upstream::Upstream;

pub use reqwest::Url;

/// A variable that is set but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub reason: String,
}

/// A value that must never reach a log line: `secrecy`'s string, whose
/// `Debug` form is redacted and whose memory is zeroed on drop. Read it with
/// [`ExposeSecret::expose_secret`].
pub use secrecy::{ExposeSecret, SecretString as Secret};

/// A snapshot of the environment, so configuration can be loaded from the
/// process or, in tests, from a plain list of pairs.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment (variables that are not UTF-8 are skipped).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// This environment where, for each of `secrets` (the settings of a
    /// service that may carry one), a variable `NAME_FILE` that is set
    /// names a file whose content (trailing newlines removed) becomes
    /// `NAME`: how Docker and Kubernetes secrets reach a setting. Setting
    /// both `NAME` and `NAME_FILE`, or naming a file that cannot be read, is
    /// an error. Other `*_FILE` variables (a shell has many) are left alone.
    pub fn with_secret_files(&self, secrets: &[&str]) -> Result<Self, ConfigError> {
        let mut env = self.clone();
        for name in secrets {
            let variable = format!("{name}_FILE");
            let Some(path) = env.get(&variable).map(str::to_owned) else {
                continue;
            };
            if env.get(name).is_some() {
                return Err(env.error(
                    &variable,
                    &path,
                    format!("{name} is set too; set only one"),
                ));
            }
            let content = std::fs::read_to_string(&path)
                .map_err(|e| env.error(&variable, &path, format!("cannot read the file: {e}")))?;
            env.vars.remove(&variable);
            env.vars.insert(
                (*name).to_owned(),
                content.trim_end_matches(['\n', '\r']).to_owned(),
            );
        }
        Ok(env)
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The variable's value, if it is set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A free-form string.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// A value parsed with [`FromStr`].
    pub fn parse<T>(&self, name: &str, default: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let value = self.get(name).unwrap_or(default);
        value
            .parse()
            .map_err(|e: T::Err| self.error(name, value, e))
    }

    /// A secret such as a password (empty when unset).
    pub fn secret(&self, name: &str) -> Secret {
        Secret::from(self.string(name, ""))
    }

    /// A socket address such as `127.0.0.1:8080`.
    pub fn socket_addr(&self, name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        self.parse(name, default)
    }

    /// A `host:port` pair such as `logger-service:5001` (the host may be a name).
    pub fn host_port(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        match value.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(value.to_owned())
            }
            _ => Err(self.error(
                name,
                value,
                "expected host:port with a port from 1 to 65535",
            )),
        }
    }

    /// A URL whose scheme is one of `schemes` and which names a host.
    pub fn url(&self, name: &str, default: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
        self.url_in(name, self.get(name).unwrap_or(default), schemes)
    }

    /// `value`, read as [`Env::url`] reads `name`.
    fn url_in(&self, name: &str, value: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
        let url = Url::parse(value).map_err(|e| self.error(name, value, e))?;
        if !schemes.contains(&url.scheme()) {
            let reason = format!("scheme must be one of {}", schemes.join(", "));
            return Err(self.error(name, value, reason));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(self.error(name, value, "the URL names no host"));
        }
        Ok(url)
    }

    /// A positive duration given in (possibly fractional) seconds.
    pub fn seconds(&self, name: &str, default: &str) -> Result<Duration, ConfigError> {
        let secs: f64 = self.parse(name, default)?;
        let value = self.get(name).unwrap_or(default);
        if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
            return Err(self.error(
                name,
                value,
                "must be a number of seconds between 0 and 86400",
            ));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// One of a fixed set of words, case-insensitively.
    pub fn one_of(&self, name: &str, default: &str, words: &[&str]) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        let lower = value.to_ascii_lowercase();
        if words.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(self.error(name, value, format!("must be one of {}", words.join(", "))))
        }
    }

    fn error(&self, name: &str, value: &str, reason: impl Display) -> ConfigError {
        ConfigError {
            variable: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file holding `content`, removed when dropped.
    struct SecretFile(std::path::PathBuf);

    impl SecretFile {
        fn new(name: &str, content: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("service-kit-{}-{name}", std::process::id()));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for SecretFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const FIXTURE_URL: &str = "postgres://u:s3cret@db:5432/users"; // check-secrets: a test fixture

    #[test]
    fn a_name_file_variable_sets_the_variable_from_the_file() {
        let file = SecretFile::new("url", &format!("{FIXTURE_URL}\n\n"));
        let env = Env::from_pairs([
            ("DATABASE_URL_FILE", file.path()),
            ("EMPTY_FILE", ""),
            ("_FILE", file.path()),
        ])
        .with_secret_files(&["DATABASE_URL", "EMPTY"])
        .unwrap();
        assert_eq!(env.get("DATABASE_URL"), Some(FIXTURE_URL));
        assert_eq!(
            env.get("DATABASE_URL_FILE"),
            None,
            "the file variable is consumed"
        );
        assert_eq!(env.get("EMPTY"), None, "an empty NAME_FILE is unset");
        assert_eq!(env.get(""), None);
    }

    #[test]
    fn a_name_file_beside_its_name_or_unreadable_is_an_error() {
        let file = SecretFile::new("both", "x");
        let both = Env::from_pairs([("MAIL_PASSWORD", "y"), ("MAIL_PASSWORD_FILE", file.path())])
            .with_secret_files(&["MAIL_PASSWORD"])
            .unwrap_err();
        assert_eq!(both.variable, "MAIL_PASSWORD_FILE");
        assert!(both.reason.contains("MAIL_PASSWORD is set too"), "{both}");

        let missing = Env::from_pairs([("AMQP_URL_FILE", "/nonexistent/amqp_url")])
            .with_secret_files(&["AMQP_URL"])
            .unwrap_err();
        assert_eq!(missing.variable, "AMQP_URL_FILE");
        assert!(missing.reason.contains("cannot read the file"), "{missing}");
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = Env::from_pairs([("HTTP_ADDR", "")]);
        let server = ServerConfig::from_env(&env, "127.0.0.1:8080").unwrap();
        assert_eq!(server.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(server.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn a_bad_value_is_refused_with_the_variable_named() {
        let env = Env::from_pairs([("HTTP_ADDR", "localhost-8080")]);
        let err = ServerConfig::from_env(&env, "127.0.0.1:8080").unwrap_err();
        assert_eq!(err.variable, "HTTP_ADDR");
        assert!(
            err.to_string()
                .starts_with("invalid value for HTTP_ADDR=\"localhost-8080\""),
            "{err}"
        );

        let env = Env::from_pairs([("SHUTDOWN_GRACE_SECS", "-1")]);
        let err = ServerConfig::from_env(&env, "127.0.0.1:8080").unwrap_err();
        assert_eq!(err.variable, "SHUTDOWN_GRACE_SECS");
    }

    #[test]
    fn urls_must_have_an_allowed_scheme_and_a_host() {
        let env = Env::from_pairs([("AUTH_URL", "ftp://x"), ("MONGO_URL", "not a url")]);
        assert_eq!(
            env.url("AUTH_URL", "http://127.0.0.1:8082", &["http", "https"])
                .unwrap_err()
                .variable,
            "AUTH_URL"
        );
        assert_eq!(
            env.url("MONGO_URL", "mongodb://127.0.0.1:27017", &["mongodb"])
                .unwrap_err()
                .variable,
            "MONGO_URL"
        );
        let url = env
            .url("LOGGER_URL", "http://127.0.0.1:8083", &["http"])
            .unwrap();
        assert_eq!(url.port(), Some(8083));
    }

    #[test]
    fn host_port_pairs_need_a_host_and_a_port() {
        let env = Env::from_pairs([
            ("A", "logger-service:5001"),
            ("B", "logger-service"),
            ("C", ":5001"),
            ("D", "h:0"),
        ]);
        assert_eq!(env.host_port("A", "x:1").unwrap(), "logger-service:5001");
        for bad in ["B", "C", "D"] {
            assert_eq!(env.host_port(bad, "x:1").unwrap_err().variable, bad);
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let env = Env::from_pairs([("MAIL_PASSWORD", "hunter2")]);
        let secret = env.secret("MAIL_PASSWORD");
        assert_eq!(secret.expose_secret(), "hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn words_are_matched_case_insensitively() {
        let env = Env::from_pairs([("LOG_FORMAT", "JSON"), ("MAIL_ENCRYPTION", "starttls")]);
        assert_eq!(
            env.one_of("LOG_FORMAT", "text", &["text", "json"]).unwrap(),
            "json"
        );
        assert!(
            env.one_of("MAIL_ENCRYPTION", "none", &["none", "tls", "ssl"])
                .is_err()
        );
    }
}
