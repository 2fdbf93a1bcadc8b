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

/// The settings that may carry a secret, and so may come from a file named
/// by `NAME_FILE` (docs/contracts.md §2).
pub const FILE_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "MONGO_URL",
    "AMQP_URL",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "TOKEN_KEY",
];

/// A snapshot of the environment, so configuration can be loaded from the
/// process or, in tests, from a plain list of pairs.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment (variables that are not UTF-8 are skipped),
    /// with every `NAME_FILE` read into `NAME` ([`Env::reading_files`]).
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::reading_files(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// `pairs`, where for each setting of [`FILE_SETTINGS`] a variable
    /// `NAME_FILE` that is set names a file whose content (trailing
    /// newlines removed) becomes `NAME`: how Docker and Kubernetes secrets
    /// reach a setting. Setting both `NAME` and `NAME_FILE`, or naming a
    /// file that cannot be read, is an error. Other `*_FILE` variables
    /// (a shell has many) are left alone.
    pub fn reading_files<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let mut env = Self::from_pairs(pairs);
        let named: Vec<(String, String)> = env
            .vars
            .iter()
            .filter(|(_, path)| !path.is_empty())
            .filter_map(|(key, path)| Some((key.strip_suffix("_FILE")?.to_owned(), path.clone())))
            .filter(|(name, _)| FILE_SETTINGS.contains(&name.as_str()))
            .collect();
        for (name, path) in named {
            let variable = format!("{name}_FILE");
            if env.get(&name).is_some() {
                return Err(env.error(
                    &variable,
                    &path,
                    format!("{name} is set too; set only one"),
                ));
            }
            let content = std::fs::read_to_string(&path)
                .map_err(|e| env.error(&variable, &path, format!("cannot read the file: {e}")))?;
            env.vars.remove(&variable);
            env.vars
                .insert(name, content.trim_end_matches(['\n', '\r']).to_owned());
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

    /// One or more `host:port`, comma-separated: the replicas of one
    /// service (its names may each resolve to several).
    pub fn host_ports(
        &self,
        name: &str,
        default: &str,
    ) -> Result<Vec<resilience::Target>, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        let targets =
            resilience::replicas::parse_targets(value).map_err(|e| self.error(name, value, e))?;
        if targets.iter().any(|t| t.port == 0) {
            return Err(self.error(name, value, "a port must be from 1 to 65535"));
        }
        Ok(targets)
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

    /// One or more base URLs of one service's replicas, comma-separated
    /// ([`Upstream`]): each with a scheme of `schemes` and a host, all with
    /// the same scheme and path.
    pub fn upstream(
        &self,
        name: &str,
        default: &str,
        schemes: &[&str],
    ) -> Result<Upstream, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        let mut urls = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let url = self.url_in(name, entry, schemes)?;
            if let Some(first) = urls.first()
                && !Upstream::alike(first, &url)
            {
                return Err(self.error(
                    name,
                    value,
                    "every URL of the list must have the same scheme and path",
                ));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(self.error(name, value, "no URL given"));
        }
        Ok(Upstream { urls })
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

impl Env {
    /// `LOGGER_URL`: logger-service's HTTP base URL, read the same way by
    /// every service that calls it (broker, authentication, listener).
    pub fn logger_url(&self) -> Result<Upstream, ConfigError> {
        let default = proto::ports::local_http(proto::ports::LOGGER_HTTP);
        self.upstream("LOGGER_URL", &default, &["http", "https"])
    }

    /// `AMQP_URL`: RabbitMQ, read the same way by the broker and the
    /// listener.
    pub fn amqp_url(&self) -> Result<Url, ConfigError> {
        let default = format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            proto::ports::RABBITMQ
        );
        self.url("AMQP_URL", &default, &["amqp", "amqps"])
    }
}

/// Where one service's replicas answer: one base URL, or several
/// (natively, replicas on other ports), each of whose host names may
/// resolve to several replicas (compose, Swarm, a Kubernetes headless
/// Service). The clients keep one connection pool per replica address and
/// spread their calls over them ([`resilience::Replicas`],
/// docs/contracts.md §3, "Balancing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    urls: Vec<Url>,
}

impl Upstream {
    /// The first URL: the template of every replica's address.
    pub fn url(&self) -> &Url {
        &self.urls[0]
    }

    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Each URL's `host:port`, to resolve.
    pub fn targets(&self) -> Vec<resilience::Target> {
        self.urls
            .iter()
            .map(|url| resilience::Target {
                host: url
                    .host_str()
                    .unwrap_or_default()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: url.port_or_known_default().unwrap_or(80),
            })
            .collect()
    }

    /// Whether `a` and `b` differ only in host and port.
    fn alike(a: &Url, b: &Url) -> bool {
        a.scheme() == b.scheme() && a.path() == b.path()
    }
}

impl From<Url> for Upstream {
    fn from(url: Url) -> Self {
        Self { urls: vec![url] }
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.urls.iter().map(Url::as_str).collect();
        f.write_str(&urls.join(","))
    }
}

/// Settings every HTTP server of the system takes.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HTTP_ADDR`: where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// `REQUEST_TIMEOUT_SECS`: the longest a request may take (default 30).
    pub request_timeout: Duration,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight work may take to finish
    /// after SIGTERM before the process exits anyway (default 10).
    pub shutdown_grace: Duration,
    /// `HEADER_READ_TIMEOUT_SECS` (default 10) and `MAX_CONNECTIONS`
    /// (default 4096).
    pub limits: crate::http::ConnectionLimits,
}

impl ServerConfig {
    pub fn from_env(env: &Env, default_http_addr: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            http_addr: env.socket_addr("HTTP_ADDR", default_http_addr)?,
            request_timeout: env.seconds("REQUEST_TIMEOUT_SECS", "30")?,
            shutdown_grace: env.seconds("SHUTDOWN_GRACE_SECS", "10")?,
            limits: crate::http::ConnectionLimits {
                header_read_timeout: env.seconds("HEADER_READ_TIMEOUT_SECS", "10")?,
                max_connections: env.parse("MAX_CONNECTIONS", "4096")?,
            },
        })
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

    #[test]
    fn an_upstream_is_one_url_or_a_list_alike_but_for_host_and_port() {
        let env = Env::from_pairs([
            ("ONE", "http://logger-service:8083"),
            ("TWO", "http://127.0.0.1:8083, http://[::1]:9083"),
            ("MIXED", "http://a:1,https://b:2"),
            ("BAD", "http://a:1,b"),
        ]);
        let one = env.upstream("ONE", "", &["http"]).unwrap();
        assert_eq!(one.url().as_str(), "http://logger-service:8083/");
        assert_eq!(one.targets()[0].to_string(), "logger-service:8083");
        let two = env.upstream("TWO", "", &["http"]).unwrap();
        let targets: Vec<String> = two.targets().iter().map(ToString::to_string).collect();
        assert_eq!(targets, ["127.0.0.1:8083", "[::1]:9083"]);
        assert_eq!(two.to_string(), "http://127.0.0.1:8083/,http://[::1]:9083/");
        let defaulted = env.upstream("UNSET", "http://x:80", &["http"]).unwrap();
        assert_eq!(defaulted.targets()[0].port, 80);
        for name in ["MIXED", "BAD"] {
            let err = env.upstream(name, "", &["http", "https"]).unwrap_err();
            assert_eq!(err.variable, name);
        }
    }

    const FIXTURE_URL: &str = "postgres://u:s3cret@db:5432/users"; // check-secrets: a test fixture

    #[test]
    fn a_name_file_variable_sets_the_variable_from_the_file() {
        let file = SecretFile::new("url", &format!("{FIXTURE_URL}\n\n"));
        let env = Env::reading_files([
            ("DATABASE_URL_FILE", file.path()),
            ("EMPTY_FILE", ""),
            ("_FILE", file.path()),
        ])
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
        let both =
            Env::reading_files([("MAIL_PASSWORD", "y"), ("MAIL_PASSWORD_FILE", file.path())])
                .unwrap_err();
        assert_eq!(both.variable, "MAIL_PASSWORD_FILE");
        assert!(both.reason.contains("MAIL_PASSWORD is set too"), "{both}");

        let missing = Env::reading_files([("AMQP_URL_FILE", "/nonexistent/amqp_url")]).unwrap_err();
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
