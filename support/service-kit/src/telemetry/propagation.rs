//! The trace context: W3C `traceparent` read from and written to each
//! hop's carrier (HTTP headers, gRPC metadata, AMQP message headers), and
//! which trace a span belongs to (a request's own new trace, its caller's,
//! or the one of the work that started it).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::exporting;
use super::traces::NEXT_TRACE_ID;

/// The W3C trace-context header (and AMQP header, and gRPC metadata key).
pub const TRACEPARENT: &str = "traceparent";

/// Makes `span` (a request's server span, not yet entered) part of the
/// trace its caller sent in `headers`, or, when it sent none, the root of
/// a new trace whose id is `request_id` (a UUID; otherwise a random id).
pub fn start_trace(span: &Span, headers: &axum::http::HeaderMap, request_id: &str) {
    if !exporting() {
        return;
    }
    let parent = extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
        return;
    }
    if let Some(id) = crate::request_id::to_trace_id(request_id) {
        NEXT_TRACE_ID.set(Some(TraceId::from(id)));
    }
    // The span's trace begins now, on this thread, taking the id above.
    let _ = span.context();
    NEXT_TRACE_ID.set(None);
}

/// Renames the exported span the current `tracing` span stands for (with
/// export off, not even the current span is looked up). For a span made
/// by a library that names it too late: a name recorded into `otel.name` after
/// the span has begun is not carried to the exported span (tarpc's server
/// span is named `RPC` that way).
pub fn rename_current(name: &'static str) {
    if exporting() {
        Span::current().context().span().update_name(name);
    }
}

/// Makes `span` a child of `parent` in the trace only: for work that
/// outlives the request that started it (a `tracing` child would hold its
/// parent open until it ends).
pub fn adopt(span: &Span, parent: &Span) {
    if exporting() {
        let _ = span.set_parent(parent.context());
    }
}

/// The context `carrier` carries (`traceparent`), or an empty one.
pub fn extract(carrier: &dyn Extractor) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(carrier)
}

/// Makes `span` a child of the context `carrier` carries, when traces are
/// exported and it carries one.
fn follow(span: &Span, carrier: &dyn Extractor) {
    if exporting() {
        let parent = extract(carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
}

/// Writes `span`'s trace context (`traceparent`) into `carrier`, when
/// traces are exported.
pub fn inject(span: &Span, carrier: &mut dyn Injector) {
    if exporting() {
        TraceContextPropagator::new().inject_context(&span.context(), carrier);
    }
}

/// `span`'s `traceparent` value, for a carrier that is not an HTTP header
/// map (gRPC metadata, AMQP message headers); `None` when traces are not
/// exported.
pub fn traceparent(span: &Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span a received `traceparent` value names
/// (see [`traceparent`]), when traces are exported.
pub fn follow_traceparent(span: &Span, traceparent: Option<&str>) {
    if let Some(value) = traceparent.filter(|_| exporting()) {
        let carrier = std::collections::HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
        follow(span, &carrier);
    }
}

/// HTTP headers (and so gRPC metadata, which tonic keeps as headers) as a
/// carrier of trace context.
pub struct HeaderExtractor<'a>(pub &'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// HTTP headers to write trace context into.
pub struct HeaderInjector<'a>(pub &'a mut axum::http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(key.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
