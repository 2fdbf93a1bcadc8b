//! The HTTP route each request is counted under: a layer on the router's
//! matched routes ([`RecordRouteLayer`], [`RecordRoute`]) puts the route's
//! series on its response, and [`Metrics::served_http`], outside the
//! router, counts the response by them. Route templates become `'static`
//! label values once each (`intern`).
//!
//! Three things here are leaked, each made once and kept for the life of
//! the process: a route template (`intern`), a layered route's state
//! (`RouteState`) and its series (`RouteMetrics`). A layered route is
//! copied for every request, and a reference copies without touching a
//! shared reference count, which an `Arc` would (see `RouteState`).
//! Whether that count costs anything measurable has not been measured: an
//! instruction count should decide before this changes.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;

use super::{Metrics, Outcome, Recorder};

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
    requests: Recorder,
}

impl RouteMetrics {
    fn new(metrics: &Metrics, route: &'static str) -> Self {
        Self {
            route,
            requests: metrics.requests_on("http", route),
        }
    }

    fn record(&self, outcome: Outcome, took: Duration) {
        self.requests.record(outcome, took);
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
    fn a_route_is_interned_once() {
        assert!(std::ptr::eq(intern("/logs/{id}"), intern("/logs/{id}")));
    }
}
