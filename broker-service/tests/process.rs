//! The broker binary as a process: configuration errors, the request log,
//! and SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_broker-service");

#[test]
fn a_bad_variable_stops_the_service_with_its_name() {
    for (variable, value) in [
        ("HTTP_ADDR", "localhost-8080"),
        ("AUTH_URL", "ftp://auth"),
        ("LOGGER_RPC_ADDR", "logger"),
    ] {
        let output = Command::new(BIN).env(variable, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("invalid value for {variable}=")),
            "{variable}: {stderr}"
        );
    }
}

#[test]
fn logs_each_request_as_json_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(BIN)
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("TOKEN_KEY", test_support::TEST_TOKEN_KEY)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_event = move || -> Value {
        let line = lines.next().expect("a log line").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };

    let addr = loop {
        let event = next_event();
        if let Some(addr) = event["fields"]["addr"].as_str() {
            break addr.to_owned();
        }
    };
    let status = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{addr}/"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let request = loop {
        let event = next_event();
        if event["fields"]["message"] == "request" {
            break event;
        }
    };
    // The method, path and request id are the request span's fields.
    assert_eq!(request["span"]["method"], "POST", "{request}");
    assert_eq!(request["span"]["path"], "/");
    assert_eq!(
        request["span"]["request_id"].as_str().map(str::len),
        Some(36),
        "a UUID: {request}"
    );
    assert_eq!(request["fields"]["status"], 200);
    assert!(
        request["fields"]["latency_ms"].as_f64().is_some(),
        "{request}"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
