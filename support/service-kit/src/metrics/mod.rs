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
//!   another service or a database.
//!
//! Every label value is a name from the code (a route template, a method,
//! a dependency), never anything a client sent, so the series stay few.
//!
//! This module holds the registry a service registers into and renders
//! ([`Metrics`]) and what a request or call ended as ([`Outcome`]); the
//! rest is in:
//! - `timings`: how a request or call is counted, the sharded series
//!   ([`Timings`]), its duration buckets, and the handle that counts one
//!   kind of request or call by outcome ([`Recorder`]);
//! - `readings`: the values read at each scrape ([`Reading`]);
//! - `route`: the HTTP route each request is counted under
//!   ([`RecordRouteLayer`], [`Metrics::served_http`]).

pub use prometheus_client;

mod readings;
mod route;
pub mod scrape;
mod timings;

pub use readings::Reading;
pub use route::{RecordRoute, RecordRouteLayer, RouteMetrics, RoutedFuture};
pub use timings::{Recorder, Timings};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::registry::{Metric, Registry};

use readings::Readings;
use timings::TimedFamily;

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
    /// the same route all the time keeps a [`Metrics::requests_on`] instead.
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
        self.0.readings.add(name, help, kind, labels, read);
    }

    /// The [`Recorder`] of the requests a server answers for `route` on
    /// `transport`: `server_requests_total` and
    /// `server_request_duration_seconds`.
    pub fn requests_on(&self, transport: &'static str, route: &'static str) -> Recorder {
        Recorder::new(|outcome| {
            self.0.requests.series(RequestLabels {
                transport,
                route,
                outcome: outcome.as_str(),
            })
        })
    }

    /// The [`Recorder`] of the calls one client makes to `dependency` over
    /// `transport`: `dependency_requests_total` and
    /// `dependency_request_duration_seconds`.
    pub fn calls_to(&self, dependency: &'static str, transport: &'static str) -> Recorder {
        Recorder::new(|outcome| {
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
}
