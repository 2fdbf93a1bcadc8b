//! [`ServerConfig`]: the settings every HTTP server of the system takes.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, Env};

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
