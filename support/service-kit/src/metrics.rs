//! Prometheus metrics (docs/observability.md). Each service has its own
//! [`Metrics`], served on `GET /metrics` in the OpenMetrics text format:
//! nothing is global, so several services in one test process count apart.
//!
//! What every service counts the same way:
//! - `server_requests_total{transport,route,outcome}` and
//!   `server_request_duration_seconds{transport,route,outcome}`: the
//!   requests it answered, on each of its transports (`http`, `tarpc`,
//!   `grpc`, `amqp`);
//! - `dependency_requests_total{dependency,transport,outcome}` and
//!   `dependency_request_duration_seconds{...}`: the calls it made to
//!   another service or a database;
//!
//! Every label value is a name from the code (a route template, a method,
//! a dependency), never anything a client sent, so the series stay few.

pub use prometheus_client;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Metric, Registry};

/// Request durations' bucket bounds in nanoseconds, from 0.25 ms to about
/// 16 s, each twice the last: what a request is counted by.
const BOUNDS_NANOS: [u64; 17] = {
    let mut bounds = [0; 17];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 250_000 << i;
        i += 1;
    }
    bounds
};

/// The same bounds in seconds, as the histograms are written.
const DURATION_BUCKETS: [f64; BOUNDS_NANOS.len()] = {
    let mut bounds = [0.0; BOUNDS_NANOS.len()];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = BOUNDS_NANOS[i] as f64 / 1e9;
        i += 1;
    }
    bounds
};

/// Whether a request or call succeeded, was refused for what was asked,
/// or failed on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ClientError,
    ServerError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
        }
    }

    /// 1xx to 3xx are answers, 4xx the client's error, 5xx this side's.
    pub fn of_status(status: StatusCode) -> Self {
        if status.is_server_error() {
            Outcome::ServerError
        } else if status.is_client_error() {
            Outcome::ClientError
        } else {
            Outcome::Ok
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RequestLabels {
    transport: &'static str,
    route: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct DependencyLabels {
    dependency: &'static str,
    transport: &'static str,
    outcome: &'static str,
}

/// One service's metrics.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Mutex<Registry>,
    requests: Arc<TimedFamily<RequestLabels>>,
    calls: Arc<TimedFamily<DependencyLabels>>,
    readings: Arc<Readings>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Arc::new(TimedFamily::new(
            (
                "server_requests",
                "Requests answered, by transport, route and outcome.",
            ),
            (
                "server_request_duration_seconds",
                "Time from a request's arrival to its answer.",
            ),
        ));
        let calls = Arc::new(TimedFamily::new(
            (
                "dependency_requests",
                "Calls made to another service or a database, by outcome.",
            ),
            (
                "dependency_request_duration_seconds",
                "Time a call to a dependency took.",
            ),
        ));
        registry.register_collector(Box::new(requests.clone()));
        registry.register_collector(Box::new(calls.clone()));
        let readings = Arc::new(Readings::default());
        registry.register_collector(Box::new(readings.clone()));
        Self(Arc::new(Inner {
            registry: Mutex::new(registry),
            readings,
            requests,
            calls,
        }))
    }

    /// Adds a service's own metric (`name` without the `_total` a counter
    /// gets in the output).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.0
            .registry
            .lock()
            .expect("the registry lock is never poisoned")
            .register(name, help, metric);
    }

    /// Counts one request answered on `transport` (`http`, `tarpc`, `grpc`,
    /// `amqp`) for `route`, looking its series up: a server that answers
    /// the same route all the time keeps a [`Metrics::server`] instead.
    pub fn served(
        &self,
        transport: &'static str,
        route: &'static str,
        outcome: Outcome,
        took: Duration,
    ) {
        self.0
            .requests
            .series(RequestLabels {
                transport,
                route,
                outcome: outcome.as_str(),
            })
            .record(took);
    }

    /// Adds a value read when `/metrics` is scraped (a pool's size, a
    /// queue's depth, a count kept elsewhere), with its own `labels`;
    /// readings of one `name` share its `help` and `kind`.
    pub fn register_reading(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Reading,
        labels: &[(&'static str, &'static str)],
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        let mut families = self
            .0
            .readings
            .families
            .lock()
            .expect("the readings lock is never poisoned");
        families
            .entry(name)
            .or_insert_with(|| ReadingFamily {
                help,
                kind,
                members: Vec::new(),
            })
            .members
            .push((labels.to_vec(), Box::new(read)));
    }

    /// The handle a server counts the requests it answers for `route` on
    /// `transport` with.
    pub fn server(&self, transport: &'static str, route: &'static str) -> Timed {
        Timed::new(|outcome| {
            self.0.requests.series(RequestLabels {
                transport,
                route,
                outcome: outcome.as_str(),
            })
        })
    }

    /// The handle one client counts its calls to `dependency` with.
    pub fn dependency(&self, dependency: &'static str, transport: &'static str) -> Timed {
        Timed::new(|outcome| {
            self.0.calls.series(DependencyLabels {
                dependency,
                transport,
                outcome: outcome.as_str(),
            })
        })
    }

    /// The whole registry in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let registry = self
            .0
            .registry
            .lock()
            .expect("the registry lock is never poisoned");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String does not fail");
        text
    }

    /// `GET /metrics`.
    pub fn routes(&self) -> axum::Router {
        let metrics = self.clone();
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
                    .into_response()
            }),
        )
    }
}

/// What a reading is: a value that goes up and down, or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Gauge,
    Counter,
}

type Read = Box<dyn Fn() -> i64 + Send + Sync>;

struct ReadingFamily {
    help: &'static str,
    kind: Reading,
    members: Vec<(Vec<(&'static str, &'static str)>, Read)>,
}

/// The values read at each scrape ([`Metrics::register_reading`]).
#[derive(Default)]
struct Readings {
    families: Mutex<BTreeMap<&'static str, ReadingFamily>>,
}

impl std::fmt::Debug for Readings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readings")
    }
}

impl Collector for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = self
            .families
            .lock()
            .expect("the readings lock is never poisoned");
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Reading::Gauge => MetricType::Gauge,
                Reading::Counter => MetricType::Counter,
            };
            let mut descriptor = encoder.encode_descriptor(name, family.help, None, kind)?;
            for (labels, read) in &family.members {
                let member = descriptor.encode_family(labels)?;
                let value = read();
                match family.kind {
                    Reading::Gauge => ConstGauge::new(value).encode(member)?,
                    Reading::Counter => {
                        ConstCounter::new(u64::try_from(value).unwrap_or(0)).encode(member)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Each series' counts are split over this many shards, and a thread
/// counts in its own: two cores answering requests at once then rarely
/// write to the same cache line (a shared counter and a histogram behind
/// a lock were most of what metrics cost on `POST /`). A scrape adds the
/// shards up.
const SHARDS: usize = 8;

/// The shard the calling thread counts in.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// One shard of a series: its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Observations per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

/// One label set's requests and how long they took: both the counter
/// and the histogram of the series, from the same counts.
#[derive(Default)]
pub struct Timings {
    shards: [Shard; SHARDS],
}

impl std::fmt::Debug for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timings")
    }
}

impl Timings {
    fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS_NANOS.len());
        let shard = &self.shards[shard()];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The shards added up: the count, the sum in seconds, and each
    /// bucket's upper bound with its own count.
    fn read(&self) -> (u64, f64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|bound| (bound, 0))
            .collect();
        let mut nanos = 0_u64;
        for shard in &self.shards {
            for (total, count) in buckets.iter_mut().zip(&shard.buckets) {
                total.1 += count.load(Ordering::Relaxed);
            }
            nanos = nanos.wrapping_add(shard.nanos.load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, count)| count).sum();
        (count, nanos as f64 / 1e9, buckets)
    }
}

/// A counter family and a histogram family with the same labels, kept as
/// one series per label set ([`Timings`]): `server_requests_total` with
/// `server_request_duration_seconds`, and the dependencies' pair.
struct TimedFamily<L> {
    counter: (&'static str, &'static str),
    histogram: (&'static str, &'static str),
    series: RwLock<BTreeMap<L, Arc<Timings>>>,
}

impl<L> std::fmt::Debug for TimedFamily<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.counter.0)
    }
}

impl<L: Ord + Clone> TimedFamily<L> {
    fn new(counter: (&'static str, &'static str), histogram: (&'static str, &'static str)) -> Self {
        Self {
            counter,
            histogram,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    /// The series of `labels`, made on first use.
    fn series(&self, labels: L) -> Arc<Timings> {
        if let Some(series) = self
            .series
            .read()
            .expect("the series lock is never poisoned")
            .get(&labels)
        {
            return series.clone();
        }
        self.series
            .write()
            .expect("the series lock is never poisoned")
            .entry(labels)
            .or_default()
            .clone()
    }
}

impl<L> Collector for TimedFamily<L>
where
    L: EncodeLabelSet + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self
            .series
            .read()
            .expect("the series lock is never poisoned");
        // Each series read once, so that its count and its histogram agree.
        let read: Vec<_> = series
            .iter()
            .map(|(labels, timings)| (labels, timings.read()))
            .collect();
        let (name, help) = self.counter;
        let mut counters = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, (count, _, _)) in &read {
            ConstCounter::new(*count).encode(counters.encode_family(*labels)?)?;
        }
        let (name, help) = self.histogram;
        let mut histograms = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, (count, sum, buckets)) in &read {
            histograms
                .encode_family(*labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }
}

/// Counts one kind of request or call (a server's route, a client's
/// dependency): its series, one per outcome, looked up once, so counting
/// is two atomic updates in the calling thread's shard.
#[derive(Clone, Debug)]
pub struct Timed(Arc<[Arc<Timings>; 3]>);

/// The calls one client makes to one dependency over one transport.
pub type Dependency = Timed;

impl Timed {
    fn new(series: impl Fn(Outcome) -> Arc<Timings>) -> Self {
        // In the order of the variants, which `record` relies on.
        Self(Arc::new([
            series(Outcome::Ok),
            series(Outcome::ClientError),
            series(Outcome::ServerError),
        ]))
    }

    /// Counts one request or call that took `took`.
    pub fn record(&self, outcome: Outcome, took: Duration) {
        self.0[outcome as usize].record(took);
    }

    /// Times `call` and counts it by the outcome `judge` gives its result.
    pub async fn time<T>(
        &self,
        call: impl Future<Output = T>,
        judge: impl FnOnce(&T) -> Outcome,
    ) -> T {
        let started = Instant::now();
        let result = call.await;
        self.record(judge(&result), started.elapsed());
        result
    }
}

/// A route template as a `'static` label value: the templates of a
/// process are few, each kept once.
fn intern(route: &str) -> &'static str {
    static ROUTES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(known) = routes
        .read()
        .expect("the route set lock is never poisoned")
        .get(route)
    {
        return known;
    }
    let mut routes = routes
        .write()
        .expect("the route set lock is never poisoned");
    if let Some(known) = routes.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

/// One HTTP route's series, looked up once.
pub struct RouteMetrics {
    route: &'static str,
    timed: Timed,
}

impl RouteMetrics {
    fn new(metrics: &Metrics, route: &'static str) -> Self {
        Self {
            route,
            timed: metrics.server("http", route),
        }
    }

    fn record(&self, outcome: Outcome, took: Duration) {
        self.timed.record(outcome, took);
    }
}

/// The route a response was routed by, which [`RecordRoute`] puts on it:
/// its metrics, or (the slow way, not expected) its template.
#[derive(Clone, Copy)]
enum Routed {
    Known(&'static RouteMetrics),
    Path(&'static str),
}

impl Metrics {
    /// Counts one HTTP request answered with `response`, by the route
    /// that answered it ([`RecordRouteLayer`]), or as `unmatched`.
    pub fn served_http(&self, response: &Response, took: Duration) {
        let outcome = Outcome::of_status(response.status());
        match response.extensions().get::<Routed>() {
            Some(Routed::Known(route)) => route.record(outcome, took),
            Some(Routed::Path(route)) => self.served("http", route, outcome, took),
            None => self.served("http", "unmatched", outcome, took),
        }
    }
}

/// Puts the matched route's metrics on each response, for the request
/// metrics outside the router ([`Metrics::served_http`]). Applied with
/// `Router::route_layer`, so only matched routes carry it; each route's
/// metrics are looked up on its first request.
#[derive(Clone)]
pub struct RecordRouteLayer(pub Metrics);

/// What one layered route keeps: made once per route when a router is
/// built, and kept for the life of the process, so that the copy axum
/// makes of a route for each request copies a reference and touches no
/// reference count (on `POST /`, a shared count is most of what metrics
/// cost).
struct RouteState {
    metrics: Metrics,
    route: OnceLock<&'static RouteMetrics>,
}

impl<S> tower::Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRoute {
            inner,
            state: Box::leak(Box::new(RouteState {
                metrics: self.0.clone(),
                route: OnceLock::new(),
            })),
        }
    }
}

#[derive(Clone)]
pub struct RecordRoute<S> {
    inner: S,
    state: &'static RouteState,
}

impl<S> RecordRoute<S> {
    /// This route's metrics; `None` for a path other than the first this
    /// layered route served (not expected: it serves one).
    fn metrics_of(&self, path: &MatchedPath) -> Option<&'static RouteMetrics> {
        let known = *self.state.route.get_or_init(|| {
            Box::leak(Box::new(RouteMetrics::new(
                &self.state.metrics,
                intern(path.as_str()),
            )))
        });
        (known.route == path.as_str()).then_some(known)
    }
}

impl<S> tower::Service<Request> for RecordRoute<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RoutedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().map(|path| {
            self.metrics_of(path)
                .map_or_else(|| Routed::Path(intern(path.as_str())), Routed::Known)
        });
        RoutedFuture {
            inner: self.inner.call(req),
            route,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`RecordRoute`]'s future: the inner answer, its route added.
    pub struct RoutedFuture<F> {
        #[pin]
        inner: F,
        route: Option<Routed>,
    }
}

impl<F, E> Future for RoutedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(route) = this.route.take() {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_service_and_rendered_by_label() {
        let one = Metrics::new();
        let other = Metrics::new();
        one.served("http", "/log", Outcome::Ok, Duration::from_millis(3));
        one.served("http", "/log", Outcome::Ok, Duration::from_millis(3));
        one.served(
            "grpc",
            "WriteLog",
            Outcome::ServerError,
            Duration::from_millis(3),
        );
        let text = one.render();
        assert!(
            text.contains(r#"server_requests_total{transport="http",route="/log",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"server_requests_total{transport="grpc",route="WriteLog",outcome="server_error"} 1"#
            ),
            "{text}"
        );
        assert!(!other.render().contains("route=\"/log\""));
    }

    #[test]
    fn a_series_counts_every_request_from_every_thread_in_its_bucket() {
        let metrics = Metrics::new();
        let calls = metrics.dependency("postgresql", "postgresql");
        std::thread::scope(|threads| {
            for _ in 0..4 {
                threads.spawn(|| {
                    for _ in 0..1000 {
                        calls.record(Outcome::Ok, Duration::from_micros(300));
                        metrics.served("tarpc", "log_info", Outcome::Ok, Duration::from_secs(20));
                    }
                });
            }
        });
        calls.record(Outcome::ServerError, Duration::from_micros(250));
        let text = metrics.render();
        for line in [
            r#"dependency_requests_total{dependency="postgresql",transport="postgresql",outcome="ok"} 4000"#,
            r#"dependency_requests_total{dependency="postgresql",transport="postgresql",outcome="server_error"} 1"#,
            // 0.3 ms is over the first bound (0.25 ms), within the second.
            r#"dependency_request_duration_seconds_bucket{le="0.00025",dependency="postgresql",transport="postgresql",outcome="ok"} 0"#,
            r#"dependency_request_duration_seconds_bucket{le="0.0005",dependency="postgresql",transport="postgresql",outcome="ok"} 4000"#,
            r#"dependency_request_duration_seconds_bucket{le="0.00025",dependency="postgresql",transport="postgresql",outcome="server_error"} 1"#,
            r#"dependency_request_duration_seconds_sum{dependency="postgresql",transport="postgresql",outcome="ok"} 1.2"#,
            r#"server_requests_total{transport="tarpc",route="log_info",outcome="ok"} 4000"#,
            // 20 s is over the last bound.
            r#"server_request_duration_seconds_bucket{le="16.384",transport="tarpc",route="log_info",outcome="ok"} 0"#,
            r#"server_request_duration_seconds_bucket{le="+Inf",transport="tarpc",route="log_info",outcome="ok"} 4000"#,
            r#"server_request_duration_seconds_count{transport="tarpc",route="log_info",outcome="ok"} 4000"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_reading_is_taken_at_each_scrape() {
        let metrics = Metrics::new();
        let depth = Arc::new(std::sync::atomic::AtomicI64::new(3));
        let read = depth.clone();
        metrics.register_reading(
            "queue_depth",
            "Messages waiting.",
            Reading::Gauge,
            &[("queue", "logs")],
            move || read.load(std::sync::atomic::Ordering::Relaxed),
        );
        metrics.register_reading(
            "connections_opened",
            "Connections made.",
            Reading::Counter,
            &[],
            || 2,
        );
        assert!(metrics.render().contains("queue_depth{queue=\"logs\"} 3"));
        depth.store(7, std::sync::atomic::Ordering::Relaxed);
        let text = metrics.render();
        assert!(text.contains("queue_depth{queue=\"logs\"} 7"), "{text}");
        assert!(text.contains("connections_opened_total 2"), "{text}");
    }

    #[test]
    fn a_status_is_an_outcome() {
        assert_eq!(Outcome::of_status(StatusCode::ACCEPTED), Outcome::Ok);
        assert_eq!(
            Outcome::of_status(StatusCode::TOO_MANY_REQUESTS),
            Outcome::ClientError
        );
        assert_eq!(
            Outcome::of_status(StatusCode::BAD_GATEWAY),
            Outcome::ServerError
        );
    }

    #[test]
    fn a_route_is_interned_once() {
        assert!(std::ptr::eq(intern("/logs/{id}"), intern("/logs/{id}")));
    }
}
