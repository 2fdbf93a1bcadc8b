//! [`Service`]: how every service of the system is assembled. A service
//! names itself, hands over its routes, its readiness checks, its other
//! servers and its background tasks; the builder owns what they share:
//!
//! - one metrics registry ([`Service::metrics`]), served on `GET /metrics`;
//! - the origin rule: no browser is answered unless [`Service::origins`]
//!   says which pages may call ([`crate::origins`]);
//! - the HTTP server with the conventions of docs/contracts.md §3, the
//!   probes (`/healthz`, `/ping`, `/readyz`) included;
//! - one supervisor ([`supervisor`]): when any server ends or the signal
//!   comes, everything is cancelled and drained within the grace period,
//!   with one exit rule;
//! - the binary's start ([`main`]): the runtime, logs and traces, the
//!   configuration, the exit code.
//!
//! ```no_run
//! # use service_kit::{Service, config::ServerConfig, health::TcpCheck};
//! # async fn build(server: ServerConfig, routes: axum::Router) -> anyhow::Result<()> {
//! let bound = Service::new("mail-service", &server)
//!     .routes(routes)
//!     .ready(TcpCheck::new("smtp", "localhost", 1025))
//!     .bind()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod healthcheck;
mod start;
pub mod supervisor;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub use start::main;
use supervisor::{Kind, Part};

use crate::config::ServerConfig;
use crate::health::{self, Readiness, ReadinessCheck};
use crate::http::HttpServer;
use crate::metrics::Metrics;
use crate::origins::Origins;

/// A service being assembled ([`crate::service`]).
pub struct Service {
    name: &'static str,
    server: ServerConfig,
    metrics: Metrics,
    origins: Origins,
    routes: Router,
    readiness: Readiness,
    parts: Vec<Part>,
    addrs: Vec<(&'static str, SocketAddr)>,
    on_stop: Vec<BoxFuture<'static, ()>>,
}

impl Service {
    /// A service called `name` (its name in logs, traces and metrics),
    /// serving HTTP as `server` says.
    pub fn new(name: &'static str, server: &ServerConfig) -> Self {
        Self {
            name,
            server: server.clone(),
            metrics: Metrics::new(),
            origins: Origins::none(),
            routes: Router::new(),
            readiness: Readiness::new(),
            parts: Vec::new(),
            addrs: Vec::new(),
            on_stop: Vec::new(),
        }
    }

    /// The service's one metrics registry: every client, store and server
    /// of the service counts into it, and `GET /metrics` serves it.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The web pages whose browsers may call this service; without this
    /// call none may ([`crate::origins`]). A request from any other origin
    /// is a 403 before any route runs, and the allowed ones get CORS grants,
    /// preflights included (outside every route and fallback, so a
    /// preflight never reaches the 405 fallback).
    pub fn origins(mut self, origins: Origins) -> Self {
        self.origins = origins;
        self
    }

    /// Routes served over HTTP (merged with any given before).
    pub fn routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// A dependency the service cannot work without: `/readyz` is 503
    /// while it fails.
    pub fn ready(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.readiness = self.readiness.with(check);
        self
    }

    /// A dependency only part of the service needs: `/readyz` reports it
    /// and says "degraded", but stays 200.
    pub fn degraded_without(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.readiness = self.readiness.with_optional(check);
        self
    }

    /// Another server (or a consumer) the service runs beside HTTP, already
    /// bound: it gets the stop token, and when it ends, the service ends.
    pub fn server<F, Fut>(mut self, name: &'static str, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.parts.push(Part::new(name, Kind::Server, run));
        self
    }

    /// As [`Service::server`], listening on `addr` ([`Bound::addr`]).
    pub fn server_on<F, Fut>(mut self, name: &'static str, addr: SocketAddr, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.addrs.push((name, addr));
        self.server(name, run)
    }

    /// Background work that may finish on its own, and must stop when the
    /// service stops.
    pub fn task<F, Fut>(mut self, name: &'static str, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.parts
            .push(Part::new(name, Kind::Task, |stop| async move {
                run(stop).await;
                Ok(())
            }));
        self
    }

    /// Runs after every part has ended (closing a pool, say), for at most
    /// the grace period.
    pub fn on_stop(mut self, last: impl Future<Output = ()> + Send + 'static) -> Self {
        self.on_stop.push(Box::pin(last));
        self
    }

    /// Binds the HTTP listener (port 0 picks a free port).
    pub async fn bind(mut self) -> anyhow::Result<Bound> {
        let routes = self.routes.merge(health::routes(self.readiness));
        let http = HttpServer::bind(
            self.name,
            &self.server,
            routes,
            self.origins,
            self.metrics.clone(),
        )
        .await?;
        let port = http.port();
        self.parts
            .insert(0, Part::new("http", Kind::Server, |stop| http.run(stop)));
        Ok(Bound {
            name: self.name,
            port,
            addrs: self.addrs,
            metrics: self.metrics,
            parts: self.parts,
            on_stop: self.on_stop,
            grace: self.server.shutdown_grace,
        })
    }
}

/// A service with its listeners bound, ready to run.
pub struct Bound {
    name: &'static str,
    port: u16,
    addrs: Vec<(&'static str, SocketAddr)>,
    metrics: Metrics,
    parts: Vec<Part>,
    on_stop: Vec<BoxFuture<'static, ()>>,
    grace: Duration,
}

impl Bound {
    /// The HTTP port (the real one when port 0 was asked for).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the server added with [`Service::server_on`] as `name` listens.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs every part until `shutdown` is cancelled or a server ends
    /// ([`supervisor::supervise`]), then the stop hooks.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let result = supervisor::supervise(self.parts, shutdown, self.grace).await;
        for last in self.on_stop {
            if tokio::time::timeout(self.grace, last).await.is_err() {
                tracing::warn!(service = self.name, "a stop hook did not finish in time");
            }
        }
        result
    }
}
