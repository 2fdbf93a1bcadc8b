//! The Go original's figures, the anchor every path of this project is
//! compared with, and the same requests sent to this stack by the same load
//! tool (wrk) at the same concurrency (docs/bench/README.md, "Against the
//! Go original").

use std::time::Duration;

use crate::external::{self, Measured, WrkPost};

/// When and how the Go figures were measured.
pub const METHOD: &str = "the Go original of this design (the course stack), measured with wrk, 10 s per cell, in one run interleaved with this project's on a 2-core machine of the kind `make bench` runs on, both mail rows sending to the same Python aiosmtpd catcher; recorded on 2026-12-01 in the project's performance issue";

/// What a Go figure is compared by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Requests answered per second.
    Rate,
    /// The share of the bcrypt ceiling reached (cores ÷ cost per check),
    /// since the two hash at different costs.
    ShareOfBcrypt(f64),
}

/// One row of the Go original's table. amqp comes last: the events it
/// leaves queued are stored before anything else is measured.
pub struct Anchor {
    pub label: &'static str,
    pub concurrency: usize,
    /// The broker's action (`None`: `POST /`, no body).
    pub body: Option<&'static str>,
    pub go_per_second: f64,
    /// The Go figure as the table gives it.
    pub go_figure: &'static str,
    pub measure: Measure,
    /// At least this many times the Go figure (1.0: no slower).
    pub target: f64,
}

const LOG_RPC: &str =
    r#"{"action":"log","transport":"rpc","log":{"name":"bench","data":"anchor entry via rpc"}}"#;
const LOG_GRPC: &str =
    r#"{"action":"log","transport":"grpc","log":{"name":"bench","data":"anchor entry via grpc"}}"#;
const LOG_AMQP: &str =
    r#"{"action":"log","transport":"amqp","log":{"name":"bench","data":"anchor entry via amqp"}}"#;
const AUTH: &str =
    r#"{"action":"auth","auth":{"email":"admin@example.com","password":"verysecret"}}"#;
const MAIL: &str = r#"{"action":"mail","mail":{"from":"bench@example.com","to":"sink@example.com","subject":"anchor","message":"Hello from the bench."}}"#;

pub const ANCHORS: [Anchor; 8] = [
    Anchor {
        label: "POST /",
        concurrency: 16,
        body: None,
        go_per_second: 66_127.0,
        go_figure: "66,127/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        label: "POST /",
        concurrency: 64,
        body: None,
        go_per_second: 58_535.0,
        go_figure: "58,535/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        label: "log via rpc",
        concurrency: 64,
        body: Some(LOG_RPC),
        go_per_second: 1_369.0,
        go_figure: "1,369/s, p99 134 ms",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        label: "log via grpc",
        concurrency: 64,
        body: Some(LOG_GRPC),
        go_per_second: 1_366.0,
        go_figure: "1,366/s, p99 101 ms",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        label: "auth",
        concurrency: 16,
        body: Some(AUTH),
        go_per_second: 6.5,
        go_figure: "6.5/s at bcrypt cost 12, 81% of its ceiling",
        measure: Measure::ShareOfBcrypt(0.81),
        target: 1.0,
    },
    Anchor {
        label: "mail",
        concurrency: 1,
        body: Some(MAIL),
        go_per_second: 288.0,
        go_figure: "288/s, p50 3.3 ms",
        measure: Measure::Rate,
        target: 1.5,
    },
    Anchor {
        label: "mail",
        concurrency: 16,
        body: Some(MAIL),
        go_per_second: 729.0,
        go_figure: "729/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        label: "log via amqp",
        concurrency: 64,
        body: Some(LOG_AMQP),
        go_per_second: 939.0,
        go_figure: "939/s (no publisher confirms)",
        measure: Measure::Rate,
        target: 1.0,
    },
];

/// Every anchor's request sent to this stack's broker with wrk, as the Go
/// figures were measured. A failed run is named instead.
pub fn measure(
    broker: &str,
    authorization: &str,
    secs: Duration,
) -> Vec<(&'static Anchor, anyhow::Result<Measured>)> {
    ANCHORS
        .iter()
        .map(|anchor| {
            eprintln!("  {} at concurrency {}", anchor.label, anchor.concurrency);
            let url = match anchor.body {
                Some(_) => format!("{broker}/handle"),
                None => format!("{broker}/"),
            };
            let request = WrkPost {
                url: &url,
                json: anchor.body,
                authorization: Some(authorization),
            };
            (
                anchor,
                external::wrk(anchor.label, &request, anchor.concurrency, secs),
            )
        })
        .collect()
}

impl Anchor {
    /// This project's figure over the Go original's: requests per second,
    /// or the share of each one's bcrypt ceiling reached.
    pub fn ratio(&self, ours: &Measured, bcrypt_ceiling: f64) -> f64 {
        match self.measure {
            Measure::Rate => ours.per_second / self.go_per_second,
            Measure::ShareOfBcrypt(go_share) => ours.per_second / bcrypt_ceiling / go_share,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ANCHORS, Measure};

    /// Every request body is JSON the broker reads, and names the action
    /// its label names.
    #[test]
    fn every_anchor_body_is_a_broker_action() {
        for anchor in &ANCHORS {
            let Some(body) = anchor.body else {
                assert_eq!(anchor.label, "POST /");
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(body).expect(anchor.label);
            let action = value["action"].as_str().expect("an action");
            assert!(
                anchor.label.starts_with(action),
                "{}: {action}",
                anchor.label
            );
            if let Some(transport) = value["transport"].as_str() {
                assert!(anchor.label.ends_with(transport), "{}", anchor.label);
            }
            assert!(!body.contains("]==]"), "a body ends wrk's long string");
        }
    }

    #[test]
    fn auth_is_compared_by_its_share_of_the_bcrypt_ceiling() {
        let auth = ANCHORS.iter().find(|a| a.label == "auth").unwrap();
        assert_eq!(auth.measure, Measure::ShareOfBcrypt(0.81));
        let ours = crate::external::Measured {
            label: "auth",
            tool: "wrk 4.1",
            concurrency: 16,
            per_second: 17.1,
            p50: None,
            p90: None,
            p99: None,
            mean: None,
            errors: 0,
        };
        // 17.1 of 18 is 95%, 1.17 times the Go original's 81%.
        assert!((auth.ratio(&ours, 18.0) - 0.95 / 0.81).abs() < 1e-9);
    }
}
