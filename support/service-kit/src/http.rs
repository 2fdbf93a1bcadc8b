//! The HTTP conventions of docs/contracts.md §3, shared by every service:
//!
//! - [`ApiError`]: the one place where failures become status codes and the
//!   `{"error":true,"message":...}` envelope.
//! - [`JsonBody`]: a JSON body with a JSON Content-Type (415 otherwise), at
//!   most [`MAX_BODY_BYTES`], with the parser's message on a bad body; and
//!   [`AnyJsonBody`], the broker's, read whatever its Content-Type says.
//! - [`with_conventions`]: the envelope for unknown routes and methods, the
//!   body limit, the request id, and one log line per request (tower-http's
//!   `TraceLayer`) under a request timeout.
//! - [`serve`]: an HTTP server that drains in-flight requests on shutdown,
//!   for a bounded time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use proto::http::{Envelope, Page};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::metrics::{Metrics, RecordRouteLayer};
use crate::telemetry;

/// The largest request body any service accepts: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

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

/// A JSON request body with a JSON Content-Type (`application/json`, or
/// any `+json` type): what the services that only other services call
/// accept. Any other type, or none, is a 415 before the body is read, so
/// a form a web page can send without a CORS preflight (`text/plain`,
/// `application/x-www-form-urlencoded`) never reaches a handler even where
/// the origin check would not see it (docs/security.md).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE);
        if !content_type.is_some_and(is_json) {
            let sent = content_type.map_or("none".into(), |v| {
                format!("{:?}", v.to_str().unwrap_or("(not text)"))
            });
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON, sent with Content-Type: application/json (sent: {sent})"
            )));
        }
        AnyJsonBody::from_request(req, state)
            .await
            .map(|AnyJsonBody(body)| JsonBody(body))
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.as_bytes()[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// A JSON request body, parsed whatever the Content-Type header says (a plain
/// `curl -d` sends `application/x-www-form-urlencoded`): the broker's, whose
/// clients are people with curl. A browser on another site is stopped by
/// the origin check instead ([`crate::origins`]).
#[derive(Debug, Clone)]
pub struct AnyJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for AnyJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(AnyJsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// `GET /logs`'s `?limit=N&skip=M` as a checked [`Page`], the one paging
/// rule of the broker and the logger (docs/contracts.md §4): a value that is
/// not a whole number, or a limit out of range, is a 400 in the envelope.
pub struct Paging(pub Page);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(page) = Query::<Page>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        page.check().map(Paging).map_err(ApiError::BadRequest)
    }
}

/// Wraps a service's routes in the shared conventions: unknown routes and
/// methods answer in the envelope, bodies are capped at [`MAX_BODY_BYTES`],
/// each request gets its id ([`crate::request_id`]), echoed in the
/// response, and is cut off with 504 after `request_timeout`; and
/// `tower_http`'s [`TraceLayer`] logs one line per request (status and
/// latency, in a span with the method, path and request id). A browser
/// request from an origin not in `origins` (from any origin when it is
/// empty) is a 403 before anything else runs, and the allowed ones get CORS
/// grants, preflights included ([`crate::origins`]).
///
/// The layers wrap the router once, as one service, rather than each route
/// (`Router::layer`): a route's stack is cloned for every request, and
/// that copying was a tenth of the broker's own time on `POST /`
/// (docs/bench/README.md, "broker hit").
pub fn with_conventions(
    router: Router,
    request_timeout: Duration,
    origins: crate::origins::Origins,
    metrics: Metrics,
) -> impl Service<
    Request,
    Response = axum::http::Response<impl HttpBody<Data = Bytes, Error = axum::Error> + Send>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let header = HeaderName::from_static(crate::request_id::HEADER);
    let router = router
        .route_layer(RecordRouteLayer(metrics.clone()))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(
            header.clone(),
            crate::request_id::MakeId,
        ))
        .layer(PropagateRequestIdLayer::new(header))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(move |response: &Response, latency: Duration, span: &Span| {
                    metrics.served_http(response, latency);
                    log_response(response, latency, span);
                })
                .on_failure(()),
        )
        .layer(crate::origins::RefuseOthersLayer(origins.clone()))
        .option_layer((!origins.is_empty()).then(|| origins.cors()))
        .layer(middleware::from_fn_with_state(
            request_timeout,
            scoped_in_time,
        ))
        .service(router)
}

/// Probes are logged at debug level, everything else at info.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/ping")
}

fn request_span(req: &Request) -> Span {
    let id = req
        .headers()
        .get(crate::request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (method, path) = (req.method(), req.uri().path());
    if is_probe(path) {
        tracing::debug_span!("request", %method, path, request_id = id)
    } else if telemetry::exporting() {
        // The span's name in the trace is the method and path, as the
        // HTTP conventions of OpenTelemetry have it for a server.
        let span = tracing::info_span!(
            "request",
            %method,
            path,
            request_id = id,
            otel.name = format_args!("{method} {path}"),
            otel.kind = "server",
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        telemetry::start_trace(&span, req.headers(), id);
        span
    } else {
        tracing::info_span!("request", %method, path, request_id = id)
    }
}

fn log_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    if telemetry::exporting() {
        span.record("http.response.status_code", status);
        if response.status().is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
    let latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3;
    // A disabled span is a probe's (or all of it is filtered out anyway).
    if span
        .metadata()
        .is_none_or(|m| *m.level() == tracing::Level::DEBUG)
    {
        tracing::debug!(status, latency_ms, "request");
    } else {
        tracing::info!(status, latency_ms, "request");
    }
}

/// Makes the request's `x-request-id` (set by the layer in front of it)
/// the task's current id while it is handled ([`crate::request_id`]), and
/// answers 504 once it has taken longer than `limit`. One middleware for
/// both: each `from_fn` boxes and clones what is behind it per request.
async fn scoped_in_time(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(crate::request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    crate::request_id::scope(id, async move {
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(response) => response,
            Err(_) => {
                ApiError::Timeout(format!("request took longer than {} ms", limit.as_millis()))
                    .into_response()
            }
        }
    })
    .await
}

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
    /// [`with_conventions`].
    pub async fn bind(
        service: &'static str,
        config: &crate::config::ServerConfig,
        routes: Router,
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
            origins: crate::origins::Origins::none(),
            metrics: Metrics::new(),
            grace: config.shutdown_grace,
            limits: config.limits,
        })
    }

    /// Answers browsers from `origins` ([`crate::origins`]); without this
    /// call a server answers no browser at all. A request from any other
    /// origin is a 403 before any route runs, and the allowed ones get CORS
    /// grants, preflights included. Applied outside every route and
    /// fallback, so an `OPTIONS` preflight never reaches the 405 fallback.
    pub fn with_origins(mut self, origins: crate::origins::Origins) -> Self {
        self.origins = origins;
        self
    }

    /// Counts requests into `metrics` and serves them on `GET /metrics`
    /// (without it, into a set of its own).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_or_a_json_suffix_with_any_parameters() {
        let json = |v: &'static str| is_json(&HeaderValue::from_static(v));
        for yes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/problem+json",
            "application/vnd.api+JSON ; q=1",
        ] {
            assert!(json(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonp",
            "application/+json",
            "application/json-seq",
            "json",
            "",
        ] {
            assert!(!json(no), "{no}");
        }
    }
}
