//! The walk through the test page that both browser tests make: the one
//! against the system started in-process and the one against a deployed
//! stack (compose or Swarm, through Caddy).

use std::time::Duration;

use crate::Browser;

/// Each button, and the message its success envelope carries.
pub const BUTTONS: [(&str, &str); 7] = [
    ("#broker-btn", "Hit the broker"),
    ("#auth-btn", "Authenticated!"),
    ("#log-btn", "Processed payload via RPC: event"),
    ("#http-log-btn", "Processed payload via HTTP: event"),
    ("#grpc-log-btn", "Processed payload via gRPC: event"),
    ("#amqp-log-btn", "logged via RabbitMQ"),
    ("#mail-btn", "Message sent to you@example.com"),
];

/// The subject and recipient of the mail the Test Mail button sends.
pub const MAIL_SUBJECT: &str = "Test email";
pub const MAIL_TO: &str = "you@example.com";

/// How long a button's answer, or a log entry's arrival, may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The class and text of the newest line in the output panel.
pub async fn newest_output(browser: &Browser) -> (String, String) {
    let line = browser
        .script("const l = document.querySelector('#output div'); return l ? [l.className, l.textContent] : ['', ''];")
        .await
        .unwrap();
    (
        line[0].as_str().unwrap().to_owned(),
        line[1].as_str().unwrap().to_owned(),
    )
}

/// Checks that Test Mail needs a login first, then clicks every button on
/// the loaded page and checks that each succeeds:
/// the envelope's message in Received, the payload in Sent, a green line in
/// the output; then that every log entry reaches the newest-entries panel,
/// the RabbitMQ one after its trip through the listener, and that the login
/// was logged too.
pub async fn click_every_button(browser: &Browser) {
    // Before Test Auth there is no access token: the panel of newest
    // entries and Test Mail say so, and nothing is sent.
    browser
        .wait_for_text("#logs-body", WAIT, |text| text.contains("click Test Auth"))
        .await
        .expect("the panel asks to log in first");
    browser.click("#mail-btn").await.unwrap();
    browser
        .wait_for_text("#output", WAIT, |text| {
            text.contains("Test Mail needs an access token: click Test Auth first.")
        })
        .await
        .expect("Test Mail without a token says so");
    assert_eq!(newest_output(browser).await.0, "error");

    for (button, message) in BUTTONS {
        browser.click(button).await.unwrap();
        let expected = format!("\"message\": \"{message}\"");
        let received = browser
            .wait_for_text("#received", WAIT, |text| text.contains(&expected))
            .await
            .unwrap_or_else(|e| panic!("{button}: {e}"));
        assert!(
            received.contains("\"error\": false"),
            "{button}: {received}"
        );
        assert!(!browser.text("#payload").await.unwrap().is_empty());
        let (class, text) = newest_output(browser).await;
        assert_eq!(class, "ok", "{button}: {text}");
        // Each answer's line ends with its trace id: the request id the
        // broker answered with, without its hyphens.
        let (shown, trace) = text
            .rsplit_once("  (trace ")
            .unwrap_or_else(|| panic!("{button}: no trace id in {text:?}"));
        assert!(shown.ends_with(message), "{button}: {text}");
        let trace = trace.strip_suffix(')').unwrap_or_default();
        assert!(
            trace.len() == 32 && trace.chars().all(|c| c.is_ascii_hexdigit()),
            "{button}: {text}"
        );
    }

    let logs = browser
        .wait_for_text("#logs-body", WAIT, |text| {
            ["RPC", "HTTP", "gRPC", "RabbitMQ"]
                .iter()
                .all(|t| text.contains(&format!("Some kind of {t} data")))
        })
        .await
        .expect("the newest entries show every log");
    assert!(
        logs.contains("authentication"),
        "the login was logged too: {logs}"
    );
}
