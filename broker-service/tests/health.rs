//! Liveness and readiness of the broker.

use reqwest::StatusCode;
use service_kit::config::Url;
use test_support::{config, spawn_broker};

#[tokio::test]
async fn healthz_and_ping_answer_while_the_process_runs() {
    let broker = spawn_broker(config::broker()).await;
    for path in ["/healthz", "/ping"] {
        let (status, body) = broker.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["error"], false);
    }
}

/// With its dependencies down the broker still answers (each path with a
/// clear 503), so it stays ready, and names each one that is down.
#[tokio::test]
async fn readyz_stays_green_and_names_every_dependency_that_is_down() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = broker.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"], false);
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("ready; degraded:"), "{message}");
    for dependency in [
        "authentication-service",
        "logger-service",
        "mail-service",
        "rabbitmq",
    ] {
        assert!(message.contains(dependency), "{message}");
        assert_ne!(body["data"][dependency], "ok", "{body}");
    }
}

#[tokio::test]
async fn readyz_reports_each_dependency_as_it_comes_and_goes() {
    // Another broker stands in as the next hop: all the check needs is a
    // /readyz that answers 200. RabbitMQ's check is a TCP connect.
    let mut next_hop = spawn_broker(config::broker()).await;
    let next_hop_url = next_hop.base_url();
    let amqp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config::broker();
    config.auth_url = next_hop_url.clone().into();
    config.logger_url = next_hop_url.clone().into();
    config.mail_url = next_hop_url.into();
    config.amqp_url = Url::parse(&format!(
        "amqp://guest:guest@{}/%2f",
        amqp.local_addr().unwrap()
    ))
    .unwrap();
    let broker = spawn_broker(config).await;

    let (status, body) = broker.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "ready", "{body}");
    assert_eq!(body["data"]["rabbitmq"], "ok", "{body}");
    assert_eq!(body["data"]["mail-service"], "ok", "{body}");

    // The next hop goes away: still ready, now degraded.
    next_hop.stop().await;
    let (status, body) = broker.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["message"],
        "ready; degraded: authentication-service, logger-service, mail-service unavailable"
    );
    assert_eq!(body["data"]["rabbitmq"], "ok", "{body}");
    drop(amqp);
}
