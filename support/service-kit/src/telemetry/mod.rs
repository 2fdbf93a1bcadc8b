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
//!
//! This module holds the log format, [`init`] (which installs the global
//! subscriber) and its [`Telemetry`], and whether traces are exported
//! ([`exporting`]); the rest is in:
//! - `logs`: the log layer, and the JSON line with the trace ids;
//! - `traces`: the tracer provider, its samplers and id generator, and
//!   the ids of a span ([`ids_of`]);
//! - `propagation`: the trace context each hop carries and which trace a
//!   span belongs to ([`start_trace`], [`extract`], [`inject`],
//!   [`follow_traceparent`], [`adopt`], [`rename_current`]).

mod logs;
mod propagation;
mod traces;

pub use propagation::{
    HeaderExtractor, HeaderInjector, TRACEPARENT, adopt, extract, follow_traceparent, inject,
    rename_current, start_trace, traceparent,
};
pub use traces::ids_of;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Env};

use logs::log_layer;
use traces::{DISPATCH, tracer_provider};

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

/// A span made only for a trace: a real span when traces are exported,
/// [`Span::none`](tracing::Span::none) (which costs nothing) otherwise.
/// Takes `info_span!`'s arguments.
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
