//! Bounds on what clients can hold: a slow client's connection is closed
//! after the header-read timeout, and past the connection cap a new
//! connection is closed at once, while the broker keeps serving.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_support::{config, spawn_broker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits until the server closes `stream`; how long that took.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {} // an error answer, then the close
            Err(_) => panic!("the connection is still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mut config = config::broker();
    config.server.limits.header_read_timeout = Duration::from_secs(1);
    let broker = spawn_broker(config).await;
    let mut silent = TcpStream::connect(broker.addr()).await.unwrap();
    let mut slow = TcpStream::connect(broker.addr()).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: broker\r\n")
        .await
        .unwrap();

    // Meanwhile everyone else is served.
    let (status, _) = broker.post_json("/", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::OK);

    for stream in [&mut silent, &mut slow] {
        let took = closed_after(stream, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let mut config = config::broker();
    config.server.limits.header_read_timeout = Duration::from_secs(1);
    let broker = spawn_broker(config).await;
    let mut stream = TcpStream::connect(broker.addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = stream.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    // Kept alive, then closed once it has been idle for the timeout: so
    // the system's own clients drop an idle connection sooner
    // (service_kit::upstream::POOL_IDLE_TIMEOUT).
    let took = closed_after(&mut stream, Duration::from_secs(5)).await;
    assert!(
        took > Duration::from_millis(800) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_is_closed_at_once() {
    let mut config = config::broker();
    config.server.limits.max_connections = 4;
    config.server.limits.header_read_timeout = Duration::from_secs(2);
    let broker = spawn_broker(config).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(broker.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(broker.addr()).await.unwrap();
    let took = closed_after(&mut extra, Duration::from_secs(1)).await;
    assert!(took < Duration::from_millis(500), "closed after {took:?}");

    // The held ones time out; then the broker serves again.
    drop(held);
    let served = test_support::eventually(Duration::from_secs(5), || async {
        broker
            .client
            .post(broker.url("/"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(served);
}
