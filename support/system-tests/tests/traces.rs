//! Traces and logs across the whole system (docs/observability.md): the six
//! binaries as processes, each exporting its spans over OTLP to a receiver
//! of the test's own. One request per transport must make one connected
//! trace, from the broker's server span down to the database, with the
//! parent links intact across HTTP, gRPC, tarpc and AMQP; and the JSON log
//! lines of that request carry its trace id and a span id of that trace.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::ProcessSystem;
use test_support::otlp::{ReceivedSpan, TraceReceiver};

/// A span expected in a trace: `(service, name, kind)`, and the span it
/// must be the child of (`None`: the trace's root).
type Hop = (
    (&'static str, &'static str, &'static str),
    Option<(&'static str, &'static str)>,
);

const BROKER: &str = "broker-service";
const LOGGER: &str = "logger-service";
const AUTH: &str = "authentication-service";
const MAIL: &str = "mail-service";
const LISTENER: &str = "listener-service";

/// The broker's server span, the root of every click's trace.
const ROOT: Hop = ((BROKER, "POST /handle", "server"), None);

/// The logger's own write, under its server span `server`.
fn stored_by(server: &'static str) -> Hop {
    ((LOGGER, "insert logs", "client"), Some((LOGGER, server)))
}

async fn post(
    client: &reqwest::Client,
    broker: &str,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value, String) {
    let mut request = client.post(format!("{broker}/handle")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the broker answers");
    let status = response.status();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every answer has a request id")
        .to_owned();
    let body = response.json().await.expect("an envelope");
    (status, body, id)
}

/// The trace id a request id names: the UUID's hex digits.
fn trace_id_of(request_id: &str) -> String {
    request_id.replace('-', "")
}

fn describe(spans: &[ReceivedSpan]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "  {} {} [{}] {} <- {}\n",
                s.service, s.name, s.kind, s.span_id, s.parent_span_id
            )
        })
        .collect()
}

/// Checks that `spans` form one connected tree with a single root, and
/// that each expected hop is there under its expected parent.
fn assert_trace(what: &str, spans: &[ReceivedSpan], hops: &[Hop]) {
    let by_id: BTreeMap<&str, &ReceivedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let roots: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "{what}: one root, got\n{}", describe(spans));
    for span in spans {
        assert!(
            span.parent_span_id.is_empty() || by_id.contains_key(span.parent_span_id.as_str()),
            "{what}: the parent of {} {} is not in the trace\n{}",
            span.service,
            span.name,
            describe(spans)
        );
    }
    for ((service, name, kind), parent) in hops {
        let found: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.service == *service && s.name == *name && s.kind == *kind)
            .collect();
        assert!(
            !found.is_empty(),
            "{what}: no {kind} span {name:?} of {service}\n{}",
            describe(spans)
        );
        for span in found {
            match parent {
                None => assert!(
                    span.parent_span_id.is_empty(),
                    "{what}: {name} is not the root"
                ),
                Some((parent_service, parent_name)) => {
                    let parent = by_id[span.parent_span_id.as_str()];
                    assert_eq!(
                        (parent.service.as_str(), parent.name.as_str()),
                        (*parent_service, *parent_name),
                        "{what}: the parent of {service} {name}\n{}",
                        describe(spans)
                    );
                }
            }
        }
    }
}

/// With `SAVE_TRACES` set (`make trace-pictures`), writes the trace as
/// `docs/observability/trace-<what>.svg`, the pictures of docs/observability.md.
fn save_picture(what: &str, spans: &[ReceivedSpan]) {
    if std::env::var_os("SAVE_TRACES").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/observability");
    std::fs::create_dir_all(&dir).expect("docs/observability");
    let title = match what {
        "auth" => "Test Auth: a login through the broker".to_owned(),
        "broker" => "Test Broker: POST / on the broker".to_owned(),
        "mail" => "Test Mail: a mail through the broker".to_owned(),
        transport => format!("Test Log over {transport}: one entry through the broker"),
    };
    std::fs::write(
        dir.join(format!("trace-{what}.svg")),
        test_support::otlp::waterfall_svg(&title, spans),
    )
    .expect("the picture is written");
}

/// Whether every hop's span has arrived.
fn has_all(spans: &[ReceivedSpan], hops: &[Hop]) -> bool {
    hops.iter().all(|((service, name, kind), _)| {
        spans
            .iter()
            .any(|s| s.service == *service && s.name == *name && s.kind == *kind)
    })
}

#[tokio::test]
async fn one_request_on_each_transport_is_one_connected_trace_and_its_logs_carry_its_ids() {
    let receiver = TraceReceiver::start().await;
    let system = ProcessSystem::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        // Export within a fraction of a second rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let broker = system.url(BROKER).to_owned();
    let client = reqwest::Client::new();

    let (status, body, login_id) = post(
        &client,
        &broker,
        json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let token = body["data"]["access_token"]
        .as_str()
        .expect("a login answers a token")
        .to_owned();

    let log = |transport: &str| {
        json!({"action": "log", "transport": transport,
               "log": {"name": format!("traced-{transport}"), "data": "d"}})
    };
    let mut requests: Vec<(&str, String, Vec<Hop>)> = vec![(
        "auth",
        login_id,
        vec![
            ROOT,
            (
                (BROKER, "POST /authenticate", "client"),
                Some((BROKER, "POST /handle")),
            ),
            (
                (AUTH, "POST /authenticate", "server"),
                Some((BROKER, "POST /authenticate")),
            ),
            // The handler's own span.
            (
                (AUTH, "authenticate", "internal"),
                Some((AUTH, "POST /authenticate")),
            ),
            (
                (AUTH, "SELECT users", "client"),
                Some((AUTH, "authenticate")),
            ),
            (
                (AUTH, "bcrypt verify", "internal"),
                Some((AUTH, "authenticate")),
            ),
            // The login is logged in the background, in the same trace.
            (
                (AUTH, "log login", "internal"),
                Some((AUTH, "authenticate")),
            ),
            ((AUTH, "POST /log", "client"), Some((AUTH, "log login"))),
            ((LOGGER, "POST /log", "server"), Some((AUTH, "POST /log"))),
            stored_by("POST /log"),
        ],
    )];
    for (transport, hops) in [
        (
            "http",
            vec![
                ROOT,
                (
                    (BROKER, "POST /log", "client"),
                    Some((BROKER, "POST /handle")),
                ),
                ((LOGGER, "POST /log", "server"), Some((BROKER, "POST /log"))),
                stored_by("POST /log"),
            ],
        ),
        (
            "grpc",
            vec![
                ROOT,
                (
                    (BROKER, "logs.LogService/WriteLog", "client"),
                    Some((BROKER, "POST /handle")),
                ),
                (
                    (LOGGER, "logs.LogService/WriteLog", "server"),
                    Some((BROKER, "logs.LogService/WriteLog")),
                ),
                stored_by("logs.LogService/WriteLog"),
            ],
        ),
        (
            "rpc",
            vec![
                ROOT,
                (
                    (BROKER, "LogService.log_info", "client"),
                    Some((BROKER, "POST /handle")),
                ),
                (
                    (LOGGER, "LogService.log_info", "server"),
                    Some((BROKER, "LogService.log_info")),
                ),
                stored_by("LogService.log_info"),
            ],
        ),
        (
            "amqp",
            vec![
                ROOT,
                (
                    (BROKER, "publish logs_topic", "producer"),
                    Some((BROKER, "POST /handle")),
                ),
                (
                    (LISTENER, "process logs", "consumer"),
                    Some((BROKER, "publish logs_topic")),
                ),
                (
                    (LISTENER, "POST /log", "client"),
                    Some((LISTENER, "process logs")),
                ),
                (
                    (LOGGER, "POST /log", "server"),
                    Some((LISTENER, "POST /log")),
                ),
                stored_by("POST /log"),
            ],
        ),
    ] {
        // Once to warm the broker's connection for this transport, so the
        // trace shows a click as it usually goes, not the first dial.
        post(&client, &broker, log(transport), None).await;
        let (status, body, id) = post(&client, &broker, log(transport), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{transport}: {body}");
        requests.push((transport, id, hops));
    }
    let (status, body, mail_id) = post(
        &client,
        &broker,
        json!({"action": "mail", "mail": {"from": "a@example.com", "to": "b@example.com",
               "subject": "traced", "message": "hello"}}),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    requests.push((
        "mail",
        mail_id,
        vec![
            ROOT,
            (
                (BROKER, "POST /send", "client"),
                Some((BROKER, "POST /handle")),
            ),
            ((MAIL, "POST /send", "server"), Some((BROKER, "POST /send"))),
            // The handler's own span.
            ((MAIL, "send", "internal"), Some((MAIL, "POST /send"))),
            ((MAIL, "smtp send", "client"), Some((MAIL, "send"))),
        ],
    ));

    // Test Broker: `POST /`, answered by the broker alone.
    let hit = client
        .post(format!("{broker}/"))
        .send()
        .await
        .expect("the broker answers");
    assert_eq!(hit.status(), StatusCode::OK);
    let hit_id = hit.headers()["x-request-id"].to_str().unwrap().to_owned();
    requests.push(("broker", hit_id, vec![((BROKER, "POST /", "server"), None)]));

    for (what, request_id, hops) in &requests {
        let trace_id = trace_id_of(request_id);
        let spans = receiver
            .trace(&trace_id, Duration::from_secs(20), |spans| {
                has_all(spans, hops)
            })
            .await;
        assert_trace(what, &spans, hops);
        save_picture(what, &spans);

        // Logs joined to traces: the lines this request caused, in every
        // service it reached, carry its trace id and a span id of it.
        let span_ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
        let services: BTreeSet<&str> = hops.iter().map(|((service, ..), _)| *service).collect();
        for service in services {
            let lines: Vec<Value> = system
                .log_lines(service)
                .into_iter()
                .filter(|line| line["trace_id"] == trace_id.as_str())
                .collect();
            assert!(
                !lines.is_empty(),
                "{what}: no log line of {service} carries trace {trace_id}"
            );
            for line in &lines {
                let span_id = line["span_id"].as_str().unwrap_or_default();
                assert!(
                    span_ids.contains(span_id),
                    "{what}: {service} logged span {span_id}, not one of the trace: {line}"
                );
            }
        }
    }
}

/// `RUST_LOG` sets how much is logged, not what is traced: with the log at
/// `warn`, a click's trace is still whole.
#[tokio::test]
async fn a_quiet_log_still_exports_whole_traces() {
    let receiver = TraceReceiver::start().await;
    let system = ProcessSystem::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("RUST_LOG", "warn"),
    ])
    .await;
    let client = reqwest::Client::new();
    let body = json!({"action": "log", "transport": "rpc", "log": {"name": "quiet", "data": "d"}});
    let (status, answer, id) = post(&client, system.url(BROKER), body, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let hops = [
        ROOT,
        (
            (BROKER, "LogService.log_info", "client"),
            Some((BROKER, "POST /handle")),
        ),
        (
            (LOGGER, "LogService.log_info", "server"),
            Some((BROKER, "LogService.log_info")),
        ),
        stored_by("LogService.log_info"),
    ];
    let spans = receiver
        .trace(&trace_id_of(&id), Duration::from_secs(20), |spans| {
            has_all(spans, &hops)
        })
        .await;
    assert_trace("rpc, log at warn", &spans, &hops);
    // And nothing at info was logged.
    assert!(
        system
            .log_lines(LOGGER)
            .iter()
            .all(|line| line["level"] != "INFO"),
        "the logger logged at info with RUST_LOG=warn"
    );
}
