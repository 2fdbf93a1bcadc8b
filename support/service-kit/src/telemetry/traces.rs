//! The traces themselves: the tracer provider and its OTLP exporter, the
//! ratio sampler that reads a trace's whole id, the id generator that
//! gives a new request's trace its request id, and the ids of an exported
//! span ([`ids_of`]).

use std::cell::Cell;
use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SamplingResult, SdkTracerProvider,
    ShouldSample,
};
use tracing::dispatcher::WeakDispatch;

use super::exporting;

pub(super) fn tracer_provider(service: &'static str) -> Option<SdkTracerProvider> {
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
///
/// [`start_trace`]: super::start_trace
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
///
/// [`init`]: super::init
pub(super) static DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

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

thread_local! {
    /// The trace id the next new trace on this thread takes ([`start_trace`]).
    ///
    /// [`start_trace`]: super::start_trace
    pub(super) static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Random ids, except that a trace started by [`start_trace`] takes the
/// request's id.
///
/// [`start_trace`]: super::start_trace
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
