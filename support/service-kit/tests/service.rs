//! The behaviour every service shares because it is assembled by
//! `service_kit::Service`: how its parts stop together, its exit rule, the
//! drain on shutdown, and what its HTTP server serves without being told.
//! Tested once here, not per service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use futures::future::BoxFuture;
use service_kit::config::ServerConfig;
use service_kit::health::ReadinessCheck;
use service_kit::http::ConnectionLimits;
use service_kit::origins::Origins;
use service_kit::shutdown::CancellationToken;
use service_kit::{Bound, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

fn server(grace: Duration) -> ServerConfig {
    ServerConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        request_timeout: Duration::from_secs(10),
        shutdown_grace: grace,
        limits: ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 64,
        },
    }
}

fn service() -> Service {
    Service::new("test-service", &server(Duration::from_secs(2)))
}

/// A flag a part raises when it saw the stop token and ended.
#[derive(Clone, Default)]
struct Flag(Arc<AtomicBool>);

impl Flag {
    fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn is_up(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A server that runs until told to stop, then raises `flag`.
fn until_stopped(
    flag: &Flag,
) -> impl FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send + 'static {
    let flag = flag.clone();
    move |stop| {
        Box::pin(async move {
            stop.cancelled().await;
            flag.raise();
            Ok(())
        })
    }
}

/// Runs `bound` on a task with a shutdown token of its own.
fn start(
    bound: Bound,
) -> (
    CancellationToken,
    SocketAddr,
    JoinHandle<anyhow::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let task = tokio::spawn(bound.run(shutdown.clone()));
    (shutdown, addr, task)
}

/// The service's result, which must come within `limit`.
async fn ended(task: JoinHandle<anyhow::Result<()>>, limit: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(limit, task)
        .await
        .expect("the service ends in time")
        .expect("the service does not panic")
}

fn failure(result: anyhow::Result<()>) -> String {
    format!("{:#}", result.expect_err("the service fails"))
}

async fn get_status(addr: SocketAddr, path: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("the service answers")
}

#[tokio::test]
async fn the_signal_stops_every_part_and_the_service_ends_cleanly() {
    let (server_flag, task_flag) = (Flag::default(), Flag::default());
    let task = task_flag.clone();
    let bound = service()
        .server("rpc", until_stopped(&server_flag))
        .task("indexes", |stop| async move {
            stop.cancelled().await;
            task.raise();
        })
        .bind()
        .await
        .unwrap();
    let (shutdown, addr, running) = start(bound);
    assert_eq!(get_status(addr, "/healthz", None).await.status(), 200);

    shutdown.cancel();
    ended(running, Duration::from_secs(3))
        .await
        .expect("a clean stop");
    assert!(
        server_flag.is_up() && task_flag.is_up(),
        "every part saw the stop"
    );
    assert!(TcpStream::connect(addr).await.is_err(), "HTTP is closed");
}

#[tokio::test]
async fn a_failing_server_stops_the_others_and_its_error_is_the_result() {
    let other = Flag::default();
    let bound = service()
        .server("rpc", |_stop| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            anyhow::bail!("the port went away")
        })
        .server("grpc", until_stopped(&other))
        .bind()
        .await
        .unwrap();
    let (_shutdown, addr, running) = start(bound);

    let message = failure(ended(running, Duration::from_secs(3)).await);
    assert_eq!(message, "rpc failed: the port went away");
    assert!(other.is_up(), "the other server was stopped");
    assert!(TcpStream::connect(addr).await.is_err(), "HTTP was stopped");
}

#[tokio::test]
async fn a_server_that_ends_by_itself_is_a_failure() {
    let bound = service()
        .server("amqp consumer", |_stop| async { Ok(()) })
        .bind()
        .await
        .unwrap();
    let (_shutdown, _addr, running) = start(bound);

    let message = failure(ended(running, Duration::from_secs(3)).await);
    assert_eq!(message, "amqp consumer stopped by itself");
}

#[tokio::test]
async fn a_task_that_finishes_stops_nothing() {
    let finished = Flag::default();
    let done = finished.clone();
    let bound = service()
        .task("migrations", |_stop| async move { done.raise() })
        .bind()
        .await
        .unwrap();
    let (shutdown, addr, running) = start(bound);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(finished.is_up());
    assert!(!running.is_finished(), "the service still runs");
    assert_eq!(get_status(addr, "/healthz", None).await.status(), 200);
    shutdown.cancel();
    ended(running, Duration::from_secs(3))
        .await
        .expect("a clean stop");
}

#[tokio::test]
async fn a_panicking_task_stops_the_service() {
    let bound = service()
        .task("indexes", |_stop| async { panic!("a bug") })
        .bind()
        .await
        .unwrap();
    let (_shutdown, _addr, running) = start(bound);

    let message = failure(ended(running, Duration::from_secs(3)).await);
    assert_eq!(message, "indexes panicked");
}

#[tokio::test]
async fn a_part_that_ignores_the_stop_is_aborted_after_the_grace_period() {
    let bound = Service::new("test-service", &server(Duration::from_millis(300)))
        .server("stubborn", |_stop| std::future::pending())
        .bind()
        .await
        .unwrap();
    let (shutdown, _addr, running) = start(bound);

    let started = Instant::now();
    shutdown.cancel();
    let message = failure(ended(running, Duration::from_secs(3)).await);
    assert_eq!(message, "stubborn did not stop within 300 ms");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the grace period first ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn stop_hooks_run_once_every_part_has_ended() {
    let (part, hook) = (Flag::default(), Flag::default());
    let (part_seen, hook_done) = (part.clone(), hook.clone());
    let bound = service()
        .server("rpc", until_stopped(&part))
        .on_stop(async move {
            assert!(part_seen.is_up(), "the hook runs after the parts");
            hook_done.raise();
        })
        .bind()
        .await
        .unwrap();
    let (shutdown, _addr, running) = start(bound);

    shutdown.cancel();
    ended(running, Duration::from_secs(3))
        .await
        .expect("a clean stop");
    assert!(hook.is_up());
}

#[tokio::test]
async fn server_on_names_where_a_server_listens() {
    let addr: SocketAddr = "127.0.0.1:5999".parse().unwrap();
    let bound = service()
        .server_on("rpc", addr, |_stop| async { Ok(()) })
        .bind()
        .await
        .unwrap();
    assert_eq!(bound.addr("rpc"), Some(addr));
    assert_eq!(bound.addr("grpc"), None);
    assert_ne!(bound.port(), 0, "the HTTP port is the bound one");
}

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
