//! A JSON-over-HTTP client for calling the system's own services, created
//! once per service and reused (its connection pools are kept warm).
//!
//! The calls are spread over the service's replicas in turn
//! ([`resilience::Replicas`]): each address its names resolve to gets its
//! own pool (the URL is sent to the address, not the name), so a scaled
//! service gets an even share of the calls whatever the DNS order, and one
//! that scales up gets calls within a refresh. An `https` upstream is
//! called by name (its certificate names the host), unbalanced.
//!
//! Every call carries the current request id (`x-request-id`) and is
//! bounded by a timeout, and transport failures map onto the
//! status codes of docs/contracts.md §3: unreachable → 503, too slow → 504, an answer that
//! is not the envelope → 502.

mod client;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use proto::http::Envelope;
use serde_json::Value;

pub use client::ServiceClient;

use crate::http::ApiError;

/// How long a pooled connection may sit idle before it is dropped
/// instead of reused. It must stay below the servers' own limit for an idle
/// keep-alive connection (the header-read timeout, 10 s by default,
/// `HEADER_READ_TIMEOUT_SECS`): a connection reused at the moment the server
/// closes it fails the request sent on it, and a request that may not be
/// repeated (a login, a mail) then fails.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends of one call at most, each to the next replica, when the rules
/// below allow another (a scale-down may take several replicas at once).
/// Every send of a call shares the call's one timeout: a send again gets
/// what is left of it, and none is made once it is spent.
pub const ATTEMPTS: usize = 3;

/// What is left before `deadline`; `None` once it has passed.
pub fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// A reqwest client builder with the pool rule every client of the
/// system's own HTTP servers follows ([`POOL_IDLE_TIMEOUT`]).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(POOL_IDLE_TIMEOUT)
}

/// What a service answered: its status and its envelope.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub envelope: Envelope<Value>,
    /// Its `Retry-After`, in whole seconds, when it sent one.
    pub retry_after: Option<u64>,
}

/// How a call to another service failed: told apart by what the caller
/// may do about it, each with the status it becomes at a handler
/// ([`ApiError`], through `?`). The message names the service by its role
/// ("logger-service is unreachable"); the detail (an address, a driver's
/// error) goes only to this service's log ([`UpstreamError::logged`]).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No replica could be reached: nothing was sent (503).
    #[error("{0} is unreachable")]
    Unreachable(&'static str),
    /// No answer within the call's timeout (504); the callee may still be
    /// at work.
    #[error("{service} did not answer within {} ms", limit.as_millis())]
    TimedOut {
        service: &'static str,
        limit: Duration,
    },
    /// The exchange broke on the way, or the answer was not the envelope
    /// (502).
    #[error("{0}")]
    Failed(String),
    /// A bug, such as a path that makes no URL (500).
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl UpstreamError {
    /// Logs `detail` beside the error, in the current request's span.
    pub fn logged(self, detail: impl std::fmt::Display) -> Self {
        tracing::warn!(status = self.status().as_u16(), error = %self, detail = %detail, "a dependency failed");
        self
    }

    /// The status the error becomes at a handler.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Failed(_) => StatusCode::BAD_GATEWAY,
            UpstreamError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(error: UpstreamError) -> Self {
        match error {
            UpstreamError::Internal(e) => ApiError::Internal(e),
            UpstreamError::Unreachable(_) => ApiError::Unavailable(error.to_string()),
            UpstreamError::TimedOut { .. } => ApiError::Timeout(error.to_string()),
            UpstreamError::Failed(message) => ApiError::BadGateway(message),
        }
    }
}
