//! What the HTTP server of a service assembled by `service_kit::Service`
//! serves without being told: readiness, the origin rule, the one metrics
//! registry, the drain on shutdown and the request timeout. Tested once
//! here, not per service.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{ended, get_status, server, service, start};
use futures::future::BoxFuture;
use service_kit::Service;
use service_kit::health::ReadinessCheck;
use service_kit::origins::Origins;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A readiness check with a fixed answer.
struct Dependency(&'static str, bool);

impl ReadinessCheck for Dependency {
    fn name(&self) -> &str {
        self.0
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let up = self.1;
        Box::pin(async move { if up { Ok(()) } else { Err("down".into()) } })
    }
}

#[tokio::test]
async fn readiness_is_red_without_a_required_dependency_and_degraded_without_an_optional_one() {
    let degraded = service()
        .ready(Dependency("postgres", true))
        .degraded_without(Dependency("mail-service", false))
        .bind()
        .await
        .unwrap();
    let red = service()
        .ready(Dependency("postgres", false))
        .bind()
        .await
        .unwrap();
    let (_a, degraded, _ra) = start(degraded);
    let (_b, red, _rb) = start(red);

    let answer = get_status(degraded, "/readyz", None).await;
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("degraded: mail-service unavailable"),
        "{text}"
    );
    assert_eq!(get_status(red, "/readyz", None).await.status(), 503);
}

#[tokio::test]
async fn no_browser_is_answered_unless_the_service_names_its_pages() {
    let page = "http://localhost:8081";
    let closed = service().bind().await.unwrap();
    let open = service()
        .origins(Origins::new([page]).unwrap())
        .bind()
        .await
        .unwrap();
    let (_a, closed, _ra) = start(closed);
    let (_b, open, _rb) = start(open);

    assert_eq!(
        get_status(closed, "/healthz", Some(page)).await.status(),
        403
    );
    assert_eq!(get_status(closed, "/healthz", None).await.status(), 200);
    let allowed = get_status(open, "/healthz", Some(page)).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], page);
    let other = get_status(open, "/healthz", Some("http://evil.example")).await;
    assert_eq!(other.status(), 403);
}

#[tokio::test]
async fn metrics_count_the_service_s_own_routes_in_its_one_registry() {
    let bound = service()
        .routes(Router::new().route("/hello", get(|| async { "hi" })))
        .bind()
        .await
        .unwrap();
    let registry = bound.metrics().clone();
    let (_shutdown, addr, _running) = start(bound);

    assert_eq!(get_status(addr, "/hello", None).await.status(), 200);
    let text = get_status(addr, "/metrics", None)
        .await
        .text()
        .await
        .unwrap();
    let line = r#"server_requests_total{transport="http",route="/hello",outcome="ok"} 1"#;
    assert!(text.contains(line), "{text}");
    assert!(
        registry.render().contains(line),
        "the builder's registry is the served one"
    );
}

/// Opens a connection and sends a request whose body is only half there,
/// so the request is in flight until the rest arrives.
async fn half_sent_request(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..4]).await.unwrap();
    stream.flush().await.unwrap();
    // Let the server read the head and start the handler.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
}

fn echo() -> Router {
    Router::new().route(
        "/echo",
        axum::routing::post(|body: String| async move { body }),
    )
}

#[tokio::test]
async fn shutdown_drains_an_in_flight_request() {
    let bound = service().routes(echo()).bind().await.unwrap();
    let (shutdown, addr, running) = start(bound);
    let body = "half and half";
    let mut stream = half_sent_request(addr, body).await;

    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!running.is_finished(), "it waits for the in-flight request");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown began"
    );
    stream.write_all(&body.as_bytes()[4..]).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(body), "{response}");
    ended(running, Duration::from_secs(5))
        .await
        .expect("a clean stop once drained");
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_shutdown_past_the_grace_period() {
    let bound = Service::new("test-service", &server(Duration::from_millis(500)))
        .routes(echo())
        .bind()
        .await
        .unwrap();
    let (shutdown, addr, running) = start(bound);
    let _stalled = half_sent_request(addr, "never sent in full").await;

    let started = Instant::now();
    shutdown.cancel();
    ended(running, Duration::from_secs(5))
        .await
        .expect("the HTTP server gives up on it within its grace: a clean stop");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "it waited for the grace period first ({took:?})"
    );
}

#[tokio::test]
async fn a_request_over_the_request_timeout_gets_a_504_envelope() {
    let mut config = server(Duration::from_secs(2));
    config.request_timeout = Duration::from_millis(300);
    let bound = Service::new("test-service", &config)
        .routes(echo())
        .bind()
        .await
        .unwrap();
    let (_shutdown, addr, _running) = start(bound);
    let mut stream = half_sent_request(addr, "never sent in full").await;

    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the stalled request is cut off")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(
        response.ends_with(r#"{"error":true,"message":"request took longer than 300 ms"}"#),
        "{response}"
    );
}
