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

use anyhow::Context as _;
use service_kit::health::{self, Readiness};
use service_kit::http::HttpServer;
use service_kit::metrics::Metrics;
use service_kit::shutdown::CancellationToken;

pub use config::Config;

use crate::grpc::GrpcServer;
use crate::rpc::RpcServer;
use crate::store::{LogStore, MongoCheck};

/// The logger with all three listeners bound, ready to run.
pub struct Application {
    http: HttpServer,
    rpc: RpcServer,
    grpc: GrpcServer,
    store: LogStore,
}

impl Application {
    /// Sets up the MongoDB client (without dialing) and binds the HTTP,
    /// tarpc and gRPC listeners; port 0 picks a free port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let store = LogStore::connect(&config.mongo_url, &config.mongo_database, &metrics).await?;
        tracing::info!(
            mongo_host = config.mongo_url.host_str().unwrap_or_default(),
            database = config.mongo_database,
            "MongoDB client ready"
        );
        let readiness = Readiness::new().with(MongoCheck(store.clone()));
        let routes =
            http::router(store.clone(), config.token_key.clone()).merge(health::routes(readiness));
        let http = HttpServer::bind("logger-service", &config.server, routes)
            .await?
            .with_metrics(metrics.clone());
        let rpc = RpcServer::bind(config.rpc_addr, store.clone(), metrics.clone()).await?;
        let grpc = GrpcServer::bind(
            config.grpc_addr,
            store.clone(),
            metrics,
            config.server.request_timeout,
            config.server.shutdown_grace,
        )
        .await?;
        Ok(Self {
            http,
            rpc,
            grpc,
            store,
        })
    }

    pub fn http_port(&self) -> u16 {
        self.http.port()
    }

    pub fn rpc_port(&self) -> u16 {
        self.rpc.local_addr().port()
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Runs the three servers until `shutdown` is cancelled. If one of them
    /// fails, the others are stopped too and its error is returned.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Cancelled on shutdown, and also when any one server ends.
        let stop = shutdown.child_token();
        let indexing = tokio::spawn(self.store.clone().keep_ensuring_indexes(stop.clone()));
        let sharing = tokio::spawn(self.store.clone().keep_sharing_newest(stop.clone()));

        let (http, rpc, grpc) = tokio::join!(
            stop_all_when_done("http", self.http.run(stop.clone()), &stop),
            stop_all_when_done("rpc", self.rpc.run(stop.clone()), &stop),
            stop_all_when_done("grpc", self.grpc.run(stop.clone()), &stop),
        );
        indexing.await.context("the index task panicked")?;
        sharing.await.context("the newest-times task panicked")?;
        http.and(rpc).and(grpc)
    }
}

/// Runs one server; when it ends, for whatever reason, cancels `stop` so
/// the others end too.
async fn stop_all_when_done(
    name: &'static str,
    server: impl Future<Output = anyhow::Result<()>>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let result = server.await;
    if let Err(e) = &result {
        tracing::error!(
            server = name,
            error = format!("{e:#}"),
            "server failed; stopping the others"
        );
    }
    stop.cancel();
    result
}
