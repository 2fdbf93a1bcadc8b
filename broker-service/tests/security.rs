//! The broker's controls against an outsider (docs/security.md): tokens
//! for mail and for reading the log, browsers only from the allowed
//! origins, and a per-client limit on logins and mails.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{TestApp, config, spawn_broker};

const PAGE: &str = "http://localhost:8081";
const ELSEWHERE: &str = "https://evil.example";

/// A client that is not signed in (every `TestApp` client is).
fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn broker() -> TestApp {
    spawn_broker(broker_service::Config {
        security: config::broker_security(&[PAGE]),
        ..config::broker()
    })
    .await
}

fn mail() -> Value {
    json!({"action": "mail", "mail": {"to": "you@example.com", "subject": "s", "message": "m"}})
}

async fn answer(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("the broker answers");
    let (status, headers) = (response.status(), response.headers().clone());
    // A preflight that is granted has no body.
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn mail_and_the_log_need_a_valid_token() {
    let broker = broker().await;
    let other_key =
        service_kit::token::TokenKey::new(b"a key that is not the broker's, 32+").unwrap();
    let expired = test_support::token_key().issue(1, "admin@example.com", Duration::ZERO);
    let forged = other_key.issue(1, "admin@example.com", Duration::from_secs(60));
    for (token, challenge) in [
        (None, "Bearer realm=\"microservices\""),
        (
            Some("not-a-token"),
            "Bearer realm=\"microservices\", error=\"invalid_token\"",
        ),
        (
            Some(forged.as_str()),
            "Bearer realm=\"microservices\", error=\"invalid_token\"",
        ),
    ] {
        let with_token = |request: reqwest::RequestBuilder| match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        for request in [
            anonymous().post(broker.url("/handle")).json(&mail()),
            anonymous().get(broker.url("/logs")),
        ] {
            let (status, headers, body) = answer(with_token(request)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
            assert_eq!(body["error"], true);
            assert_eq!(headers["www-authenticate"], challenge, "{token:?}");
        }
    }
    // Expiry is checked with a few seconds' leeway: a token that expired
    // now still passes, so this one waits past it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, _, body) = answer(
        anonymous()
            .post(broker.url("/handle"))
            .bearer_auth(&expired)
            .json(&mail()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "the token has expired; log in again");

    // With a valid token the broker goes on to mail-service (unreachable
    // in this configuration): the token was all that stopped it.
    let (status, body) = broker.post_json("/handle", mail()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Logging needs no token.
    let (status, _, _) = answer(anonymous().post(broker.url("/")).body("{}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_mails_token_is_checked_before_its_payload() {
    let broker = broker().await;
    // No token and no payload: the 401, not the missing field's 400.
    let (status, _, body) = answer(
        anonymous()
            .post(broker.url("/handle"))
            .json(&json!({"action": "mail"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("this needs an access token"),
        "{body}"
    );
    // With a token, the missing payload is named.
    let (status, body) = broker.post_json("/handle", json!({"action": "mail"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "missing field `mail` for action mail");
    // The other actions need no token, with or without their payload.
    for action in ["auth", "log"] {
        let (status, _, body) = answer(
            anonymous()
                .post(broker.url("/handle"))
                .json(&json!({"action": action})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            body["message"],
            format!("missing field `{action}` for action {action}")
        );
    }
}

#[tokio::test]
async fn a_browser_on_another_site_is_refused_before_anything_runs() {
    let broker = broker().await;
    // A form or fetch from another site, posting text/plain: no preflight,
    // so the refusal must come from the broker itself.
    let log = json!({"action": "log", "transport": "amqp", "log": {"name": "x", "data": "y"}});
    for request in [
        anonymous()
            .post(broker.url("/handle"))
            .header("content-type", "text/plain")
            .body(log.to_string()),
        anonymous()
            .post(broker.url("/handle"))
            .header("content-type", "text/plain")
            .body(mail().to_string()),
        anonymous().get(broker.url("/logs")),
        broker.client.get(broker.url("/logs")),
    ] {
        let (status, headers, body) = answer(request.header("origin", ELSEWHERE)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("not allowed"),
            "{body}"
        );
        assert!(
            !headers.contains_key("access-control-allow-origin"),
            "no CORS grant: {headers:?}"
        );
    }
    // A preflight from there gets no grant either.
    let (status, headers, _) = answer(
        anonymous()
            .request(reqwest::Method::OPTIONS, broker.url("/handle"))
            .header("origin", ELSEWHERE)
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_test_page_gets_cors_grants_and_the_same_token_rule() {
    let broker = broker().await;
    let (status, headers, _) = answer(
        anonymous()
            .request(reqwest::Method::OPTIONS, broker.url("/handle"))
            .header("origin", PAGE)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            ),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers["access-control-allow-origin"], PAGE);
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(!headers.contains_key("access-control-allow-credentials"));

    // The page without a token reads the 401 (its origin is granted).
    let (status, headers, _) =
        answer(anonymous().get(broker.url("/logs")).header("origin", PAGE)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["access-control-allow-origin"], PAGE);
    // curl and the services send no Origin, with any Content-Type.
    let (status, _, body) = answer(
        anonymous()
            .post(broker.url("/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn logins_and_mails_past_the_clients_limit_are_429s_with_retry_after() {
    let broker = spawn_broker(broker_service::Config {
        security: broker_service::Security {
            logins_per_minute: 3,
            mails_per_minute: 2,
            ..config::broker_security(&[])
        },
        ..config::broker()
    })
    .await;
    let login = json!({"action": "auth", "auth": {"email": "a@example.com", "password": "p"}});
    for (body, allowed) in [(login, 3), (mail(), 2)] {
        for attempt in 0..allowed + 2 {
            let (status, headers, answer) =
                answer(broker.client.post(broker.url("/handle")).json(&body)).await;
            if attempt < allowed {
                // Through to the (unreachable) service behind.
                assert_eq!(
                    status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{attempt}: {answer}"
                );
            } else {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{attempt}: {answer}");
                let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&wait), "{wait}");
                assert_eq!(answer["error"], true);
            }
        }
    }
}
