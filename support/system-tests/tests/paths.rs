//! Every path through the broker against the real services behind it (the
//! whole system, in-process, each service on random ports): the four log
//! transports, authentication, mail, and a logger restart.

use std::time::{Duration, Instant};

use listener_service::Metrics;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{System, TestApp, eventually};

async fn handle(broker: &TestApp, body: Value) -> (StatusCode, Value) {
    broker.post_json("/handle", body).await
}

async fn log_via(broker: &TestApp, transport: &str, name: &str) -> (StatusCode, Value) {
    handle(broker, json!({"action": "log", "transport": transport, "log": {"name": name, "data": "some data"}})).await
}

/// The names `GET /logs` on the broker lists, newest first.
async fn recent_names(broker: &TestApp) -> Vec<String> {
    let entries = broker.list_logs("?limit=50").await;
    entries.into_iter().map(|e| e.name).collect()
}

const TRANSPORTS: [(&str, &str); 3] = [
    ("rpc", "Processed payload via RPC: entry-rpc"),
    ("http", "Processed payload via HTTP: entry-http"),
    ("grpc", "Processed payload via gRPC: entry-grpc"),
];

#[tokio::test]
async fn each_transport_stores_an_entry_that_get_logs_lists() {
    let system = System::start().await;
    let broker = &system.broker;
    for (transport, message) in TRANSPORTS {
        let (status, body) = log_via(broker, transport, &format!("entry-{transport}")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
        assert_eq!(body, json!({"error": false, "message": message}));
    }
    // No transport named: RPC.
    let (status, body) = handle(
        broker,
        json!({"action": "log", "log": {"name": "entry-default"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["message"], "Processed payload via RPC: entry-default");
    // The course's own gRPC route.
    let (status, body) = broker
        .post_json(
            "/log-grpc",
            json!({"action": "log", "log": {"name": "entry-log-grpc", "data": "d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    assert_eq!(
        recent_names(broker).await,
        [
            "entry-log-grpc",
            "entry-default",
            "entry-grpc",
            "entry-http",
            "entry-rpc"
        ],
        "newest first"
    );
}

#[tokio::test]
async fn a_bad_entry_is_refused_on_every_transport_and_nothing_is_stored() {
    let system = System::start().await;
    for transport in ["rpc", "http", "grpc", "amqp"] {
        for name in ["", "   ", &"n".repeat(257)] {
            let (status, body) = log_via(&system.broker, transport, name).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{transport} {name:?}: {body}"
            );
        }
    }
    assert!(recent_names(&system.broker).await.is_empty());
}

#[tokio::test]
async fn an_amqp_log_is_confirmed_then_stored_by_the_listener() {
    let system = System::start().await;
    let broker = &system.broker;
    for (level, name) in [
        (None, "amqp-info"),
        (Some("WARNING"), "amqp-warning"),
        (Some("ERROR"), "amqp-error"),
    ] {
        let mut entry = json!({"name": name, "data": "via RabbitMQ"});
        if let Some(level) = level {
            entry["level"] = json!(level);
        }
        let (status, body) = handle(
            broker,
            json!({"action": "log", "transport": "amqp", "log": entry}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(
            body,
            json!({"error": false, "message": "logged via RabbitMQ"})
        );
    }

    // RabbitMQ drops every connection (as in a restart): the broker's next
    // publish dials again, and the listener reconnects.
    assert!(system.vhost.close_connections() >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = log_via(broker, "amqp", "amqp-again").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let expected = ["amqp-again", "amqp-error", "amqp-info", "amqp-warning"];
    let stored = eventually(Duration::from_secs(20), || async {
        let mut names = recent_names(broker).await;
        // A redelivery after the cut is stored once: the exact four.
        names.sort();
        names == expected
    })
    .await;
    assert!(stored, "stored: {:?}", recent_names(broker).await);
}

#[tokio::test]
async fn auth_passes_through_success_and_401_and_logs_the_attempt() {
    let system = System::start().await;
    let broker = &system.broker;
    let (status, body) = handle(
        broker,
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["message"], "Authenticated!");
    assert_eq!(body["data"]["user"]["email"], "admin@example.com");
    // The two-step flow: the token from the login opens the log.
    let token = body["data"]["access_token"].as_str().expect("a token");
    let response = reqwest::Client::new()
        .get(broker.url("/logs"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, body) = handle(
        broker,
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "nope"}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": true, "message": "invalid credentials"})
    );

    // Both attempts reach the logger, in the background.
    let logged = eventually(Duration::from_secs(5), || async {
        let names = recent_names(broker).await;
        names.iter().filter(|n| *n == "authentication").count() == 2
    })
    .await;
    assert!(
        logged,
        "login attempts not logged: {:?}",
        recent_names(broker).await
    );
}

#[tokio::test]
async fn mail_reaches_the_smtp_server_and_bad_input_stays_a_400() {
    let mut system = System::start().await;
    let (status, body) = handle(
        &system.broker,
        json!({"action": "mail", "mail": {"from": "me@example.com", "to": "you@example.com", "subject": "Hi", "message": "Hello"}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"error": false, "message": "Message sent to you@example.com"})
    );
    let received = system.catcher.next_mail().await;
    assert_eq!(received["subject"], "Hi", "{received}");

    let (status, body) = handle(
        &system.broker,
        json!({"action": "mail", "mail": {"to": "not an address", "subject": "x", "message": "y"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        system
            .catcher
            .nothing_within(Duration::from_millis(500))
            .await,
        "nothing is sent for a bad request"
    );
}

#[tokio::test]
async fn every_transport_survives_a_logger_restart() {
    let mut system = System::start().await;
    for (transport, _) in TRANSPORTS {
        let (status, body) = log_via(&system.broker, transport, "before").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
    }

    system.logger.stop().await;
    for (transport, _) in TRANSPORTS {
        let started = Instant::now();
        let (status, body) = log_via(&system.broker, transport, "while-down").await;
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT,
            "{transport}: {status} {body}"
        );
        assert_eq!(body["error"], true);
        // Bounded by the broker's upstream timeout (5 s in the System).
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{transport} took {:?}",
            started.elapsed()
        );
    }

    system.logger.restart().await;
    for (transport, message) in TRANSPORTS {
        let (status, body) =
            log_via(&system.broker, transport, &format!("entry-{transport}")).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "first {transport} call after the restart: {body}"
        );
        assert_eq!(body["message"], message);
    }
}

#[tokio::test]
async fn an_entry_sent_again_with_its_id_is_stored_once_whatever_the_transport() {
    let system = System::start().await;
    let id = test_support::new_entry_id();
    for transport in ["rpc", "http", "grpc", "amqp", "http"] {
        let (status, body) = handle(
            &system.broker,
            json!({"action": "log", "transport": transport, "log": {"name": "retried", "data": "x", "id": id}}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
    }
    // The amqp one has gone through the listener by the time it is acked.
    let drained = eventually(Duration::from_secs(10), || async {
        Metrics::get(&system.listener.metrics.stored) == 1
    })
    .await;
    assert!(drained, "the listener stored (or found) the amqp one");
    let entries = system.broker.list_logs("?limit=50").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].id, id);

    let (status, body) = handle(
        &system.broker,
        json!({"action": "log", "log": {"name": "bad-id", "id": "xyz"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("malformed id"),
        "{body}"
    );
}
