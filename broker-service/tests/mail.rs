//! The `mail` action through the broker to the real mail-service and an SMTP
//! catcher (mailcrab).

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::Url;
use service_kit::shutdown::CancellationToken;
use support::{TestBroker, config, spawn};

async fn mail(broker: &TestBroker, mail: Value) -> (StatusCode, Value) {
    let response = broker
        .client
        .post(broker.url("/handle"))
        .json(&json!({"action": "mail", "mail": mail}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn mail_reaches_the_catcher_and_bad_input_stays_a_400() {
    let smtp_port = test_support::free_port();
    let mut catcher = mailcrab::development_mail_server([127, 0, 0, 1], smtp_port).await;
    let mail_service = mail_service::Application::build(mail_service::Config::for_tests(smtp_port))
        .await
        .unwrap();
    let mut config = config();
    config.mail_url = Url::parse(&format!("http://127.0.0.1:{}", mail_service.port())).unwrap();
    tokio::spawn(mail_service.run(CancellationToken::new()));
    let broker = spawn(config).await;

    let (status, body) =
        mail(&broker, json!({"from": "me@example.com", "to": "you@example.com", "subject": "Hi", "message": "Hello"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body,
        json!({"error": false, "message": "Message sent to you@example.com"})
    );
    let received = tokio::time::timeout(Duration::from_secs(10), catcher.rx.recv())
        .await
        .expect("a mail arrives")
        .unwrap();
    let received = serde_json::to_value(&received).unwrap();
    assert_eq!(received["subject"], "Hi", "{received}");

    let (status, body) = mail(
        &broker,
        json!({"to": "not an address", "subject": "x", "message": "y"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    catcher.token.cancel();
}

#[tokio::test]
async fn mail_service_down_is_a_503() {
    let broker = spawn(config()).await;
    let (status, body) = mail(
        &broker,
        json!({"to": "you@example.com", "subject": "x", "message": "y"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["message"], "mail-service is unreachable");
}
