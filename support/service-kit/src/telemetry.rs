//! What a service tells about itself (docs/observability.md):
//!
//! - **Logs**: `tracing` output, human-readable on a terminal, one JSON
//!   object per line when `LOG_FORMAT=json` (with the trace and span ids
//!   when traces are exported). The level filter comes from `RUST_LOG`
//!   (default `info`).
//! - **Traces**: OpenTelemetry spans exported over OTLP/gRPC when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//!   is set, named by `OTEL_SERVICE_NAME` (default: the service's own name)
//!   and sampled by `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`. Unset,
//!   nothing is exported, no span is made for it and no header is added.
//! - **Trace context**: W3C `traceparent` on every hop, read with
//!   [`extract`] and written with [`inject`] (HTTP headers, gRPC metadata,
//!   AMQP message headers; tarpc carries it in its own request context).
//!
//! A request's trace id is its request id ([`crate::request_id`]): a new
//! request's id is a UUID whose 128 bits become the id of the trace it
//! starts, so the id a client sees in `x-request-id` finds the trace.

use std::cell::Cell;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample,
};
use tracing::dispatcher::WeakDispatch;
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Env};

/// The W3C trace-context header (and AMQP header, and gRPC metadata key).
pub const TRACEPARENT: &str = "traceparent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(
            match env
                .one_of("LOG_FORMAT", "text", &["text", "json"])?
                .as_str()
            {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
        )
    }
}

/// Whether spans are exported: set once, by [`init`].
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces. Everything made only for a trace
/// (client spans, `traceparent` headers) is skipped when it does not.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Whether `env` asks for traces: an OTLP endpoint is named and the SDK is
/// not disabled.
pub fn export_requested(env: &Env) -> bool {
    let named = |name| env.get(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled
        && (named("OTEL_EXPORTER_OTLP_ENDPOINT") || named("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider, kept so spans still queued are sent on the way out.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued, waiting at most `limit`.
    pub fn shutdown(self, limit: Duration) {
        if let Some(provider) = self.provider {
            let _ = provider.shutdown_with_timeout(limit);
        }
    }
}

/// Installs the global subscriber: the log output, and the OpenTelemetry
/// layer when `export` (see [`export_requested`]). With `export`, it must
/// run inside a tokio runtime (the exporter's channel is made there).
/// Later calls are no-ops, so tests may call it freely.
pub fn init(format: LogFormat, service: &'static str, export: bool) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file gets plain text.
    let ansi = std::io::stdout().is_terminal();
    let provider = export.then(|| tracer_provider(service)).flatten();
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            // Spans are read through the tracing span, never through
            // OpenTelemetry's thread-local context: not keeping that
            // context on every enter and exit saves time on each poll.
            .with_context_activation(false)
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
    });
    let dispatch: tracing::Dispatch = match otel {
        // Without export, tracing-subscriber's own fmt subscriber, as
        // cheap as it gets: one global filter (whose level hint lets a
        // disabled event cost one comparison) and no layer behind a box.
        None => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(ansi);
            match format {
                LogFormat::Json => builder
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .finish()
                    .into(),
                LogFormat::Text => builder.finish().into(),
            }
        }
        // With it, the log level (`RUST_LOG`) filters the log only: a
        // trace keeps its spans however quiet the log is. Of the events,
        // only warnings and errors become events of the exported spans.
        Some(otel) => tracing_subscriber::registry()
            .with(log_layer(format, ansi).with_filter(filter))
            .with(
                otel.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    *meta.level()
                        <= if meta.is_span() {
                            Level::INFO
                        } else {
                            Level::WARN
                        }
                })),
            )
            .into(),
    };
    let weak = dispatch.downgrade();
    if dispatch.try_init().is_ok() {
        let _ = DISPATCH.set(weak);
        if provider.is_some() {
            EXPORTING.store(true, Ordering::Relaxed);
        }
        Telemetry { provider }
    } else {
        Telemetry { provider: None }
    }
}

/// The log output, in `format`.
fn log_layer<S>(
    format: LogFormat,
    ansi: bool,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi);
    match format {
        LogFormat::Json => fmt
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            ))
            .fmt_fields(JsonFields::new())
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    }
}

fn tracer_provider(service: &'static str) -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("{service}: traces will not be exported: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
    );
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty()) {
        // The SDK took it from the environment already.
    } else {
        resource = resource.with_service_name(service);
    }
    // The sampler is the SDK's (OTEL_TRACES_SAMPLER and
    // OTEL_TRACES_SAMPLER_ARG, parent-based always-on when unset), but for
    // the two ratio samplers: see `WholeIdRatio`.
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(RequestTraceIds::default())
        .with_resource(resource.build());
    if let Some(sampler) = ratio_sampler(
        std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
        std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().as_deref(),
    ) {
        provider = provider.with_sampler(sampler);
    }
    Some(provider.build())
}

/// `OTEL_TRACES_SAMPLER`'s `traceidratio` and `parentbased_traceidratio`
/// (with `OTEL_TRACES_SAMPLER_ARG`, default 1), on [`WholeIdRatio`]; any
/// other sampler is left to the SDK.
fn ratio_sampler(sampler: Option<&str>, arg: Option<&str>) -> Option<Box<dyn ShouldSample>> {
    let ratio = arg
        .and_then(|a| a.trim().parse::<f64>().ok())
        .filter(|r| (0.0..=1.0).contains(r))
        .unwrap_or(1.0);
    match sampler?.trim() {
        "traceidratio" => Some(Box::new(WholeIdRatio(ratio))),
        "parentbased_traceidratio" => Some(Box::new(Sampler::ParentBased(Box::new(WholeIdRatio(
            ratio,
        ))))),
        _ => None,
    }
}

/// Samples a share of the traces by their whole id. The SDK's ratio
/// sampler reads the id's last 64 bits only, and a trace id made from a
/// request id ([`start_trace`]) is a version 4 UUID, whose variant bits sit
/// at the top of those 64: by that sampler, no such trace falls within a
/// ratio under one half. Mixing both halves first gives every ratio its
/// share.
#[derive(Debug, Clone, Copy)]
struct WholeIdRatio(f64);

impl WholeIdRatio {
    fn samples(self, trace_id: TraceId) -> bool {
        let id = u128::from_be_bytes(trace_id.to_bytes());
        // splitmix64's finaliser over the halves: every input bit moves
        // every output bit.
        let mut x = (id >> 64) as u64 ^ id as u64;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        self.0 >= 1.0 || (x as f64) < self.0 * u64::MAX as f64
    }
}

impl ShouldSample for WholeIdRatio {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &opentelemetry::trace::SpanKind,
        _attributes: &[opentelemetry::KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        SamplingResult {
            decision: if self.samples(trace_id) {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

/// The subscriber [`init`] installed, for reading a span's ids while an
/// event is formatted.
static DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

/// The ids of the trace and span `span` belongs to, when it is exported.
pub fn ids_of(span: &tracing::span::Id) -> Option<(TraceId, SpanId)> {
    if !exporting() {
        return None;
    }
    let dispatch = DISPATCH.get()?.upgrade()?;
    let cx = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
    let span = cx.span();
    let context = span.span_context();
    context
        .is_valid()
        .then(|| (context.trace_id(), context.span_id()))
}

/// The JSON line of tracing-subscriber, with `trace_id` and `span_id`
/// added when the event happened in an exported span.
struct WithTraceIds(Format<Json>);

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let ids = ctx.lookup_current().and_then(|span| ids_of(&span.id()));
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let object = line.trim_end();
        match object.strip_suffix('}') {
            Some(open) => writeln!(
                writer,
                "{open},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            None => writer.write_str(&line),
        }
    }
}

thread_local! {
    /// The trace id the next new trace on this thread takes ([`start_trace`]).
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Random ids, except that a trace started by [`start_trace`] takes the
/// request's id.
#[derive(Debug, Default)]
struct RequestTraceIds(RandomIdGenerator);

impl IdGenerator for RequestTraceIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .take()
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

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

/// A span made only for a trace: a real span when traces are exported,
/// [`Span::none`] (which costs nothing) otherwise. Takes `info_span!`'s
/// arguments.
#[macro_export]
macro_rules! trace_span {
    ($($arg:tt)*) => {
        if $crate::telemetry::exporting() {
            ::tracing::info_span!($($arg)*)
        } else {
            ::tracing::Span::none()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace id as a request id makes it: a version 4 UUID.
    fn request_trace_ids(n: usize) -> impl Iterator<Item = TraceId> {
        (0..n).map(|_| TraceId::from(uuid::Uuid::new_v4().as_u128()))
    }

    #[test]
    fn a_ratio_samples_its_share_of_traces_whose_ids_are_request_ids() {
        for ratio in [0.1, 0.5] {
            let sampler = WholeIdRatio(ratio);
            let n = 20_000;
            let sampled = request_trace_ids(n)
                .filter(|&id| sampler.samples(id))
                .count();
            let share = sampled as f64 / n as f64;
            assert!(
                (share - ratio).abs() < 0.02,
                "ratio {ratio}: sampled {share}"
            );
        }
        assert!(request_trace_ids(100).all(|id| WholeIdRatio(1.0).samples(id)));
        assert!(!request_trace_ids(100).any(|id| WholeIdRatio(0.0).samples(id)));
    }

    #[test]
    fn only_the_ratio_samplers_are_replaced() {
        assert!(ratio_sampler(Some("parentbased_traceidratio"), Some("0.1")).is_some());
        assert!(ratio_sampler(Some("traceidratio"), None).is_some());
        assert!(ratio_sampler(Some("always_on"), None).is_none());
        assert!(ratio_sampler(None, Some("0.1")).is_none());
    }
}
