//! [`TraceReceiver`]: an OTLP/gRPC trace receiver for tests, built on the
//! official OTLP protobuf definitions (`opentelemetry-proto`). The services
//! export to it as they would to a collector; a test reads back the spans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// One span as received, with the ids as lower-case hex.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    /// `SPAN_KIND_*` without the prefix, in lower case: `server`,
    /// `client`, `producer`, `consumer`, `internal`.
    pub kind: &'static str,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// `ok`, `error` or `unset`.
    pub status: &'static str,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

/// Receives spans on a random local port until dropped.
pub struct TraceReceiver {
    /// `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TraceReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Collect(Arc<Mutex<Vec<ReceivedSpan>>>);

#[tonic::async_trait]
impl TraceService for Collect {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    received.push(ReceivedSpan {
                        service: service.clone(),
                        kind: match span.kind {
                            1 => "internal",
                            2 => "server",
                            3 => "client",
                            4 => "producer",
                            5 => "consumer",
                            _ => "unspecified",
                        },
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes: span
                            .attributes
                            .iter()
                            .filter_map(|kv| Some((kv.key.clone(), text(kv)?)))
                            .collect(),
                        status: match span.status.map(|s| s.code) {
                            Some(1) => "ok",
                            Some(2) => "error",
                            _ => "unset",
                        },
                        start_unix_nanos: span.start_time_unix_nano,
                        end_unix_nanos: span.end_time_unix_nano,
                    });
                }
            }
        }
        self.0.lock().expect("not poisoned").extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(text)
}

impl TraceReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let service = TraceServiceServer::new(Collect(spans.clone()));
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        Self {
            endpoint,
            spans,
            server,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// The spans of trace `trace_id` (32 hex digits), once `complete` holds
    /// for them (services export in batches, a few seconds apart), or
    /// whatever has come after `limit`.
    pub async fn trace(
        &self,
        trace_id: &str,
        limit: Duration,
        complete: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let started = Instant::now();
        loop {
            let spans: Vec<ReceivedSpan> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if complete(&spans) || started.elapsed() > limit {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The colour of each service's bars in [`waterfall_svg`].
fn colour(service: &str) -> &'static str {
    match service {
        "broker-service" => "#4e79a7",
        "authentication-service" => "#f28e2b",
        "logger-service" => "#59a14f",
        "mail-service" => "#e15759",
        "listener-service" => "#b07aa1",
        "front-end" => "#76b7b2",
        _ => "#9c9c9c",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One trace as an SVG waterfall, as trace viewers draw it: a row per
/// span in tree order (children under their parent, by start time),
/// indented by depth, with a bar from its start to its end on the trace's
/// time axis.
pub fn waterfall_svg(title: &str, spans: &[ReceivedSpan]) -> String {
    fn visit<'a>(
        span: &'a ReceivedSpan,
        depth: usize,
        spans: &'a [ReceivedSpan],
        rows: &mut Vec<(usize, &'a ReceivedSpan)>,
    ) {
        rows.push((depth, span));
        let mut children: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
            .collect();
        children.sort_by_key(|s| s.start_unix_nanos);
        for child in children {
            visit(child, depth + 1, spans, rows);
        }
    }
    let mut rows = Vec::new();
    let mut roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| {
            s.parent_span_id.is_empty() || !spans.iter().any(|p| p.span_id == s.parent_span_id)
        })
        .collect();
    roots.sort_by_key(|s| s.start_unix_nanos);
    for root in roots {
        visit(root, 0, spans, &mut rows);
    }
    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_unix_nanos)
        .max()
        .unwrap_or(start + 1);
    let total = (end - start).max(1) as f64;
    let (label_width, bar_width, row_height, top) = (430.0, 520.0, 24.0, 56.0);
    let width = label_width + bar_width + 90.0;
    let height = top + row_height * rows.len() as f64 + 16.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="22" font-size="15" font-weight="bold">{}</text>
<text x="12" y="42" fill="#555">trace {} · {} spans · {:.2} ms</text>
"##,
        escape(title),
        spans.first().map_or("", |s| s.trace_id.as_str()),
        spans.len(),
        total / 1e6
    );
    for (i, (depth, span)) in rows.iter().enumerate() {
        let y = top + row_height * i as f64;
        let x0 = label_width + bar_width * (span.start_unix_nanos - start) as f64 / total;
        let w = (bar_width * (span.end_unix_nanos.saturating_sub(span.start_unix_nanos)) as f64
            / total)
            .max(1.5);
        let ms = span.end_unix_nanos.saturating_sub(span.start_unix_nanos) as f64 / 1e6;
        if i % 2 == 0 {
            svg.push_str(&format!(
                r##"<rect x="0" y="{y}" width="{width}" height="{row_height}" fill="#f5f5f5"/>
"##
            ));
        }
        svg.push_str(&format!(
            r##"<text x="{}" y="{}"><tspan fill="{}" font-weight="bold">{}</tspan> {} <tspan fill="#777">({})</tspan></text>
<rect x="{x0:.1}" y="{}" width="{w:.1}" height="{}" rx="2" fill="{}"/>
<text x="{:.1}" y="{}" fill="#333">{ms:.2} ms</text>
"##,
            12.0 + 14.0 * *depth as f64,
            y + 16.0,
            colour(&span.service),
            escape(&span.service),
            escape(&span.name),
            span.kind,
            y + 5.0,
            row_height - 10.0,
            colour(&span.service),
            (x0 + w + 6.0).min(width - 70.0),
            y + 16.0,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
