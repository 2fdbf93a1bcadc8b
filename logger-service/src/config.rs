//! The logger's configuration (docs/contracts.md §2), from the environment.

use std::net::SocketAddr;

use proto::ports;
use service_kit::config::{ConfigError, Env, ServerConfig, Url};
use service_kit::token::TokenKey;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `RPC_ADDR`: where the tarpc server listens.
    pub rpc_addr: SocketAddr,
    /// `GRPC_ADDR`: where the gRPC server listens.
    pub grpc_addr: SocketAddr,
    /// `MONGO_URL`: the MongoDB server. May carry credentials, so it is never
    /// logged whole.
    pub mongo_url: Url,
    /// `MONGO_DATABASE`: the database holding the `logs` collection.
    pub mongo_database: String,
    /// `TOKEN_KEY` (or `TOKEN_KEY_FILE`): verifies the access tokens that
    /// `PUT /logs/{id}` and `DELETE /logs` need.
    pub token_key: TokenKey,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

/// The settings that may carry a secret, and so may come from a file
/// (`MONGO_URL_FILE`; `TOKEN_KEY_FILE` is read with the key).
pub const SECRETS: &[&str] = &["MONGO_URL"];

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let env = &env.with_secret_files(SECRETS)?;
        Ok(Self {
            server: ServerConfig::from_env(env, &ports::local(ports::LOGGER_HTTP))?,
            rpc_addr: env.socket_addr("RPC_ADDR", &ports::local(ports::LOGGER_RPC))?,
            grpc_addr: env.socket_addr("GRPC_ADDR", &ports::local(ports::LOGGER_GRPC))?,
            // Only `mongodb://`: the driver is built without its DNS resolver,
            // so a `mongodb+srv://` URL could never connect.
            mongo_url: env.url(
                "MONGO_URL",
                &format!("mongodb://127.0.0.1:{}", ports::MONGODB),
                &["mongodb"],
            )?,
            mongo_database: database_name(env)?,
            token_key: TokenKey::from_env(env)?
                .with_login_hint("log in through the broker (action auth)"),
        })
    }
}

/// MongoDB refuses these characters in database names, and only says so at
/// the first write; refusing them here stops the service at start instead.
fn database_name(env: &Env) -> Result<String, ConfigError> {
    let name = env.string("MONGO_DATABASE", "logs");
    let bad = name.len() > 63
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'));
    if bad {
        return Err(ConfigError {
            variable: "MONGO_DATABASE".to_owned(),
            value: name,
            reason: "must be at most 63 bytes without / \\ . space \" $".to_owned(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a test key of at least thirty-two bytes";

    #[test]
    fn defaults_are_the_native_addresses() {
        let config = Config::from_env(&Env::from_pairs([("TOKEN_KEY", KEY)])).unwrap();
        assert_eq!(config.server.http_addr.to_string(), "127.0.0.1:8083");
        assert_eq!(config.rpc_addr.to_string(), "127.0.0.1:5001");
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50001");
        assert_eq!(config.mongo_url.as_str(), "mongodb://127.0.0.1:27017");
        assert_eq!(config.mongo_database, "logs");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("RPC_ADDR", "5001"),
            ("GRPC_ADDR", "localhost"),
            ("MONGO_URL", "http://127.0.0.1:27017"),
            ("MONGO_URL", "mongodb+srv://cluster.example.com"),
            ("MONGO_DATABASE", "my.logs"),
        ] {
            let err = Config::from_env(&Env::from_pairs([(variable, value), ("TOKEN_KEY", KEY)]))
                .unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }
}
