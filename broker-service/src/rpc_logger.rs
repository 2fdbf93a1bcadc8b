//! The logger over tarpc: one multiplexed TCP connection to each of its
//! replicas, shared by every request, dialed on first use and again after
//! it is lost (tarpc clients do not reconnect by themselves); the calls go
//! to the replicas in turn ([`Replicas`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proto::rpc::Json;
use proto::rpc::{LogRpcError, LogServiceClient};
use resilience::{Reconnecting, Replicas, Target};
use service_kit::http::ApiError;
use service_kit::metrics::{Outcome, Recorder};
use service_kit::request_id;
use tarpc::client::{self, RpcError};
use tarpc::context;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections tried for one call, each to the next replica.
const ATTEMPTS: usize = 3;

pub struct RpcLogger {
    timeout: Duration,
    /// Each replica's connection slot.
    replicas: Replicas<Arc<Reconnecting<LogServiceClient>>>,
    dials: AtomicU64,
    calls: Recorder,
}

impl RpcLogger {
    /// The logger's replicas at `targets`. Nothing is dialed until the
    /// first call; each call is counted in `calls`.
    pub fn new(targets: Vec<Target>, timeout: Duration, calls: Recorder) -> Self {
        Self {
            timeout,
            replicas: Replicas::new(targets, |_| Arc::new(Reconnecting::new())),
            dials: AtomicU64::new(0),
            calls,
        }
    }

    /// Connections made so far, to every replica.
    pub fn connections(&self) -> u64 {
        self.dials.load(Ordering::Relaxed)
    }

    /// Writes one entry; answers the logger's `"Processed payload via RPC: <name>"`.
    /// tarpc makes the call's client span itself, and carries its trace
    /// context to the logger in the request's own context.
    pub async fn log(&self, name: &str, data: &str, id: &str) -> Result<String, ApiError> {
        self.calls
            .time(self.call(name, data, id), |answer| match answer {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::of_status(e.status()),
            })
            .await
    }

    async fn call(&self, name: &str, data: &str, id: &str) -> Result<String, ApiError> {
        // A call that finds the connection already gone, or cannot dial,
        // is retried on the next replica's, up to ATTEMPTS in all (a scale
        // down may take several replicas at once); the entry's id keeps a
        // call that did arrive from being stored twice.
        // One deadline for the whole call, waiting for a connection (another
        // caller may be dialing) and the retry included.
        let deadline = Instant::now() + self.timeout;
        for attempt in 1..=ATTEMPTS {
            let replica = self.replicas.pick().await.map_err(|e| {
                ApiError::Unavailable("logger-service RPC is unreachable".into()).logged(e)
            })?;
            let addr = replica.addr();
            let connection = replica.get(|_| true, || self.dial(addr));
            let (number, client) = match tokio::time::timeout_at(deadline.into(), connection)
                .await
                .map_err(|_| self.timed_out())?
            {
                Ok(connected) => connected,
                Err(e) if attempt < ATTEMPTS => {
                    self.replicas.forget(addr);
                    tracing::info!(error = %e, "no RPC connection to this logger-service replica; trying the next");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut ctx = context::current();
            ctx.deadline = deadline;
            if let Some(trace_id) =
                request_id::current().and_then(|id| request_id::to_trace_id(&id))
            {
                ctx.trace_context.trace_id = trace_id.into();
            }
            match client
                .log_info(ctx, name.to_owned(), data.to_owned(), Some(id.to_owned()))
                .await
            {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(LogRpcError::InvalidArgument(m))) => return Err(ApiError::BadRequest(m)),
                // This replica cannot store it (its MongoDB is out of
                // reach); another may.
                Ok(Err(LogRpcError::Unavailable(m))) if attempt < ATTEMPTS => {
                    tracing::info!(reason = %m, "a logger-service replica could not store the entry; trying the next");
                }
                Ok(Err(LogRpcError::Unavailable(m))) => {
                    return Err(ApiError::BadGateway(
                        "logger-service could not store the entry".into(),
                    )
                    .logged(m));
                }
                Err(RpcError::DeadlineExceeded) => return Err(self.timed_out()),
                Err(e @ (RpcError::Shutdown | RpcError::Send(_))) if attempt < ATTEMPTS => {
                    tracing::info!(error = %e, "RPC connection to logger-service lost; trying the next replica");
                    replica.forget(number).await;
                    self.replicas.forget(addr);
                }
                Err(e) => {
                    replica.forget(number).await;
                    self.replicas.refresh();
                    return Err(ApiError::Unavailable("logger-service RPC failed".into()).logged(e));
                }
            }
        }
        Err(ApiError::Unavailable(
            "logger-service RPC connection keeps failing".into(),
        ))
    }

    fn timed_out(&self) -> ApiError {
        ApiError::Timeout(format!(
            "logger-service did not answer over RPC within {} ms",
            self.timeout.as_millis()
        ))
    }

    async fn dial(&self, addr: SocketAddr) -> Result<LogServiceClient, ApiError> {
        let connect = tarpc::serde_transport::tcp::connect(addr, Json::default);
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(transport)) => {
                self.dials.fetch_add(1, Ordering::Relaxed);
                Ok(LogServiceClient::new(client::Config::default(), transport).spawn())
            }
            Ok(Err(e)) => Err(
                ApiError::Unavailable("logger-service RPC is unreachable".into())
                    .logged(format_args!("{addr}: {e}")),
            ),
            Err(_) => Err(
                ApiError::Timeout("connecting to logger-service RPC timed out".into()).logged(addr),
            ),
        }
    }
}
