//! The test page in headless Chromium against the whole system: every
//! button succeeds, the newest entries appear (the RabbitMQ one after its
//! trip through the listener), and a broker outage is shown as an error.

use std::path::PathBuf;

use system_tests::Browser;
use system_tests::page::{self, WAIT, newest_output};
use test_support::System;

#[tokio::test]
async fn every_button_succeeds_and_an_outage_is_shown_as_an_error() {
    let mut system = System::start().await;
    let browser = Browser::start().await.expect("headless Chromium starts");
    browser.goto(&system.front_end.url("/")).await.unwrap();

    page::click_every_button(&browser).await;

    // The mail reached the SMTP catcher.
    let mail = system.catcher.next_mail().await;
    assert_eq!(mail["subject"], page::MAIL_SUBJECT, "{mail}");

    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    save_screenshot(&png);

    // With the broker gone, the page says so in red.
    system.broker.stop().await;
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
    // support/system-tests -> the root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let target = root.join("target/test-page.png");
    std::fs::write(&target, png).unwrap();
    if std::env::var_os("SAVE_SCREENSHOT").is_some() {
        std::fs::write(root.join("docs/test-page.png"), png).unwrap();
    }
}
