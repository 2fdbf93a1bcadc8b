//! Every service's `/metrics` (docs/observability.md), scraped before and
//! after a known set of requests through the broker: each counter moves by
//! exactly the number of requests that should have moved it, on the
//! service that answered them, and no other.

use service_kit::metrics::scrape::{Scrape, called, served};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{System, TestApp, eventually};

/// `/metrics` of `app`, as text.
async fn scrape(app: &TestApp) -> String {
    let response = reqwest::get(app.url("/metrics"))
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as written), 0 when it
/// is not there yet.
fn value(text: &str, series: &str) -> f64 {
    Scrape::new(text).value(series).unwrap_or(0.0)
}

/// How far each of `series` moved on `app` since `before`.
async fn moved(app: &TestApp, before: &str, series: &[String]) -> Vec<f64> {
    let after = scrape(app).await;
    series
        .iter()
        .map(|s| value(&after, s) - value(before, s))
        .collect()
}

async fn handle(broker: &TestApp, body: Value) -> StatusCode {
    broker.post_json("/handle", body).await.0
}

#[tokio::test]
async fn each_counter_moves_by_exactly_the_requests_sent() {
    const N: usize = 3;
    let system = System::start().await;
    let broker = &system.broker;
    let before_broker = scrape(broker).await;
    let before_logger = scrape(&system.logger).await;
    let before_listener = scrape(&system.listener).await;
    let before_auth = scrape(&system.auth).await;
    let before_mail = scrape(&system.mail).await;

    for transport in ["rpc", "grpc", "http", "amqp"] {
        for i in 0..N {
            let status = handle(
                broker,
                json!({"action": "log", "transport": transport,
                       "log": {"name": format!("counted-{transport}-{i}"), "data": "d"}}),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{transport}");
        }
    }
    let login =
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}});
    assert_eq!(handle(broker, login).await, StatusCode::ACCEPTED);
    let mail = json!({"action": "mail", "mail": {"from": "a@example.com", "to": "b@example.com",
                      "subject": "counted", "message": "hello"}});
    assert_eq!(handle(broker, mail).await, StatusCode::ACCEPTED);
    // A refusal is counted as the client's error, and calls nobody.
    let unknown = json!({"action": "dance"});
    assert_eq!(handle(broker, unknown).await, StatusCode::BAD_REQUEST);

    let n = N as f64;
    assert_eq!(
        moved(
            broker,
            &before_broker,
            &[
                served("http", "/handle", "ok"),
                served("http", "/handle", "client_error"),
                called("logger-service", "tarpc", "ok"),
                called("logger-service", "grpc", "ok"),
                called("logger-service", "http", "ok"),
                called("rabbitmq", "amqp", "ok"),
                called("authentication-service", "http", "ok"),
                called("mail-service", "http", "ok"),
            ]
        )
        .await,
        [4.0 * n + 2.0, 1.0, n, n, n, n, 1.0, 1.0]
    );

    // The listener stores the AMQP entries, and the login is logged, a
    // moment after the broker answered.
    let logger_series = [
        served("tarpc", "log_info", "ok"),
        served("grpc", "WriteLog", "ok"),
        // HTTP: the broker's entries, the listener's, and the login's.
        served("http", "/log", "ok"),
    ];
    let expected = [n, n, 2.0 * n + 1.0];
    let settled = eventually(Duration::from_secs(10), || async {
        moved(&system.logger, &before_logger, &logger_series).await == expected
    })
    .await;
    assert!(
        settled,
        "logger: {:?}, expected {expected:?}",
        moved(&system.logger, &before_logger, &logger_series).await
    );
    let after_logger = scrape(&system.logger).await;
    let inserts = value(&after_logger, &called("mongodb", "mongodb", "ok"))
        - value(&before_logger, &called("mongodb", "mongodb", "ok"));
    // Writes are coalesced: at most one insert_many per entry.
    assert!(
        (1.0..=4.0 * n + 1.0).contains(&inserts),
        "insert_many calls: {inserts}"
    );
    assert!(after_logger.contains("# TYPE logger_batch_entries histogram"));

    assert_eq!(
        moved(
            &system.listener,
            &before_listener,
            &[
                served("amqp", "logs", "ok"),
                "listener_events_stored_total".to_owned(),
                called("logger-service", "http", "ok"),
            ]
        )
        .await,
        [n, n, n]
    );
    let listener = scrape(&system.listener).await;
    assert!(
        listener.contains(r#"listener_queue_depth{queue="logs"}"#),
        "{listener}"
    );

    assert_eq!(
        moved(
            &system.auth,
            &before_auth,
            &[
                served("http", "/authenticate", "ok"),
                called("postgresql", "postgresql", "ok"),
            ]
        )
        .await,
        [1.0, 1.0]
    );
    let auth = scrape(&system.auth).await;
    assert!(
        auth.contains(r#"dependency_pool_connections{dependency="postgresql",state="open"}"#),
        "{auth}"
    );

    assert_eq!(
        moved(
            &system.mail,
            &before_mail,
            &[served("http", "/send", "ok"), called("smtp", "smtp", "ok")]
        )
        .await,
        [1.0, 1.0]
    );

    // Durations are histograms with the same labels.
    let broker_text = scrape(broker).await;
    assert_eq!(
        value(
            &broker_text,
            r#"server_request_duration_seconds_count{transport="http",route="/handle",outcome="client_error"}"#
        ),
        1.0
    );
}
