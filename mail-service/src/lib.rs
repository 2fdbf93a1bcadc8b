//! mail-service: sends mail over SMTP (SPEC §4).
//!
//! This build serves liveness and readiness (the SMTP server reachable); the
//! `/send` route is added with the SMTP transport.

use service_kit::config::{ConfigError, Env, Secret, ServerConfig};
use service_kit::health::{self, Readiness, TcpCheck};
use service_kit::http::HttpServer;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `MAIL_HOST`, `MAIL_PORT`: the SMTP server.
    pub host: String,
    pub port: u16,
    /// `MAIL_ENCRYPTION`: `none`, `tls` (STARTTLS) or `ssl` (implicit TLS).
    pub encryption: String,
    /// `MAIL_USERNAME`, `MAIL_PASSWORD`: SMTP credentials; none when empty.
    pub username: String,
    pub password: Secret,
    /// `MAIL_DOMAIN`: the domain this service sends for.
    pub domain: String,
    /// `FROM_NAME`, `FROM_ADDRESS`: the sender when a request names none.
    pub from_name: String,
    pub from_address: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, "127.0.0.1:8084")?,
            host: env.string("MAIL_HOST", "127.0.0.1"),
            port: env.parse("MAIL_PORT", "1025")?,
            encryption: env.one_of("MAIL_ENCRYPTION", "none", &["none", "tls", "ssl"])?,
            username: env.string("MAIL_USERNAME", ""),
            password: env.secret("MAIL_PASSWORD"),
            domain: env.string("MAIL_DOMAIN", "localhost"),
            from_name: env.string("FROM_NAME", "Microservices"),
            from_address: env.string("FROM_ADDRESS", "noreply@example.com"),
        })
    }
}

/// Binds the HTTP server and assembles the routes.
pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
    let readiness = Readiness::new().with(TcpCheck::new("smtp", &config.host, config.port));
    HttpServer::bind("mail-service", &config.server, health::routes(readiness)).await
}
