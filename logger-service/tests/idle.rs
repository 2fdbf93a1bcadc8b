//! A connection that something on the way closes while it is idle (the
//! MongoDB stand-in after 300 s, a NAT, a load balancer) is not reused: the
//! logger's driver drops pooled connections idle for longer than its
//! `maxIdleTimeMS` (`logger_service::store::MAX_IDLE_TIME` by default), so
//! the next write goes out on a live one instead of failing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use test_support::{MongoServer, config, spawn_logger_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP relay to `upstream` that closes a connection once no byte has
/// crossed it either way for `idle`; counts the connections it closed so.
async fn idle_closing_relay(upstream: u16, idle: Duration) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
            tokio::spawn(relay(client, server, idle, count.clone()));
        }
    });
    (port, closed)
}

async fn relay(client: TcpStream, server: TcpStream, idle: Duration, closed: Arc<AtomicUsize>) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let step = tokio::time::timeout(idle, async {
            tokio::select! {
                n = from_client.read(&mut up) => match n {
                    Ok(n) if n > 0 => to_server.write_all(&up[..n]).await.is_ok(),
                    _ => false,
                },
                n = from_server.read(&mut down) => match n {
                    Ok(n) if n > 0 => to_client.write_all(&down[..n]).await.is_ok(),
                    _ => false,
                },
            }
        })
        .await;
        match step {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                // Dropping both halves closes both connections.
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// Writes one entry, lets the pool idle past the relay's limit, writes
/// another: both statuses, and how many connections the relay closed.
async fn write_idle_write(max_idle: Duration) -> (u16, u16, usize) {
    let mongo = MongoServer::start();
    let idle = Duration::from_millis(1500);
    let (port, closed) = idle_closing_relay(mongo.port(), idle).await;
    // Heartbeats every 500 ms keep the monitoring connections busy, so only
    // the pool's connections go idle.
    let url = format!(
        "mongodb://127.0.0.1:{port}/?heartbeatFrequencyMS=500&maxIdleTimeMS={}",
        max_idle.as_millis()
    );
    let mut logger = spawn_logger_with(Some(mongo), config::logger(&url)).await;
    let (first, _) = logger.post("/log", json!({"name": "before"})).await;
    tokio::time::sleep(idle + Duration::from_secs(1)).await;
    let (second, envelope) = logger.post("/log", json!({"name": "after"})).await;
    assert!(second == 202 || envelope.error, "{envelope:?}");
    logger.stop().await;
    (
        first.as_u16(),
        second.as_u16(),
        closed.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_fails_the_write_sent_on_it() {
    // What the limit is for: kept longer than the relay allows, the pooled
    // connection is closed under the driver, which sends the next write on
    // it (a standalone server has no retryable writes).
    let (first, second, closed) = write_idle_write(Duration::from_secs(60)).await;
    assert_eq!(first, 202);
    assert!(closed >= 1, "the relay closed no idle connection");
    assert!(second == 502 || second == 503, "answered {second}");
}

#[tokio::test]
async fn a_connection_idle_past_the_limit_is_dropped_and_the_next_write_is_stored() {
    // The same as above but for the limit: the idle connection is dropped
    // by the driver, whether or not the relay closed it first.
    let (first, second, _) = write_idle_write(Duration::from_millis(700)).await;
    assert_eq!((first, second), (202, 202));
}
