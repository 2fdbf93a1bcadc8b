//! The broker's HTTP contract (docs/contracts.md §3, §4) over real HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{TestApp, config, spawn_broker};

async fn post_raw(
    broker: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = broker
        .client
        .post(broker.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the broker answers");
    let status = response.status();
    let body: Value = response.json().await.expect("the answer is JSON");
    (status, body)
}

async fn handle(broker: &TestApp, body: Value) -> (StatusCode, Value) {
    post_raw(broker, "/handle", "application/json", body.to_string()).await
}

fn assert_error(body: &Value, needle: &str) {
    assert_eq!(body["error"], true, "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

#[tokio::test]
async fn post_root_hits_the_broker() {
    let broker = spawn_broker(config::broker()).await;
    let response = broker.client.post(broker.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":false,"message":"Hit the broker"}"#
    );
}

#[tokio::test]
async fn a_json_body_is_accepted_whatever_its_content_type() {
    let broker = spawn_broker(config::broker()).await;
    // What `curl -d '{...}'` sends: a form content type.
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/json",
    ] {
        let (status, body) =
            post_raw(&broker, "/handle", content_type, r#"{"action":"dance"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}");
        assert_eq!(
            body,
            json!({"error": true, "message": "unknown action"}),
            "{content_type}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_with_the_parsers_message() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = post_raw(
        &broker,
        "/handle",
        "application/json",
        r#"{"action": "log","#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid JSON body: EOF while parsing");

    let (status, body) = post_raw(&broker, "/handle", "application/json", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "line 1 column 0");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let broker = spawn_broker(config::broker()).await;
    let big = format!(
        r#"{{"action":"log","log":{{"name":"x","data":"{}"}}}}"#,
        "a".repeat(1024 * 1024)
    );
    let (status, body) = post_raw(&broker, "/handle", "application/json", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "larger than 1048576 bytes");

    // The same without a Content-Length: the limit holds for a streamed body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let stream = reqwest::Body::wrap_stream(futures_util_stream(chunks));
    let (status, body) = post_raw(&broker, "/handle", "application/json", stream).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "larger than");

    // Just under the limit is read and parsed.
    let fits = format!(
        r#"{{"action":"dance","pad":"{}"}}"#,
        "a".repeat(1024 * 1024 - 40)
    );
    let (status, body) = post_raw(&broker, "/handle", "application/json", fits).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "unknown action");
}

fn futures_util_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn missing_fields_are_named_and_unknown_fields_ignored() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = handle(&broker, json!({"log": {"name": "x"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "missing field `action`");

    for action in ["auth", "log", "mail"] {
        let (status, body) = handle(&broker, json!({"action": action})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action}");
        assert_error(&body, &format!("missing field `{action}`"));
    }

    let (status, body) = handle(
        &broker,
        json!({"action": "log", "log": {"data": "no name"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "missing field `name`");

    let (status, body) = handle(
        &broker,
        json!({"action": "dance", "colour": "blue", "log": {"name": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": true, "message": "unknown action"}));
}

#[tokio::test]
async fn an_unknown_transport_is_a_400() {
    let broker = spawn_broker(config::broker()).await;
    let (status, body) = handle(
        &broker,
        json!({"action": "log", "transport": "pigeon", "log": {"name": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "unknown variant `pigeon`");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let broker = spawn_broker(config::broker()).await;
    let response = broker
        .client
        .get(broker.url("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_error(&response.json().await.unwrap(), "no such route");

    let response = broker
        .client
        .get(broker.url("/handle"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&response.json().await.unwrap(), "method not allowed");
}

#[tokio::test]
async fn bad_paging_of_the_logs_is_a_400_before_the_logger_is_asked() {
    // The logger in this configuration is unreachable: a 400 shows the
    // query was refused before any call to it.
    let broker = spawn_broker(config::broker()).await;
    for (query, needle) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?skip=-1", "skip"),
        ("?skip=10001", "skip"),
    ] {
        let response = broker
            .client
            .get(broker.url(&format!("/logs{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_error(&response.json().await.unwrap(), needle);
    }
}
