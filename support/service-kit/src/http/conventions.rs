//! [`with_conventions`]: what wraps every service's routes: the envelope
//! for unknown routes and methods, the body limit, the request id, the
//! origin rule, the request timeout, and one log line per request.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::{ApiError, MAX_BODY_BYTES};
use crate::metrics::{Metrics, RecordRouteLayer};
use crate::telemetry;

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
    crate::health::PROBES.contains(&path)
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
