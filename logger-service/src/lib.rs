//! logger-service: stores log entries in MongoDB and serves them over HTTP,
//! tarpc and gRPC (docs/contracts.md §4).
//!
//! - [`config`]: the environment, validated at start.
//! - [`store`]: the MongoDB collection and the one place entries are
//!   validated, shared by every transport.
//! - [`http`], [`rpc`], [`grpc`]: the three ways in.
//!
//! The service starts while MongoDB is down: writes then fail fast with 503
//! / `UNAVAILABLE`, `/readyz` says so, and the index is created once MongoDB
//! answers.

pub mod config;
pub mod grpc;
pub mod http;
pub mod newest;
pub mod rpc;
pub mod store;

use service_kit::{Bound, Service};

pub use config::Config;

use crate::grpc::GrpcServer;
use crate::rpc::RpcServer;
use crate::store::{LogStore, MongoCheck};

/// The logger, its HTTP, tarpc (`"rpc"`) and gRPC (`"grpc"`) listeners
/// bound ([`Bound::addr`]): sets up the MongoDB client without dialing;
/// port 0 picks a free port. If one server fails, the others stop too.
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    let service = Service::new("logger-service", &config.server);
    let metrics = service.metrics().clone();
    let store = LogStore::connect(&config.mongo_url, &config.mongo_database, &metrics).await?;
    tracing::info!(
        mongo_host = config.mongo_url.host_str().unwrap_or_default(),
        database = config.mongo_database,
        "MongoDB client ready"
    );
    let rpc = RpcServer::bind(config.rpc_addr, store.clone(), metrics.clone()).await?;
    let grpc = GrpcServer::bind(
        config.grpc_addr,
        store.clone(),
        metrics,
        config.server.request_timeout,
        config.server.shutdown_grace,
    )
    .await?;
    let (indexes, newest) = (store.clone(), store.clone());
    service
        .routes(http::router(store.clone(), config.token_key.clone()))
        .ready(MongoCheck(store))
        .server_on("rpc", rpc.local_addr(), |stop| rpc.run(stop))
        .server_on("grpc", grpc.local_addr()?, |stop| grpc.run(stop))
        .task("indexes", |stop| indexes.keep_ensuring_indexes(stop))
        .task("newest times", |stop| newest.keep_sharing_newest(stop))
        .bind()
        .await
}
