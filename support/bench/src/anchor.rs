//! The Go original's figures, the anchor every path of this project is
//! compared with, and the same requests sent to this stack by the same load
//! tool (wrk) at the same concurrency (docs/bench/README.md, "Against the
//! Go original").

use proto::http::Transport;
use std::time::Duration;

use anyhow::Context as _;

use crate::external::{self, Measured, WrkPost};
use crate::scenarios::Path;

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
    /// The path through the broker, whose request the bench sends.
    pub path: Path,
    pub concurrency: usize,
    pub go_per_second: f64,
    /// The Go figure as the table gives it.
    pub go_figure: &'static str,
    pub measure: Measure,
    /// At least this many times the Go figure (1.0: no slower).
    pub target: f64,
}

pub const ANCHORS: [Anchor; 8] = [
    Anchor {
        path: Path::BrokerHit,
        concurrency: 16,
        go_per_second: 66_127.0,
        go_figure: "66,127/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerHit,
        concurrency: 64,
        go_per_second: 58_535.0,
        go_figure: "58,535/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerLog(Transport::Rpc),
        concurrency: 64,
        go_per_second: 1_369.0,
        go_figure: "1,369/s, p99 134 ms",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerLog(Transport::Grpc),
        concurrency: 64,
        go_per_second: 1_366.0,
        go_figure: "1,366/s, p99 101 ms",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerAuth,
        concurrency: 16,
        go_per_second: 6.5,
        go_figure: "6.5/s at bcrypt cost 12, 81% of its ceiling",
        measure: Measure::ShareOfBcrypt(0.81),
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerMail,
        concurrency: 1,
        go_per_second: 288.0,
        go_figure: "288/s, p50 3.3 ms",
        measure: Measure::Rate,
        target: 1.5,
    },
    Anchor {
        path: Path::BrokerMail,
        concurrency: 16,
        go_per_second: 729.0,
        go_figure: "729/s",
        measure: Measure::Rate,
        target: 1.0,
    },
    Anchor {
        path: Path::BrokerLog(Transport::Amqp),
        concurrency: 64,
        go_per_second: 939.0,
        go_figure: "939/s (no publisher confirms)",
        measure: Measure::Rate,
        target: 1.0,
    },
];

/// One row of the comparison: this stack's figure for the anchor's request.
pub struct Compared {
    pub anchor: &'static Anchor,
    pub ours: anyhow::Result<Measured>,
}

/// Every anchor's request sent to this stack's broker with wrk, as the Go
/// figures were measured; a failed run is named instead. The Go figures
/// are the recorded ones: the repository never fetches or builds the Go
/// original.
pub fn measure(broker: &str, authorization: &str, secs: Duration) -> Vec<Compared> {
    ANCHORS
        .iter()
        .map(|anchor| {
            eprintln!(
                "  {} at concurrency {}",
                anchor.path.label(),
                anchor.concurrency
            );
            let send = || {
                let (route, body) = anchor
                    .path
                    .broker_request(0)
                    .context("an anchor goes through the broker")?;
                let json = body.map(|b| b.to_string());
                let request = WrkPost {
                    url: &format!("{broker}{route}"),
                    json: json.as_deref(),
                    authorization: Some(authorization),
                };
                external::wrk("Go comparison", &request, anchor.concurrency, secs)
            };
            Compared {
                anchor,
                ours: send(),
            }
        })
        .collect()
}

impl Anchor {
    /// This project's figure over the Go original's recorded one: requests
    /// per second, or the share of each one's bcrypt ceiling reached.
    pub fn ratio(&self, ours: &Measured, bcrypt_ceiling: f64) -> f64 {
        match self.measure {
            Measure::Rate => ours.per_second / self.go_per_second,
            Measure::ShareOfBcrypt(go_share) => ours.per_second / bcrypt_ceiling / go_share,
        }
    }

    /// Whether `ours` reached this row's target, with no errors.
    pub fn met(&self, ours: &Measured, bcrypt_ceiling: f64) -> bool {
        ours.errors == 0 && self.ratio(ours, bcrypt_ceiling) >= self.target
    }
}

#[cfg(test)]
mod tests {
    use super::{ANCHORS, Measure};
    use crate::external::Measured;
    use crate::scenarios::Path;
    use crate::tools::Tool;

    /// A wrk run at concurrency 16 with no errors.
    fn measured(per_second: f64) -> Measured {
        Measured {
            label: "test",
            tool: Tool::Wrk,
            concurrency: 16,
            per_second,
            p50: None,
            p90: None,
            p99: None,
            mean: None,
            errors: 0,
        }
    }

    /// Every anchor is a path through the broker, so it has a request.
    #[test]
    fn every_anchor_goes_through_the_broker() {
        for anchor in &ANCHORS {
            assert!(
                anchor.path.broker_request(0).is_some(),
                "{}",
                anchor.path.label()
            );
        }
    }

    #[test]
    fn auth_is_compared_by_its_share_of_the_bcrypt_ceiling() {
        let auth = ANCHORS.iter().find(|a| a.path == Path::BrokerAuth).unwrap();
        assert_eq!(auth.measure, Measure::ShareOfBcrypt(0.81));
        let mut ours = measured(17.1);
        // 17.1 of 18 is 95%, 1.17 times the Go original's 81%.
        assert!((auth.ratio(&ours, 18.0) - 0.95 / 0.81).abs() < 1e-9);
        assert!(auth.met(&ours, 18.0));
        // 14 of 18 is 78%, short of 81%; and a run with errors never meets.
        assert!(!auth.met(&ours, 18.0 * 17.1 / 14.0));
        ours.errors = 1;
        assert!(!auth.met(&ours, 18.0));
    }

    #[test]
    fn the_hit_path_is_compared_with_the_recorded_go_figure() {
        let hit = &ANCHORS[0];
        assert_eq!(hit.path, Path::BrokerHit);
        assert!(!hit.met(&measured(hit.go_per_second * 0.8), 1.0));
        let ours = measured(hit.go_per_second * 1.6);
        assert!((hit.ratio(&ours, 1.0) - 1.6).abs() < 1e-9);
        assert!(hit.met(&ours, 1.0));
    }
}
