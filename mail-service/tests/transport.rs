//! How the transport talks to the SMTP server: credentials only when a
//! username is set, and TLS modes that never fall back to plain text.

mod scripted_smtp;

use mail_service::Encryption;
use scripted_smtp::{Script, ScriptedSmtp};
use serde_json::json;
use service_kit::config::Secret;
use test_support::{config, spawn_mail};

#[tokio::test]
async fn no_username_means_no_login() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut mail = spawn_mail(config::mail(smtp.port)).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 202, "{envelope:?}");
    assert!(smtp.logins().is_empty(), "{:?}", smtp.logins());
    mail.stop().await;
}

#[tokio::test]
async fn a_username_logs_in_with_the_password() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut config = config::mail(smtp.port);
    config.username = "mailer".into();
    config.password = Secret::from("hunter2");
    let mut mail = spawn_mail(config).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 202, "{envelope:?}");
    // base64("\0mailer\0hunter2")
    assert_eq!(smtp.logins(), ["AUTH PLAIN AG1haWxlcgBodW50ZXIy"]);
    assert_eq!(smtp.delivered(), 1);
    mail.stop().await;
}

#[tokio::test]
async fn starttls_against_a_server_without_it_is_502_and_sends_nothing() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut config = config::mail(smtp.port);
    config.encryption = Encryption::StartTls;
    let mut mail = spawn_mail(config).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 502, "{envelope:?}");
    assert_eq!(envelope.message, "the SMTP exchange failed", "{envelope:?}");
    assert_eq!(smtp.delivered(), 0);
    mail.stop().await;
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_is_502_and_sends_nothing() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut config = config::mail(smtp.port);
    config.encryption = Encryption::Tls;
    let mut mail = spawn_mail(config).await;
    let (status, envelope) = mail.post("/send", json!({"to": "bob@example.com"})).await;
    assert_eq!(status, 502, "{envelope:?}");
    assert_eq!(smtp.delivered(), 0);
    mail.stop().await;
}
