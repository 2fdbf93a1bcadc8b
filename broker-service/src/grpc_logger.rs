//! The logger over gRPC: one tonic channel to each of its replicas, shared
//! by every request, the calls going to the replicas in turn
//! ([`Replicas`]). A channel dials lazily and re-dials by itself after its
//! connection is lost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proto::grpc::log_service_client::LogServiceClient;
use proto::grpc::{Log, LogRequest};
use resilience::Replicas;
use service_kit::config::Upstream;
use service_kit::http::ApiError;
use service_kit::metrics::{Outcome, Recorder};
use service_kit::{request_id, telemetry};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

#[derive(Clone)]
pub struct GrpcLogger {
    replicas: Replicas<LogServiceClient<Channel>>,
    timeout: Duration,
    calls: Recorder,
}

impl GrpcLogger {
    /// The logger's replicas at `upstream`; each call is counted in
    /// `calls`.
    pub fn new(upstream: &Upstream, timeout: Duration, calls: Recorder) -> Self {
        let replicas = Replicas::new(upstream.targets(), move |addr| {
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .expect("a socket address makes a valid URI")
                .connect_timeout(Duration::from_secs(2))
                .timeout(timeout)
                .tcp_nodelay(true)
                .connect_lazy();
            LogServiceClient::new(channel)
        });
        Self {
            replicas,
            timeout,
            calls,
        }
    }

    /// Writes one entry; answers the logger's result (`"logged!"`). A
    /// call that failed on the way (the logger's task going away in a
    /// rolling update, a connection reset) is sent again, to the next
    /// replica, up to `ATTEMPTS` in all: the entry's id keeps it single;
    /// so is one a replica answered Unavailable (its MongoDB out of
    /// reach: another replica's may not be). A refusal and a timeout are
    /// not repeated.
    pub async fn log(&self, name: &str, data: &str, id: &str) -> Result<String, ApiError> {
        let started = Instant::now();
        // One timeout for the call: a send again gets what is left of it.
        let deadline = started + self.timeout;
        let mut answer = self.write(name, data, id, self.timeout).await;
        for _ in 1..service_kit::upstream::ATTEMPTS {
            let Some(left) = service_kit::upstream::remaining(deadline) else {
                break;
            };
            match &answer {
                Err((status, addr)) if failed_on_the_way(status) => {
                    tracing::info!(code = ?status.code(), "gRPC call to logger-service failed; sending once more, to the next replica");
                    if let Some(addr) = addr {
                        self.replicas.forget(*addr);
                    }
                    answer = self.write(name, data, id, left).await;
                }
                // This replica cannot store it (its MongoDB is out of
                // reach); another may.
                Err((status, _)) if status.code() == Code::Unavailable => {
                    tracing::info!(
                        reason = status.message(),
                        "a logger-service replica could not store the entry; trying the next"
                    );
                    answer = self.write(name, data, id, left).await;
                }
                _ => break,
            }
        }
        let answer = answer.map_err(|(status, _)| self.failure(&status));
        let outcome = match &answer {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::of_status(e.status()),
        };
        self.calls.record(outcome, started.elapsed());
        answer
    }

    /// One call to the next replica, in a client span named as
    /// OpenTelemetry's RPC conventions have it, whose trace context goes
    /// along as `traceparent` metadata. A failure names the replica's
    /// address, when one was picked.
    async fn write(
        &self,
        name: &str,
        data: &str,
        id: &str,
        timeout: Duration,
    ) -> Result<String, (tonic::Status, Option<SocketAddr>)> {
        let span = service_kit::trace_span!(
            "call",
            otel.name = "logs.LogService/WriteLog",
            otel.kind = "client",
            rpc.system.name = "grpc",
            rpc.method = "logs.LogService/WriteLog",
            peer.service = "logger-service",
            rpc.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let mut request = tonic::Request::new(LogRequest {
            log_entry: Some(Log {
                name: name.to_owned(),
                data: data.to_owned(),
                id: id.to_owned(),
            }),
        });
        request.set_timeout(timeout);
        if let Some(id) = request_id::current().and_then(|id| id.parse().ok()) {
            request.metadata_mut().insert(request_id::HEADER, id);
        }
        if let Some(value) = telemetry::traceparent(&span).and_then(|v| v.parse().ok()) {
            request.metadata_mut().insert(telemetry::TRACEPARENT, value);
        }
        let client = self
            .replicas
            .pick()
            .await
            .map_err(|e| (tonic::Status::unavailable(e.to_string()), None))?;
        let answer = LogServiceClient::clone(&client)
            .write_log(request)
            .instrument(span.clone())
            .await;
        if let Err(status) = &answer {
            span.record(
                "rpc.response.status_code",
                format_args!("{:?}", status.code()),
            );
            span.record("otel.status_code", "ERROR");
        }
        match answer {
            Ok(reply) => Ok(reply.into_inner().result),
            Err(status) => Err((status, Some(client.addr()))),
        }
    }

    fn failure(&self, status: &tonic::Status) -> ApiError {
        match status.code() {
            Code::InvalidArgument => ApiError::BadRequest(status.message().to_owned()),
            Code::DeadlineExceeded | Code::Cancelled => ApiError::Timeout(format!(
                "logger-service did not answer over gRPC within {} ms",
                self.timeout.as_millis()
            )),
            Code::Unavailable => ApiError::Unavailable("logger-service gRPC is unavailable".into())
                .logged(status.message()),
            code => ApiError::BadGateway(format!("logger-service gRPC failed ({code:?})"))
                .logged(status.message()),
        }
    }
}

/// Whether a call failed on the way rather than being answered: tonic gives
/// a status made from a transport or HTTP/2 error a source, and one the
/// logger sent (it is refused, MongoDB is unavailable) none. Neither an
/// answer nor a timeout is worth another send: the logger said it, or the
/// time is up.
fn failed_on_the_way(status: &tonic::Status) -> bool {
    let timed_out = matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled);
    !timed_out && std::error::Error::source(status).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_call_that_failed_on_the_way_is_sent_again() {
        let reset = tonic::Status::from_error(Box::new(std::io::Error::other("connection reset")));
        assert!(failed_on_the_way(&reset));
        // What the logger answered itself, and the time running out, stand.
        assert!(!failed_on_the_way(&tonic::Status::unavailable(
            "MongoDB is unavailable"
        )));
        assert!(!failed_on_the_way(&tonic::Status::invalid_argument(
            "name is empty"
        )));
        assert!(!failed_on_the_way(&tonic::Status::deadline_exceeded(
            "late"
        )));
    }
}
