//! The tarpc server (docs/contracts.md §4): `LogService::log_info` over JSON-framed TCP.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use proto::rpc::{LogRpcError, LogService};
use service_kit::metrics::{Metrics, Outcome, Recorder};
use service_kit::shutdown::CancellationToken;
use service_kit::{request_id, telemetry};
use tarpc::serde_transport::Transport;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::store::{LogStore, NewLog, StoreError};

/// The largest frame a client may send. An entry is at most 64 KiB of data
/// plus a 256-byte name, which JSON escaping can at most grow sixfold.
const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// How long to wait before accepting again after an accept error, so a
/// lack of file descriptors does not turn into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The longest deadline a client may ask for; a longer one is cut to this.
const MAX_DEADLINE_SECS: u64 = 60;
/// Calls one connection may have in flight at once; tarpc answers one more
/// at once with an error instead of taking it on.
const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;

type Request = tarpc::ClientMessage<proto::rpc::LogServiceRequest>;
type Response = tarpc::Response<proto::rpc::LogServiceResponse>;
type Codec = ClampedJson;

/// tarpc's JSON codec, except that a request's deadline is clamped to
/// [`MAX_DEADLINE_SECS`] before tarpc reads it: tarpc adds the duration a
/// client sends to `Instant::now()`, which panics on overflow when the
/// duration is near the maximum.
#[derive(Default)]
pub struct ClampedJson(proto::rpc::Json<Request, Response>);

impl tarpc::tokio_serde::Deserializer<Request> for ClampedJson {
    type Error = serde_json::Error;

    fn deserialize(self: Pin<&mut Self>, src: &BytesMut) -> Result<Request, Self::Error> {
        let mut frame: serde_json::Value = serde_json::from_slice(src)?;
        if let Some(secs) = frame.pointer_mut("/Request/context/deadline/secs")
            && secs.as_u64().is_none_or(|s| s > MAX_DEADLINE_SECS)
        {
            *secs = MAX_DEADLINE_SECS.into();
        }
        serde_json::from_value(frame)
    }
}

impl tarpc::tokio_serde::Serializer<Response> for ClampedJson {
    type Error = serde_json::Error;

    fn serialize(self: Pin<&mut Self>, item: &Response) -> Result<Bytes, Self::Error> {
        Pin::new(&mut self.get_mut().0).serialize(item)
    }
}
type Incoming = tarpc::serde_transport::tcp::Incoming<Request, Response, Codec, fn() -> Codec>;
type ServerTransport = Transport<TcpStream, Request, Response, Codec>;

impl From<StoreError> for LogRpcError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidArgument(m) => LogRpcError::InvalidArgument(m),
            // Not reachable from log_info; kept total for future calls.
            e @ StoreError::NotFound(_) => LogRpcError::InvalidArgument(e.to_string()),
            e @ StoreError::Unavailable(_) => LogRpcError::Unavailable(e.to_string()),
            StoreError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "RPC log_info failed");
                LogRpcError::Unavailable("the entry could not be stored".into())
            }
        }
    }
}

/// Answers `log_info` calls by storing the entry.
#[derive(Clone)]
struct RpcLogService {
    store: LogStore,
    served: Recorder,
}

impl LogService for RpcLogService {
    async fn log_info(
        self,
        context: tarpc::context::Context,
        name: String,
        data: String,
        id: Option<String>,
    ) -> Result<String, LogRpcError> {
        let started = Instant::now();
        // tarpc's server span, in which this runs, as the client names its
        // own: "<service>.<method>".
        telemetry::rename_current("LogService.log_info");
        let request_id = request_id::from_trace_id(context.trace_context.trace_id.into());
        let result = async {
            let entry = NewLog::new(name, data)?.with_id(id.as_deref())?;
            let message = format!("Processed payload via RPC: {}", entry.name());
            self.store.insert(entry).await?;
            Ok::<_, StoreError>(message)
        }
        .await
        .map_err(LogRpcError::from);
        let took = started.elapsed();
        let latency_ms = (took.as_secs_f64() * 1e6).round() / 1e3;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(LogRpcError::InvalidArgument(_)) => Outcome::ClientError,
            Err(_) => Outcome::ServerError,
        };
        self.served.record(outcome, took);
        match &result {
            Ok(_) => tracing::info!(method = "log_info", request_id, latency_ms, "rpc"),
            Err(e) => {
                tracing::info!(method = "log_info", request_id, latency_ms, error = %e, "rpc")
            }
        }
        result
    }
}

/// The tarpc listener, bound and ready to serve.
pub struct RpcServer {
    incoming: Incoming,
    service: RpcLogService,
}

impl RpcServer {
    /// Binds `addr`; each call is counted in `metrics`.
    pub async fn bind(addr: SocketAddr, store: LogStore, metrics: Metrics) -> anyhow::Result<Self> {
        let codec: fn() -> Codec = ClampedJson::default;
        let mut incoming = tarpc::serde_transport::tcp::listen(addr, codec)
            .await
            .with_context(|| format!("cannot listen for RPC on {addr}"))?;
        incoming.config_mut().max_frame_length(MAX_FRAME_BYTES);
        Ok(Self {
            incoming,
            service: RpcLogService {
                store,
                served: metrics.requests_on("tarpc", "log_info"),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.incoming.local_addr()
    }

    /// Accepts connections until `shutdown` is cancelled, then stops
    /// accepting and closes every connection. A call in flight at that
    /// moment gets no answer; its client sees the connection close.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            mut incoming,
            service,
        } = self;
        tracing::info!(addr = %incoming.local_addr(), "RPC listening");
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = incoming.next() => match accepted {
                    Some(Ok(transport)) => {
                        connections.spawn(serve_connection(transport, service.clone(), shutdown.clone()));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "RPC accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    None => anyhow::bail!("the RPC listener closed"),
                },
            }
        }
        drop(incoming);
        // Every connection task watches the token and ends at once.
        while connections.join_next().await.is_some() {}
        tracing::info!("RPC server stopped");
        Ok(())
    }
}

/// Serves one client connection until it closes or `shutdown` is cancelled.
async fn serve_connection(
    transport: ServerTransport,
    service: RpcLogService,
    shutdown: CancellationToken,
) {
    let peer = transport.peer_addr().ok();
    tracing::debug!(?peer, "RPC connection opened");
    let requests = BaseChannel::with_defaults(transport)
        .max_concurrent_requests(MAX_IN_FLIGHT_PER_CONNECTION)
        .execute(service.serve());
    futures::pin_mut!(requests);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            next = requests.next() => match next {
                Some(call) => {
                    tokio::spawn(call);
                }
                None => break,
            },
        }
    }
    tracing::debug!(?peer, "RPC connection closed");
}
