//! Property tests of the broker's request decoding, over real HTTP: any
//! body at all gets an answer in the envelope with a 4xx (or, for a
//! well-formed request whose dependency is down, a 503), never a 500, a
//! hang or a panic.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{config, spawn_broker};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::hash_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Requests shaped like the real ones, with wrong or missing parts.
fn almost_requests() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        Just("log"),
        Just("auth"),
        Just("mail"),
        Just("dance"),
        Just("")
    ];
    let transport = prop_oneof![
        Just(json!("rpc")),
        Just(json!("http")),
        Just(json!("grpc")),
        Just(json!("amqp")),
        Just(json!("smoke")),
        Just(json!(7)),
    ];
    (
        action,
        proptest::option::of(transport),
        any_json(),
        any_json(),
    )
        .prop_map(|(action, transport, payload, other)| {
            let mut request =
                json!({"action": action, "log": payload, "auth": other.clone(), "mail": other});
            if let Some(transport) = transport {
                request["transport"] = transport;
            }
            request
        })
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        almost_requests().prop_map(|v| v.to_string().into_bytes()),
    ]
}

#[test]
fn any_body_gets_a_clear_error_and_never_a_500() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every dependency unreachable: nothing can succeed, everything must
    // be answered.
    let broker = runtime.block_on(spawn_broker(config::broker()));
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let outcome = runner.run(&bodies(), |body| {
        let (status, answer) = runtime.block_on(async {
            let response = broker
                .client
                .post(broker.url("/handle"))
                .timeout(Duration::from_secs(10))
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            let status = response.status();
            (status, response.json::<Value>().await.expect("an envelope"))
        });
        prop_assert!(
            status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{} for {}: {}",
            status,
            String::from_utf8_lossy(&body),
            answer
        );
        prop_assert_eq!(&answer["error"], &json!(true));
        prop_assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
