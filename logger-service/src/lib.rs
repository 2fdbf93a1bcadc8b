//! logger-service: stores log entries in MongoDB and serves them over HTTP,
//! tarpc and gRPC (SPEC §4).
//!
//! This build serves liveness and readiness (MongoDB reachable); the log
//! routes and the tarpc and gRPC servers are added with the MongoDB store.

use std::net::SocketAddr;

use service_kit::config::{ConfigError, Env, ServerConfig, Url};
use service_kit::health::{self, Readiness, TcpCheck};
use service_kit::http::HttpServer;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `RPC_ADDR`: where the tarpc server listens.
    pub rpc_addr: SocketAddr,
    /// `GRPC_ADDR`: where the gRPC server listens.
    pub grpc_addr: SocketAddr,
    /// `MONGO_URL`: the MongoDB server.
    pub mongo_url: Url,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, "127.0.0.1:8083")?,
            rpc_addr: env.socket_addr("RPC_ADDR", "127.0.0.1:5001")?,
            grpc_addr: env.socket_addr("GRPC_ADDR", "127.0.0.1:50001")?,
            mongo_url: env.url(
                "MONGO_URL",
                "mongodb://127.0.0.1:27017",
                &["mongodb", "mongodb+srv"],
            )?,
        })
    }
}

/// Binds the HTTP server and assembles the routes.
pub async fn build(config: Config) -> anyhow::Result<HttpServer> {
    let readiness = Readiness::new().with(TcpCheck::for_url("mongodb", &config.mongo_url, 27017));
    HttpServer::bind("logger-service", &config.server, health::routes(readiness)).await
}
