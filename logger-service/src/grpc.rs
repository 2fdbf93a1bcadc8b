//! The gRPC server (docs/contracts.md §4): `logs.LogService/WriteLog` plus the standard
//! `grpc.health.v1.Health` service.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::grpc::log_service_server::{LogService, LogServiceServer};
use proto::grpc::{LogRequest, LogResponse};
use service_kit::metrics::{Metrics, Outcome, Recorder};
use service_kit::shutdown::CancellationToken;
use service_kit::{request_id, telemetry};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};
use tonic_health::server::HealthReporter;
use tracing::Instrument;

use crate::store::{LogStore, NewLog, StoreError};

/// The largest request message accepted; an entry is at most about 64 KiB.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// HTTP/2 streams (calls) one client connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// How often an idle connection is pinged, and how long the answer may
/// take before the connection is dropped: a vanished client does not hold
/// a connection forever.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidArgument(m) => Status::invalid_argument(m),
            e @ StoreError::NotFound(_) => Status::not_found(e.to_string()),
            e @ StoreError::Unavailable(_) => Status::unavailable(e.to_string()),
            StoreError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "gRPC WriteLog failed");
                Status::internal("the entry could not be stored")
            }
        }
    }
}

/// Answers `WriteLog` by storing the entry.
struct GrpcLogService {
    store: LogStore,
    served: Recorder,
}

#[tonic::async_trait]
impl LogService for GrpcLogService {
    async fn write_log(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<LogResponse>, Status> {
        let started = Instant::now();
        let request_id = request
            .metadata()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let span = service_kit::trace_span!(
            "grpc",
            otel.name = "logs.LogService/WriteLog",
            otel.kind = "server",
            rpc.system.name = "grpc",
            rpc.method = "logs.LogService/WriteLog",
            request_id,
            rpc.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let traceparent = request.metadata().get(telemetry::TRACEPARENT);
        telemetry::follow_traceparent(&span, traceparent.and_then(|v| v.to_str().ok()));
        let result: Result<_, Status> = async {
            let log = request
                .into_inner()
                .log_entry
                .ok_or_else(|| Status::invalid_argument("log_entry is required"))?;
            let entry = NewLog::new(log.name, log.data)?.with_id(Some(&log.id))?;
            self.store.insert(entry).await?;
            Ok(Response::new(LogResponse {
                result: "logged!".to_owned(),
            }))
        }
        .instrument(span.clone())
        .await;
        let took = started.elapsed();
        let latency_ms = (took.as_secs_f64() * 1e6).round() / 1e3;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(s) => {
                span.record("rpc.response.status_code", format_args!("{:?}", s.code()));
                match s.code() {
                    Code::InvalidArgument | Code::NotFound => Outcome::ClientError,
                    _ => {
                        span.record("otel.status_code", "ERROR");
                        Outcome::ServerError
                    }
                }
            }
        };
        self.served.record(outcome, took);
        span.in_scope(|| match &result {
            Ok(_) => tracing::info!(method = "WriteLog", request_id, latency_ms, "grpc"),
            Err(s) => {
                tracing::info!(method = "WriteLog", request_id, latency_ms, code = ?s.code(), error = s.message(), "grpc")
            }
        });
        result
    }
}

/// The gRPC listener, bound and ready to serve.
pub struct GrpcServer {
    listener: TcpListener,
    store: LogStore,
    metrics: Metrics,
    request_timeout: Duration,
    grace: Duration,
}

impl GrpcServer {
    pub async fn bind(
        addr: SocketAddr,
        store: LogStore,
        metrics: Metrics,
        request_timeout: Duration,
        grace: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for gRPC on {addr}"))?;
        Ok(Self {
            listener,
            store,
            metrics,
            request_timeout,
            grace,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls
    /// finish for at most the grace period.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<LogServiceServer<GrpcLogService>>()
            .await;
        let logs = LogServiceServer::new(GrpcLogService {
            store: self.store,
            served: self.metrics.requests_on("grpc", "WriteLog"),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let server = tonic::transport::Server::builder()
            .timeout(self.request_timeout)
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize)
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_service(health_service)
            .add_service(logs)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY, small answers wait for the peer's
                // delayed ACK: a 40 ms p99 on unary calls.
                TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                stop_serving(health, shutdown.clone()),
            );
        tracing::info!(%addr, "gRPC listening");
        let drain_deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(self.grace).await;
        };
        tokio::select! {
            result = server => result.context("gRPC server failed")?,
            () = drain_deadline => tracing::warn!(
                grace_ms = self.grace.as_millis() as u64,
                "in-flight gRPC calls did not finish in time; closing them"
            ),
        }
        tracing::info!("gRPC server stopped");
        Ok(())
    }
}

/// Resolves on shutdown, after telling health watchers the service is
/// going away.
async fn stop_serving(health: HealthReporter, shutdown: CancellationToken) {
    shutdown.cancelled().await;
    health
        .set_not_serving::<LogServiceServer<GrpcLogService>>()
        .await;
}
