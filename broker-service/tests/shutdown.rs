//! Graceful shutdown: stop accepting, finish what is in flight, within a
//! bounded time.

use std::time::{Duration, Instant};

use test_support::{config, spawn_broker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str = r#"{"action":"dance"}"#;

/// Opens a connection and sends a request whose body is only half there, so
/// the request is in flight until the rest arrives.
async fn half_sent_request(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /handle HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&BODY.as_bytes()[..8]).await.unwrap();
    stream.flush().await.unwrap();
    // Let the server read the head and start the handler.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
}

#[tokio::test]
async fn shutdown_drains_an_in_flight_request() {
    let mut broker = spawn_broker(config::broker()).await;
    let mut stream = half_sent_request(broker.addr()).await;

    broker.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !broker.is_finished(),
        "the server must wait for the in-flight request"
    );
    assert!(
        TcpStream::connect(broker.addr()).await.is_err(),
        "no new connections after shutdown began"
    );

    stream.write_all(&BODY.as_bytes()[8..]).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.ends_with(r#"{"error":true,"message":"unknown action"}"#),
        "{response}"
    );

    // The server stops once drained.
    broker
        .stopped(Duration::from_secs(5))
        .await
        .expect("a clean stop");
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_shutdown_past_the_grace_period() {
    let mut config = config::broker();
    config.server.shutdown_grace = Duration::from_millis(500);
    let mut broker = spawn_broker(config).await;
    let _stalled = half_sent_request(broker.addr()).await;

    let started = Instant::now();
    broker.begin_shutdown();
    // Shutdown is bounded.
    broker
        .stopped(Duration::from_secs(5))
        .await
        .expect("a clean stop");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "it waited for the grace period first ({took:?})"
    );
}

#[tokio::test]
async fn a_request_over_the_request_timeout_gets_a_504_envelope() {
    let mut config = config::broker();
    config.server.request_timeout = Duration::from_millis(300);
    let broker = spawn_broker(config).await;
    let mut stream = half_sent_request(broker.addr()).await;

    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .expect("the stalled request is cut off")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(response.contains(r#""error":true"#), "{response}");
}
