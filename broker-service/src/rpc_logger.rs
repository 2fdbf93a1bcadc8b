//! The logger over tarpc: one multiplexed TCP connection, shared by every
//! request, dialed on first use and again after it is lost (tarpc clients
//! do not reconnect by themselves).

use std::time::{Duration, Instant};

use proto::rpc::{LogRpcError, LogServiceClient};
use service_kit::http::ApiError;
use tarpc::client::{self, RpcError};
use tarpc::context;
use tarpc::tokio_serde::formats::Json;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RpcLogger {
    addr: String,
    timeout: Duration,
    /// The live connection, numbered so a failed caller only drops the
    /// connection it used, never a newer one.
    client: Mutex<Option<(u64, LogServiceClient)>>,
    dials: std::sync::atomic::AtomicU64,
}

impl RpcLogger {
    /// Nothing is dialed until the first call.
    pub fn new(addr: String, timeout: Duration) -> Self {
        Self {
            addr,
            timeout,
            client: Mutex::new(None),
            dials: Default::default(),
        }
    }

    /// Writes one entry; answers the logger's `"Processed payload via RPC: <name>"`.
    pub async fn log(&self, name: &str, data: &str) -> Result<String, ApiError> {
        // A call that finds the connection already gone was never sent, so
        // it is retried once on a fresh connection.
        for attempt in 0..2 {
            let (generation, client) = self.client().await?;
            let mut ctx = context::current();
            ctx.deadline = Instant::now() + self.timeout;
            match client.log_info(ctx, name.to_owned(), data.to_owned()).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(LogRpcError::InvalidArgument(m))) => return Err(ApiError::BadRequest(m)),
                Ok(Err(LogRpcError::Unavailable(m))) => {
                    return Err(ApiError::BadGateway(format!(
                        "logger-service could not store the entry: {m}"
                    )));
                }
                Err(RpcError::DeadlineExceeded) => {
                    return Err(ApiError::Timeout(format!(
                        "logger-service did not answer over RPC within {} ms",
                        self.timeout.as_millis()
                    )));
                }
                Err(e @ (RpcError::Shutdown | RpcError::Send(_))) if attempt == 0 => {
                    tracing::info!(error = %e, "RPC connection to logger-service lost; reconnecting");
                    self.forget(generation).await;
                }
                Err(e) => {
                    self.forget(generation).await;
                    return Err(ApiError::Unavailable(format!(
                        "logger-service RPC failed: {e}"
                    )));
                }
            }
        }
        Err(ApiError::Unavailable(
            "logger-service RPC connection keeps failing".into(),
        ))
    }

    /// The live client, dialing a new connection if there is none. The lock
    /// makes concurrent callers share one dial instead of racing.
    async fn client(&self) -> Result<(u64, LogServiceClient), ApiError> {
        let mut slot = self.client.lock().await;
        if let Some((generation, client)) = slot.as_ref() {
            return Ok((*generation, client.clone()));
        }
        let connect = tarpc::serde_transport::tcp::connect(&self.addr, Json::default);
        let transport = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(transport)) => transport,
            Ok(Err(e)) => {
                return Err(ApiError::Unavailable(format!(
                    "logger-service RPC at {} is unreachable: {e}",
                    self.addr
                )));
            }
            Err(_) => {
                return Err(ApiError::Timeout(format!(
                    "connecting to logger-service RPC at {} timed out",
                    self.addr
                )));
            }
        };
        let client = LogServiceClient::new(client::Config::default(), transport).spawn();
        let generation = self
            .dials
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some((generation, client.clone()));
        Ok((generation, client))
    }

    /// Drops the connection numbered `generation`, if it is still the live one.
    async fn forget(&self, generation: u64) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|(live, _)| *live == generation) {
            *slot = None;
        }
    }
}
