//! `"transport":"amqp"` through the broker: RabbitMQ (a vhost of the test's
//! own) confirms, the listener consumes, the logger stores.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Url;
use service_kit::shutdown::CancellationToken;
use support::{config, spawn};
use test_support::{MongoServer, RabbitVhost};

#[tokio::test]
async fn an_amqp_log_is_confirmed_then_stored_by_the_listener() {
    service_kit::telemetry::init_for_tests();
    let vhost = RabbitVhost::create();
    let mongo = MongoServer::start();
    let logger_url =
        logger_service::Application::start_for_tests(&mongo.url(), CancellationToken::new())
            .await
            .unwrap()
            .http_url;
    let listener = listener_service::Application::build(listener_service::Config::for_tests(
        Url::parse(&vhost.url()).unwrap(),
        logger_url.clone(),
    ))
    .await
    .unwrap();
    tokio::spawn(listener.run(CancellationToken::new()));

    let mut config = config();
    config.logger_url = logger_url;
    config.amqp_url = Url::parse(&vhost.url()).unwrap();
    let broker = spawn(config).await;

    for (level, name) in [
        (None, "amqp-info"),
        (Some("WARNING"), "amqp-warning"),
        (Some("ERROR"), "amqp-error"),
    ] {
        let mut entry = json!({"name": name, "data": "via RabbitMQ"});
        if let Some(level) = level {
            entry["level"] = json!(level);
        }
        let response = broker
            .client
            .post(broker.url("/handle"))
            .json(&json!({"action": "log", "transport": "amqp", "log": entry}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": false, "message": "logged via RabbitMQ"})
        );
    }

    // RabbitMQ drops every connection (as in a restart): the broker's next
    // publish dials again.
    assert!(vhost.close_connections() >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = broker
        .client
        .post(broker.url("/handle"))
        .json(&json!({"action": "log", "transport": "amqp", "log": {"name": "amqp-again", "data": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{}",
        response.text().await.unwrap()
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: Value = broker
            .client
            .get(broker.url("/logs?limit=10"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // Delivery is at least once: an event stored just before the cut
        // connection could acknowledge it is delivered, and stored, again.
        names.sort();
        names.dedup();
        if names == ["amqp-again", "amqp-error", "amqp-info", "amqp-warning"] {
            break;
        }
        assert!(Instant::now() < deadline, "stored so far: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rabbitmq_unreachable_is_a_503_within_a_few_seconds() {
    let broker = spawn(config()).await;
    let started = Instant::now();
    let response = broker
        .client
        .post(broker.url("/handle"))
        .json(&json!({"action": "log", "transport": "amqp", "log": {"name": "lost", "data": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("RabbitMQ is unreachable"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
