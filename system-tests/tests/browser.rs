//! The test page in headless Chromium against the whole system: every
//! button succeeds, the newest entries appear (the RabbitMQ one after its
//! trip through the listener), and a broker outage is shown as an error.

use std::path::PathBuf;
use std::time::Duration;

use system_tests::{Browser, System};

/// Each button, and the message its success envelope carries.
const BUTTONS: [(&str, &str); 7] = [
    ("#broker-btn", "Hit the broker"),
    ("#auth-btn", "Authenticated!"),
    ("#log-btn", "Processed payload via RPC: event"),
    ("#http-log-btn", "Processed payload via HTTP: event"),
    ("#grpc-log-btn", "Processed payload via gRPC: event"),
    ("#amqp-log-btn", "logged via RabbitMQ"),
    ("#mail-btn", "Message sent to you@example.com"),
];

const WAIT: Duration = Duration::from_secs(15);

/// The class and text of the newest line in the output panel.
async fn newest_output(browser: &Browser) -> (String, String) {
    let line = browser
        .script("const l = document.querySelector('#output div'); return l ? [l.className, l.textContent] : ['', ''];")
        .await
        .unwrap();
    (
        line[0].as_str().unwrap().to_owned(),
        line[1].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_button_succeeds_and_an_outage_is_shown_as_an_error() {
    let mut system = System::start().await.expect("the system starts");
    let browser = Browser::start().await.expect("headless Chromium starts");
    browser.goto(system.front_end_url.as_str()).await.unwrap();

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
        let (class, text) = newest_output(&browser).await;
        assert_eq!(class, "ok", "{button}: {text}");
        assert!(text.ends_with(message), "{button}: {text}");
    }

    // Every log entry reaches the panel, the RabbitMQ one via the listener.
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

    // The mail reached the SMTP catcher.
    let mail = tokio::time::timeout(WAIT, system.mail.rx.recv())
        .await
        .expect("a mail arrives")
        .unwrap();
    assert!(format!("{mail:?}").contains("Test email"));

    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    save_screenshot(&png);

    // With the broker gone, the page says so in red.
    system.stop_broker().await;
    browser.click("#broker-btn").await.unwrap();
    browser
        .wait_for_text("#received", WAIT, |text| text.contains("\"error\": true"))
        .await
        .unwrap();
    let (class, text) = newest_output(&browser).await;
    assert_eq!(class, "error", "{text}");
    assert!(
        text.contains("Test Broker: the broker is unreachable"),
        "{text}"
    );

    browser.quit().await;
}

/// Always under `target/`; also as `docs/test-page.png` when
/// `SAVE_SCREENSHOT` is set (`make screenshot`), so a normal test run leaves
/// the work tree unchanged.
fn save_screenshot(png: &[u8]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = root.join("target/test-page.png");
    std::fs::write(&target, png).unwrap();
    if std::env::var_os("SAVE_SCREENSHOT").is_some() {
        std::fs::write(root.join("docs/test-page.png"), png).unwrap();
    }
}
