//! Mail delivered through a real SMTP server (mailcrab's catcher).

mod scripted_smtp;

use std::time::Duration;

use scripted_smtp::{Script, ScriptedSmtp};
use serde_json::{Value, json};
use test_support::{MailCatcher, config, spawn_mail};

/// The first address of a mailcrab address list, or the address itself.
fn email(address: &Value) -> &str {
    let address = if address.is_array() {
        &address[0]
    } else {
        address
    };
    address["email"].as_str().unwrap_or_default()
}

/// Sends `body` through a mail-service of its own to a catcher of its own,
/// which must accept it: the mail as received.
async fn deliver(body: Value) -> Value {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let (status, envelope) = mail.post("/send", body).await;
    assert_eq!(status, 202, "{envelope:?}");
    let received = catcher.next_mail().await;
    mail.stop().await;
    received
}

#[tokio::test]
async fn a_mail_arrives_with_a_plain_part_as_given_and_an_inlined_html_part() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let text = "Hello <b>bold</b> & \"friends\"";

    let (status, envelope) = mail
        .post(
            "/send",
            json!({
                "from": "Alice <alice@example.com>",
                "to": "bob@example.com",
                "subject": "Greetings & more",
                "message": text,
            }),
        )
        .await;
    assert_eq!(status, 202, "{envelope:?}");
    assert!(!envelope.error);
    assert_eq!(envelope.message, "sent to bob@example.com");
    assert!(envelope.data.is_none());

    let received = catcher.next_mail().await;
    assert_eq!(received["subject"], "Greetings & more");
    assert_eq!(email(&received["to"]), "bob@example.com");
    assert_eq!(received["envelope_recipients"], json!(["bob@example.com"]));
    assert_eq!(email(&received["from"]), "alice@example.com");
    assert_eq!(received["from"]["name"], "Alice");

    let plain = received["text"].as_str().unwrap();
    assert!(
        plain.contains(text),
        "the plain part is unescaped: {plain:?}"
    );

    let html = received["html"].as_str().unwrap();
    assert!(!html.contains("<b>"), "{html}");
    assert!(
        html.contains("&#60;b&#62;bold&#60;/b&#62; &#38;")
            || html.contains("&lt;b&gt;bold&lt;/b&gt; &amp;"),
        "the HTML part is escaped: {html}"
    );
    assert!(html.contains("style=\""), "inline styles: {html}");
    assert!(!html.contains("<style"), "no <style> block: {html}");

    let raw = received["raw"].as_str().unwrap();
    assert!(raw.contains("multipart/alternative"), "{raw}");
    mail.stop().await;
}

#[tokio::test]
async fn line_breaks_become_html_paragraphs_and_breaks() {
    let received = deliver(json!({
        "to": "bob@example.com",
        "subject": "Lines",
        "message": "first line\nsecond line\n\nnext paragraph",
    }))
    .await;
    let html = received["html"].as_str().unwrap();
    assert!(html.contains("first line<br"), "{html}");
    assert_eq!(html.matches("<p ").count(), 2, "{html}");
    let plain = received["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        plain.contains("first line\nsecond line\n\nnext paragraph"),
        "{plain:?}"
    );
}

/// A mail past 16 KiB of text is composed on the blocking pool
/// (`routes::COMPOSE_INLINE_BYTES`): it arrives whole all the same.
#[tokio::test]
async fn a_large_mail_arrives_whole() {
    let line = "0123456789 abcdefghij <&> 0123456789 abcdefghij";
    let message = vec![line; 1500].join("\n");
    assert!(message.len() > 64 * 1024);
    let received = deliver(json!({
        "to": "bob@example.com",
        "subject": "Large",
        "message": message,
    }))
    .await;
    let plain = received["text"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(plain.trim_end(), message, "the plain part, whole");
    let html = received["html"].as_str().unwrap();
    assert_eq!(html.matches("<br/>").count(), 1499, "every line break");
    assert_eq!(
        html.matches("&lt;&amp;&gt;").count() + html.matches("&#60;&#38;&#62;").count(),
        1500
    );
}

#[tokio::test]
async fn an_empty_from_is_the_configured_sender() {
    let mut catcher = MailCatcher::start().await;
    let mut config = config::mail(catcher.port);
    config.from_name = "Mail Robot".into();
    config.from_address = "robot@example.org".into();
    let mut mail = spawn_mail(config).await;

    for body in [
        json!({"from": "", "to": "bob@example.com", "message": "hi"}),
        json!({"to": "bob@example.com"}),
    ] {
        let (status, envelope) = mail.post("/send", body).await;
        assert_eq!(status, 202, "{envelope:?}");
        let received = catcher.next_mail().await;
        assert_eq!(email(&received["from"]), "robot@example.org");
        assert_eq!(received["from"]["name"], "Mail Robot");
        assert_eq!(received["envelope_from"], "robot@example.org");
    }

    let (status, _) = mail
        .post(
            "/send",
            json!({"from": "carol@example.net", "to": "bob@example.com"}),
        )
        .await;
    assert_eq!(status, 202);
    let received = catcher.next_mail().await;
    assert_eq!(email(&received["from"]), "carol@example.net");
    mail.stop().await;
}

#[tokio::test]
async fn non_ascii_text_and_subject_survive() {
    let received = deliver(json!({
        "to": "Zoë <zoe@example.com>",
        "subject": "Grüße aus Köln ✉",
        "message": "Schöne Grüße – bis bald!",
    }))
    .await;
    assert_eq!(received["subject"], "Grüße aus Köln ✉");
    assert_eq!(received["to"][0]["name"], "Zoë");
    assert!(
        received["text"]
            .as_str()
            .unwrap()
            .contains("Schöne Grüße – bis bald!")
    );
    assert!(received["html"].as_str().unwrap().contains("Schöne Grüße"));
}

#[tokio::test]
async fn sequential_sends_all_arrive() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    for i in 0..5 {
        let (status, envelope) = mail
            .post(
                "/send",
                json!({"to": "bob@example.com", "subject": format!("mail {i}"), "message": "x"}),
            )
            .await;
        assert_eq!(status, 202, "mail {i}: {envelope:?}");
    }
    let mut subjects = Vec::new();
    for _ in 0..5 {
        subjects.push(
            catcher.next_mail().await["subject"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    subjects.sort();
    assert_eq!(subjects, ["mail 0", "mail 1", "mail 2", "mail 3", "mail 4"]);
    mail.stop().await;
}

#[tokio::test]
async fn sequential_sends_share_one_pooled_connection() {
    let smtp = ScriptedSmtp::start(Script::Accept).await;
    let mut mail = spawn_mail(config::mail(smtp.port)).await;
    for i in 0..5 {
        let (status, envelope) = mail
            .post(
                "/send",
                json!({"to": "bob@example.com", "message": format!("mail {i}")}),
            )
            .await;
        assert_eq!(status, 202, "mail {i}: {envelope:?}");
    }
    assert_eq!(smtp.delivered(), 5);
    assert_eq!(smtp.connections(), 1, "one connection, reused");
    mail.stop().await;
}

#[tokio::test]
async fn concurrent_sends_all_arrive() {
    let mut catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let sends = (0..8).map(|i| {
        mail.post(
            "/send",
            json!({"to": format!("user{i}@example.com"), "message": "x"}),
        )
    });
    for (status, envelope) in futures::future::join_all(sends).await {
        assert_eq!(status, 202, "{envelope:?}");
    }
    for _ in 0..8 {
        catcher.next_mail().await;
    }
    assert!(catcher.nothing_within(Duration::from_millis(200)).await);
    mail.stop().await;
}

#[tokio::test]
async fn ready_while_the_smtp_server_listens() {
    let catcher = MailCatcher::start().await;
    let mut mail = spawn_mail(config::mail(catcher.port)).await;
    let (status, envelope) = mail.get("/readyz").await;
    assert_eq!(status, 200, "{envelope:?}");
    assert_eq!(envelope.data.unwrap()["smtp"], "ok");
    let (status, _) = mail.get("/healthz").await;
    assert_eq!(status, 200);
    mail.stop().await;
}
