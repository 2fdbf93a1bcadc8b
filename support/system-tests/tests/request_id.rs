//! A request's id reaches every service the request touches, on every
//! transport: the logs of the whole system (one process here, so one log)
//! show the id the caller sent on the lines of each service it reached.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{System, eventually};
use tracing_subscriber::fmt::MakeWriter;

/// Every log line written, as JSON.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Whether a line of `target`'s carries `id`, as a field or in its
    /// request span, and (if given) was about `path`.
    fn has(&self, target: &str, id: &str, path: Option<&str>) -> bool {
        self.lines().iter().any(|line| {
            line["target"]
                .as_str()
                .is_some_and(|t| t.starts_with(target))
                && (line["fields"]["request_id"] == id || line["span"]["request_id"] == id)
                && path.is_none_or(|p| line["span"]["path"] == p)
        })
    }
}

#[tokio::test]
async fn the_callers_request_id_reaches_every_service_on_every_transport() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter("info")
        .with_writer(logs.clone())
        .init();
    let system = System::start().await;

    let log = |transport: &str| json!({"action": "log", "transport": transport, "log": {"name": format!("via-{transport}"), "data": "x"}});
    // (request, id, what must show it: a target, and the path of its request)
    let cases = [
        (
            log("http"),
            "00000000-0000-4000-8000-000000000001",
            "service_kit::http",
            Some("/log"),
        ),
        (
            log("grpc"),
            "00000000-0000-4000-8000-000000000002",
            "logger_service::grpc",
            None,
        ),
        (
            log("rpc"),
            "00000000-0000-4000-8000-000000000003",
            "logger_service::rpc",
            None,
        ),
        (
            log("amqp"),
            "00000000-0000-4000-8000-000000000004",
            "service_kit::http",
            Some("/log"),
        ),
        (
            json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}),
            "00000000-0000-4000-8000-000000000005",
            "service_kit::http",
            Some("/authenticate"),
        ),
        (
            json!({"action": "mail", "mail": {"to": "you@example.com", "subject": "id", "message": "x"}}),
            "00000000-0000-4000-8000-000000000006",
            "service_kit::http",
            Some("/send"),
        ),
    ];
    for (body, id, target, path) in cases {
        let response = system
            .broker
            .client
            .post(system.broker.url("/handle"))
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{body}");
        assert_eq!(response.headers()["x-request-id"], id, "echoed");
        let reached = eventually(Duration::from_secs(10), || async {
            logs.has(target, id, path)
        })
        .await;
        assert!(reached, "no {target} line {path:?} with {id} for {body}");
        assert!(
            logs.has("service_kit::http", id, Some("/handle")),
            "the broker's own line"
        );
    }
    // The login's background entry at the logger carries the login's id.
    let login_id = "00000000-0000-4000-8000-000000000005";
    assert!(
        eventually(Duration::from_secs(5), || async {
            logs.has("service_kit::http", login_id, Some("/log"))
        })
        .await
    );

    // A request without an id gets a fresh one, echoed.
    let response = system
        .broker
        .client
        .post(system.broker.url("/"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
}
