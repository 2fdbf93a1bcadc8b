//! Two replicas of the logger behind one comma-separated address list, as a
//! native deployment scales it: the broker's tarpc, gRPC and HTTP calls and
//! the listener's HTTP calls (the AMQP path) are each spread over both
//! (docs/contracts.md §3, "Balancing").

use service_kit::metrics::scrape::{self, Scrape};
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use service_kit::config::{Env, Url};
use test_support::{
    MongoServer, RabbitVhost, TestApp, TestLogger, config, eventually, spawn_broker,
    spawn_listener, spawn_logger_with,
};

/// Requests sent over each transport.
const REQUESTS: u64 = 300;

/// The log entries `logger` has been sent over `transport` (its route for
/// them), from its own `/metrics`.
async fn served(logger: &TestApp, (transport, route): (&str, &str)) -> u64 {
    let text = logger
        .client
        .get(logger.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Scrape::new(text).sum(&scrape::served_any(transport, route)) as u64
}

/// Each replica's share of `counts` lies between 0.6 and 1.4 times its
/// fair share.
fn assert_spread(what: &str, counts: &[u64]) {
    let total: u64 = counts.iter().sum();
    let fair = total as f64 / counts.len() as f64;
    for (replica, &count) in counts.iter().enumerate() {
        let ratio = count as f64 / fair;
        assert!(
            (0.6..=1.4).contains(&ratio),
            "{what}: replica {replica} served {count} of {total} ({ratio:.2} of its fair share): {counts:?}"
        );
    }
}

#[tokio::test]
async fn every_transport_spreads_its_calls_over_two_logger_replicas() {
    let mongo = MongoServer::start();
    let loggers: Vec<TestLogger> = vec![
        spawn_logger_with(None, config::logger(&mongo.url())).await,
        spawn_logger_with(None, config::logger(&mongo.url())).await,
    ];
    let list = |part: &dyn Fn(&TestLogger) -> String| {
        loggers.iter().map(part).collect::<Vec<_>>().join(",")
    };
    // Read as the broker and the listener read them.
    let env = Env::from_pairs([
        ("LOGGER_URL", list(&|l| l.base_url().to_string())),
        ("LOGGER_RPC_ADDR", list(&|l| l.rpc_addr.clone())),
        ("LOGGER_GRPC_URL", list(&|l| l.grpc_url.to_string())),
    ]);
    let logger_url = env.upstream("LOGGER_URL", "", &["http"]).unwrap();
    assert_eq!(logger_url.urls().len(), 2);
    let vhost = RabbitVhost::create();
    let amqp_url = Url::parse(&vhost.url()).unwrap();
    let broker = spawn_broker(broker_service::Config {
        logger_url: logger_url.clone(),
        logger_rpc_addr: env.host_ports("LOGGER_RPC_ADDR", "").unwrap(),
        logger_grpc_url: env.upstream("LOGGER_GRPC_URL", "", &["http"]).unwrap(),
        amqp_url: amqp_url.clone(),
        ..config::broker()
    })
    .await;
    let mut listener_config = config::listener(amqp_url, loggers[0].base_url());
    listener_config.logger_url = logger_url;
    let listener = spawn_listener(listener_config).await;

    for (transport, counted_as) in [
        ("rpc", ("tarpc", "log_info")),
        ("grpc", ("grpc", "WriteLog")),
        ("http", ("http", "/log")),
        ("amqp", ("http", "/log")),
    ] {
        let before = join_all(loggers.iter().map(|l| served(l, counted_as))).await;
        // Eight clients at once, as the broker serves them.
        let sent = join_all((0..8).map(|client| {
            let broker = &broker;
            async move {
                for i in 0..REQUESTS / 8 + u64::from(client < REQUESTS % 8) {
                    let body = json!({"action": "log", "transport": transport,
                        "log": {"name": format!("{transport}-{client}-{i}"), "data": "spread"}});
                    let (status, envelope) = broker.post("/handle", body).await;
                    assert_eq!(status, 202, "{transport}: {envelope:?}");
                }
            }
        }));
        sent.await;
        let counts = || async {
            let after = join_all(loggers.iter().map(|l| served(l, counted_as))).await;
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| a - b)
                .collect::<Vec<u64>>()
        };
        // The AMQP path stores after the broker's 202.
        assert!(
            eventually(Duration::from_secs(20), || async {
                counts().await.iter().sum::<u64>() >= REQUESTS
            })
            .await,
            "{transport}: every request reached a logger: {:?}",
            counts().await
        );
        let counts = counts().await;
        assert_eq!(
            counts.iter().sum::<u64>(),
            REQUESTS,
            "{transport}: {counts:?}"
        );
        eprintln!("{transport}: each replica served {counts:?}");
        assert_spread(transport, &counts);
    }
    drop(listener);
}
