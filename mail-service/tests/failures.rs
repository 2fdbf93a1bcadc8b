//! Bad requests, and SMTP servers that refuse, hang or are not there.

mod scripted_smtp;

use std::time::{Duration, Instant};

use scripted_smtp::{Script, ScriptedSmtp};
use serde_json::{Value, json};
use test_support::{MailCatcher, config, spawn_mail};

#[tokio::test]
async fn malformed_addresses_are_400_naming_the_field() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;

    for (body, field) in [
        (json!({"to": "not an address", "message": "x"}), "`to`"),
        (json!({"to": "bob@", "message": "x"}), "`to`"),
        (json!({"to": "", "message": "x"}), "`to`"),
        (json!({"to": "   ", "message": "x"}), "`to`"),
        (
            json!({"from": "alice at example", "to": "bob@example.com"}),
            "`from`",
        ),
        (
            json!({"from": "Alice <alice@>", "to": "bob@example.com"}),
            "`from`",
        ),
        (json!({"from": "a@example.com", "message": "x"}), "`to`"),
        (json!({"to": 42}), "invalid type"),
    ] {
        let (status, envelope) = mail.post("/send", body.clone()).await;
        assert_eq!(status, 400, "{body}: {envelope:?}");
        assert!(envelope.error);
        assert!(
            envelope.message.contains(field),
            "{body}: {}",
            envelope.message
        );
    }
    let (status, envelope) = mail.post("/send", json!({"message": "x"})).await;
    assert_eq!(status, 400);
    assert!(
        envelope.message.contains("missing field `to`"),
        "{envelope:?}"
    );

    let response = mail
        .client
        .post(mail.url("/send"))
        .header("content-type", "application/json")
        .body(r#"{"to": "bob@example.com""#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "malformed JSON");

    assert!(
        catcher.nothing_within(Duration::from_millis(300)).await,
        "nothing was sent"
    );
    mail.stop().await;
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_a_415_and_sends_nothing() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let body = r#"{"to":"bob@example.com","message":"from curl"}"#;
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = mail.client.post(mail.url("/send")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["error"], true);
        let message = envelope["message"].as_str().unwrap();
        assert!(
            message.contains("Content-Type: application/json"),
            "{message}"
        );
    }
    assert!(
        catcher.nothing_within(Duration::from_millis(300)).await,
        "nothing was sent"
    );
    // A JSON type with parameters is JSON.
    let response = mail
        .client
        .post(mail.url("/send"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        catcher.next_mail().await["text"].as_str().unwrap().trim(),
        "from curl"
    );
    mail.stop().await;
}

/// A page on another site, or the test page itself, posting a form to
/// mail-service on this machine: refused before anything is read, so the
/// relay sends nothing for a web page (docs/security.md).
#[tokio::test]
async fn a_cross_site_post_is_a_403_and_sends_nothing() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let letter = json!({"from": "a@evil.example", "to": "victim@example.com", "subject": "s", "message": "m"});
    for origin in [
        "http://evil.example",
        "http://localhost",
        "http://127.0.0.1:8081",
        "null",
    ] {
        let (status, envelope) = mail.post_from_page(origin, "/send", &letter).await;
        assert_eq!(status, 403, "{origin}: {envelope:?}");
        assert!(envelope.error);
        assert!(
            envelope
                .message
                .contains(&format!("from the origin {origin} are")),
            "{envelope:?}"
        );
        assert!(
            envelope.message.contains("no requests from web pages"),
            "{envelope:?}"
        );
    }
    assert!(
        catcher.nothing_within(Duration::from_millis(300)).await,
        "nothing was sent"
    );
    // Without an Origin (another service, curl), the same letter goes.
    let (status, envelope) = mail.post("/send", &letter).await;
    assert_eq!(status, 202, "{envelope:?}");
    assert_eq!(
        catcher.next_mail().await["text"].as_str().unwrap().trim(),
        "m"
    );
    mail.stop().await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_504_within_the_send_timeout() {
    let smtp = ScriptedSmtp::start(Script::Silent).await;
    let mut config = config::mail(smtp.port);
    config.send_timeout = Duration::from_secs(1);
    let mut mail = spawn_mail(config).await;

    let started = Instant::now();
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    let took = started.elapsed();
    assert_eq!(status, 504, "{envelope:?}");
    assert!(envelope.error);
    assert!(envelope.message.contains("1000 ms"), "{envelope:?}");
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    mail.stop().await;
}

#[tokio::test]
async fn a_refusing_greeting_is_502_without_the_servers_words() {
    let smtp = ScriptedSmtp::start(Script::Greeting("554 5.3.2 no service here")).await;
    let mut mail = spawn_mail(config::mail(smtp.port)).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 502, "{envelope:?}");
    assert!(envelope.error);
    // What the server said, and where it is, go to the log only.
    assert_eq!(envelope.message, "the SMTP server refused the mail");
    mail.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_is_502_and_the_next_mail_still_goes_out() {
    let smtp = ScriptedSmtp::start(Script::RejectRecipients("550 5.1.1 no such user")).await;
    let mut mail = spawn_mail(config::mail(smtp.port)).await;
    for _ in 0..2 {
        let (status, envelope) = mail
            .post("/send", json!({"to": "nobody@example.com"}))
            .await;
        assert_eq!(status, 502, "{envelope:?}");
        assert_eq!(envelope.message, "the SMTP server refused the mail");
    }
    assert_eq!(smtp.delivered(), 0);
    mail.stop().await;
}

#[tokio::test]
async fn a_transient_refusal_is_502_too() {
    let smtp = ScriptedSmtp::start(Script::RejectRecipients("451 4.3.0 try again later")).await;
    let mut mail = spawn_mail(config::mail(smtp.port)).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 502, "{envelope:?}");
    assert_eq!(envelope.message, "the SMTP server refused the mail");
    mail.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_503_and_not_ready() {
    let mut mail = spawn_mail(config::mail(config::DEAD_PORT)).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 503, "{envelope:?}");
    assert!(envelope.error);

    let (status, envelope) = mail.get("/readyz").await;
    assert_eq!(status, 503, "{envelope:?}");
    assert!(envelope.message.contains("smtp"), "{envelope:?}");
    let (status, _) = mail.get("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready");
    mail.stop().await;
}

#[tokio::test]
async fn a_send_cut_off_by_the_timeout_does_not_poison_the_pool() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut config = config::mail(smtp.port);
    config.send_timeout = Duration::from_secs(1);
    let mut mail = spawn_mail(config).await;

    let (status, _) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 202);
    // The pooled connection now hangs in the middle of the next exchange.
    smtp.hang_next_mail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 504, "{envelope:?}");
    // Had that connection gone back to the pool, this send would wait on
    // it and time out too.
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 202, "{envelope:?}");
    assert_eq!(smtp.delivered(), 2);
    assert_eq!(smtp.connections(), 2);
    mail.stop().await;
}

#[tokio::test]
async fn the_smtp_server_coming_back_needs_no_restart() {
    let port = test_support::free_port();
    let mut mail = spawn_mail(config::mail(port)).await;
    let (status, _) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 503);

    let mut catcher = MailCatcher::start_on(port).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 202, "{envelope:?}");
    catcher.next_mail().await;
    let (status, _) = mail.get("/readyz").await;
    assert_eq!(status, 200);
    mail.stop().await;
}
