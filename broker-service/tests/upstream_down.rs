//! Each dependency out of reach: the broker answers that path with a
//! prompt 503 in the envelope, naming what is down. (The paths through
//! running services are tested in `system-tests`.)

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use test_support::{config, spawn_broker};

#[tokio::test]
async fn auth_down_is_a_503() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = broker
        .post_json(
            "/handle",
            json!({"action": "auth", "auth": {"email": "a@b.c", "password": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["message"], "authentication-service is unreachable");
}

#[tokio::test]
async fn mail_service_down_is_a_503() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = broker
        .post_json(
            "/handle",
            json!({"action": "mail", "mail": {"to": "you@example.com", "subject": "x", "message": "y"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["message"], "mail-service is unreachable");
}

#[tokio::test]
async fn rabbitmq_unreachable_is_a_503_within_a_few_seconds() {
    let broker = spawn_broker(config::broker()).await;
    let started = Instant::now();
    let (status, body) = broker
        .post_json(
            "/handle",
            json!({"action": "log", "transport": "amqp", "log": {"name": "lost", "data": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
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

#[tokio::test]
async fn the_logger_down_is_a_prompt_503_on_every_transport() {
    let broker = spawn_broker(config::broker()).await;
    for transport in ["rpc", "http", "grpc"] {
        let started = Instant::now();
        let (status, body) = broker
            .post_json(
                "/handle",
                json!({"action": "log", "transport": transport, "log": {"name": "lost", "data": "x"}}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{transport}: {body}"
        );
        assert_eq!(body["error"], true, "{transport}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{transport}: refused, not timed out ({:?})",
            started.elapsed()
        );
    }
}
