//! A request that takes too long is cut off with a 504 in the envelope.
//! (The drain on shutdown is the service chassis's, tested once in
//! support/service-kit/tests/service.rs.)

use std::time::Duration;

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
