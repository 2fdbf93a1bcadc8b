//! How the parts of a service assembled by `service_kit::Service` stop
//! together and its exit rule. Tested once here, not per service; what its
//! HTTP server serves without being told is in `http_server.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{ended, get_status, server, service, start};
use futures::future::BoxFuture;
use service_kit::Service;
use service_kit::shutdown::CancellationToken;
use tokio::net::TcpStream;

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

fn failure(result: anyhow::Result<()>) -> String {
    format!("{:#}", result.expect_err("the service fails"))
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
