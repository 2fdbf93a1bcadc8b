//! The attacks of docs/security.md against the whole system: a login
//! flood from one client, and the two-step flow a real client uses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::System;

/// A client connecting from `source` (any 127.x.y.z reaches the broker on
/// 127.0.0.1), without a token.
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(source)))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_login_flood_gets_429s_and_a_legitimate_login_is_still_answered_in_a_second() {
    let system = System::start().await;
    let url = system.broker.url("/handle");
    let attacker = client_from([127, 0, 0, 1]);
    let flood: Vec<_> = (0..50)
        .map(|i| {
            let (client, url) = (attacker.clone(), url.clone());
            tokio::spawn(async move {
                let guess = json!({"action": "auth", "auth": {"email": "admin@example.com", "password": format!("guess{i}")}});
                let response = client.post(url).json(&guess).send().await.unwrap();
                (response.status(), response.headers().get("retry-after").cloned())
            })
        })
        .collect();
    let mut limited = 0;
    for answer in flood {
        let (status, retry_after) = answer.await.unwrap();
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                assert!(retry_after.is_some(), "429 without Retry-After");
            }
            other => panic!("a guess was answered {other}"),
        }
    }
    assert!(limited >= 30, "only {limited} of 50 guesses were limited");

    // Another client, another account: answered at once, and let in.
    let started = Instant::now();
    let response = client_from([127, 0, 0, 2])
        .post(&url)
        .json(&json!({"action": "auth", "auth": {"email": "someone@example.com", "password": "x"}}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(took < Duration::from_secs(1), "took {took:?}");

    // The attacked account itself is locked for a while (per-account
    // lockout), even from another client: 429, not a password check.
    let response = client_from([127, 0, 0, 3])
        .post(&url)
        .json(&json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_two_step_flow_log_in_then_mail_with_the_token() {
    let mut system = System::start().await;
    let client = client_from([127, 0, 0, 1]);
    let handle = system.broker.url("/handle");
    let mail = json!({"action": "mail", "mail": {"to": "you@example.com", "subject": "two steps", "message": "m"}});
    let response = client.post(&handle).json(&mail).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let login: Value = client
        .post(&handle)
        .json(&json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["access_token"].as_str().expect("a token");
    let response = client
        .post(&handle)
        .bearer_auth(token)
        .json(&mail)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let received = system.catcher.next_mail().await;
    assert_eq!(received["subject"], "two steps");
}
