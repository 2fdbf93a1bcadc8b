//! [`ApiError`]: the one place where a failure becomes a status code and
//! the `{"error":true,"message":...}` envelope.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::http::Envelope;

use super::MAX_BODY_BYTES;

/// Every way a request can fail, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the credentials are wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 401: the route needs an access token and the request has none
    /// (`invalid: false`) or one that is not valid ([`crate::token`]).
    #[error("{message}")]
    Unauthenticated { message: String, invalid: bool },
    /// 403: refused whoever asks, such as a browser request from an origin
    /// that is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 415: the body is not declared as JSON ([`JsonBody`]).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413: the body is over [`MAX_BODY_BYTES`].
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// 429: this client (or account) must wait `retry_after` before
    /// trying again.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// 501: the action is known but this build does not serve it.
    #[error("{0}")]
    NotImplemented(String),
    /// 502: a dependency answered with an error.
    #[error("{0}")]
    BadGateway(String),
    /// 503: a dependency is unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// 503: this service is at capacity; the client may retry in a second.
    #[error("{0}")]
    Busy(String),
    /// 504: a dependency (or the request as a whole) took too long.
    #[error("{0}")]
    Timeout(String),
    /// 500: a bug or an unexpected failure; details are logged, not sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A dependency's failure, told apart: the client sees this error's
    /// message, which names the dependency by its role ("logger-service is
    /// unreachable"); `detail` (addresses, the dependency's own words, a
    /// driver's error) goes only to this service's log, in the request's
    /// span and so under its request id.
    pub fn logged(self, detail: impl std::fmt::Display) -> Self {
        tracing::warn!(status = self.status().as_u16(), error = %self, detail = %detail, "a dependency failed");
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::Unauthenticated { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(Envelope::<()>::error(message))).into_response();
        let headers = response.headers_mut();
        match &self {
            // RFC 6750: a 401 names the scheme it wants, and says when the
            // token sent was the problem.
            ApiError::Unauthorized(_) | ApiError::Unauthenticated { invalid: false, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"microservices\""),
                );
            }
            ApiError::Unauthenticated { invalid: true, .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"microservices\", error=\"invalid_token\"",
                    ),
                );
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                // Whole seconds, rounded up, at least one.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            ApiError::Busy(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
