//! The test page of a deployed stack (compose or Swarm) in headless
//! Chromium, through its edge proxy: every button succeeds, every log entry
//! lands, and the mail shows up in the mail catcher's published web API.
//!
//! It needs a running deployment, so it is ignored in a plain test run;
//! the Docker tests (`make test-docker`) run it against each deployment:
//!
//!   SYSTEM_URL=http://localhost/ MAIL_UI_URL=http://localhost:8025 \
//!     cargo test -p system-tests --test deployed -- --ignored

use std::time::{Duration, Instant};

use serde_json::Value;
use system_tests::Browser;
use system_tests::page::{self, WAIT};

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must name the deployed stack's URL"))
}

/// How many mails with the test page's subject and recipient the catcher
/// holds, read from its web API: Mailpit's `/api/v1/messages`, or, from the
/// maildev stand-in, `/email`.
async fn test_mails(http: &reqwest::Client, mail_ui: &str) -> usize {
    let mailpit = http
        .get(format!("{mail_ui}/api/v1/messages?limit=1000"))
        .send()
        .await
        .expect("the mail catcher's web UI answers");
    let (list, subject, to, address) = if mailpit.status().is_success() {
        let body: Value = mailpit.json().await.unwrap();
        (body["messages"].clone(), "Subject", "To", "Address")
    } else {
        let body: Value = http
            .get(format!("{mail_ui}/email"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .expect("the catcher serves Mailpit's or maildev's message list")
            .json()
            .await
            .unwrap();
        (body, "subject", "to", "address")
    };
    let list = list.as_array().expect("a list of messages");
    list.iter()
        .filter(|m| m[subject] == page::MAIL_SUBJECT)
        .filter(|m| {
            m[to]
                .as_array()
                .is_some_and(|to| to.iter().any(|t| t[address] == page::MAIL_TO))
        })
        .count()
}

#[tokio::test]
#[ignore = "needs a deployed stack: SYSTEM_URL and MAIL_UI_URL (make test-docker)"]
async fn every_button_succeeds_through_the_edge_proxy() {
    let system_url = setting("SYSTEM_URL");
    let mail_ui = setting("MAIL_UI_URL").trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mails_before = test_mails(&http, &mail_ui).await;

    let browser = Browser::start().await.expect("headless Chromium starts");
    browser.goto(&system_url).await.unwrap();
    page::click_every_button(&browser).await;
    browser.quit().await;

    let deadline = Instant::now() + WAIT;
    loop {
        let mails = test_mails(&http, &mail_ui).await;
        if mails == mails_before + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the catcher holds {mails} test mails, expected {}",
            mails_before + 1
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
