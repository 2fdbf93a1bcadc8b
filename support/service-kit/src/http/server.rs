//! The HTTP server every service runs: hyper's HTTP/1 connections, each
//! bounded, drained on shutdown for at most the grace period.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceBuilder};

use super::with_conventions;
use crate::metrics::Metrics;

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops
/// accepting and lets in-flight requests finish for at most `grace`.
///
/// Every connection is bounded: a client has `limits.header_read_timeout`
/// to send a request's headers (a silent, slow or idle keep-alive
/// connection is closed after it), and past `limits.max_connections` open
/// connections a new one is closed at once, so a crowd of slow clients
/// cannot take every socket.
pub async fn serve<S, B>(
    listener: TcpListener,
    app: S,
    shutdown: CancellationToken,
    grace: Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<axum::BoxError>,
{
    // HTTP/1 only (every client of these servers speaks it: browsers over
    // plain HTTP, curl, reqwest, Caddy), served by hyper's own HTTP/1
    // connection: hyper-util's auto-detection would first wait, without any
    // timeout, for a silent client's first bytes.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: pause, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "too many open connections; closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The peer's address, for handlers that limit per client
        // (`ConnectInfo<SocketAddr>`).
        let service = ServiceBuilder::new()
            .map_request(|req: Request<Incoming>| req.map(Body::new))
            .layer(Extension(ConnectInfo(peer)))
            .service(app.clone());
        let service = TowerToHyperService::new(service);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "in-flight requests did not finish in time; closing them");
        }
    }
    Ok(())
}

/// How much of the server one client, or all of them, may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers, an idle
    /// keep-alive connection included.
    pub header_read_timeout: Duration,
    /// Open connections at most; past it a new one is closed at once.
    pub max_connections: usize,
}

/// A service's HTTP server: bound first (so tests can bind port 0 and ask
/// for the port), run later.
pub struct HttpServer {
    service: &'static str,
    listener: TcpListener,
    router: Router,
    request_timeout: Duration,
    origins: crate::origins::Origins,
    metrics: Metrics,
    grace: Duration,
    limits: ConnectionLimits,
}

impl HttpServer {
    /// Binds `config.http_addr`; `routes` are served wrapped in
    /// [`with_conventions`]: answering browsers from `origins` only
    /// ([`crate::origins`]; none when it is empty), counting requests into
    /// `metrics`, which `GET /metrics` serves.
    pub async fn bind(
        service: &'static str,
        config: &crate::config::ServerConfig,
        routes: Router,
        origins: crate::origins::Origins,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        Ok(Self {
            service,
            listener,
            router: routes,
            request_timeout: config.request_timeout,
            origins,
            metrics,
            grace: config.shutdown_grace,
            limits: config.limits,
        })
    }

    /// The bound port (the real one when port 0 was asked for).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` is cancelled, then drains for at most the
    /// configured grace period.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        use anyhow::Context;
        let addr = self.listener.local_addr()?;
        tracing::info!(service = self.service, %addr, "HTTP listening");
        let router = self.router.merge(self.metrics.routes());
        let app = with_conventions(router, self.request_timeout, self.origins, self.metrics);
        serve(self.listener, app, shutdown, self.grace, self.limits)
            .await
            .context("HTTP server failed")
    }
}
