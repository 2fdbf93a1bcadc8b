//! `make bench` and `make soak` against the native stack (`make start`).
//!
//! `bench [bench|soak|listing|spread|tracing]`; settings from the environment: `BENCH_SECS` (10),
//! `WARMUP_SECS` (2), `CONCURRENCY` ("1,16,64"), `OPEN_SECS` (5, each
//! open-loop run), `SOAK_SECS` (300), `BENCH_PYTHON` (python3, with
//! pymongo), `RUN_DIR` (.run, for the services' PIDs), `OUT_DIR`
//! (docs/bench).

mod anchor;
mod external;
mod listing;
mod load;
mod procs;
mod report;
mod scenarios;
mod spread;
mod tools;
mod tracing_cost;

use proto::http::Transport;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use authentication_service::passwords::BCRYPT_COST;
use serde_json::json;

use crate::load::LoadResult;
use crate::procs::{Usage, Watcher};
use crate::scenarios::{Clients, Endpoints, Path};
use proto::ports;

pub struct Settings {
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
    pub open: Duration,
    pub python: String,
    pub soak: Duration,
    pub run_dir: PathBuf,
    pub out_dir: PathBuf,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let secs = |name: &str, default: &str| -> anyhow::Result<Duration> {
            let value = std::env::var(name).unwrap_or_else(|_| default.into());
            Ok(Duration::from_secs_f64(
                value.parse().with_context(|| format!("{name}={value:?}"))?,
            ))
        };
        let concurrency = std::env::var("CONCURRENCY").unwrap_or_else(|_| "1,16,64".into());
        Ok(Self {
            duration: secs("BENCH_SECS", "10")?,
            warmup: secs("WARMUP_SECS", "2")?,
            concurrency: concurrency
                .split(',')
                .map(|c| c.trim().parse())
                .collect::<Result<_, _>>()
                .context("CONCURRENCY")?,
            open: secs("OPEN_SECS", "5")?,
            python: std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into()),
            soak: secs("SOAK_SECS", "300")?,
            run_dir: std::env::var("RUN_DIR")
                .unwrap_or_else(|_| ".run".into())
                .into(),
            out_dir: std::env::var("OUT_DIR")
                .unwrap_or_else(|_| "docs/bench".into())
                .into(),
        })
    }
}

/// One measured run.
pub struct Row {
    pub group: &'static str,
    pub path: Path,
    pub concurrency: usize,
    pub result: LoadResult,
    pub usage: BTreeMap<String, Usage>,
    /// For amqp: events the listener stored, and seconds until the last.
    pub drain: Option<(u64, f64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "bench".into());
    let settings = Settings::from_env()?;
    let clients = Clients::connect(Endpoints::default())
        .await
        .context("is the stack up? (make start)")?;
    std::fs::create_dir_all(&settings.out_dir)?;
    match mode.as_str() {
        "bench" => bench(&settings, clients).await,
        "soak" => soak(&settings, clients).await,
        "listing" => {
            let measured = listing::measure(&settings, &clients).await?;
            listing::write(&settings, &measured)
        }
        "spread" => spread::write(&settings, &spread::measure(&settings).await?),
        "tracing" => tracing_cost::run(&settings).await,
        other => anyhow::bail!("unknown mode {other}: bench, soak, listing, spread or tracing"),
    }
}

async fn measure(
    settings: &Settings,
    clients: &Arc<Clients>,
    group: &'static str,
    path: Path,
    c: usize,
) -> Row {
    eprintln!("  {} at concurrency {c}", path.label());
    let watcher = Watcher::start(
        procs::services(&settings.run_dir),
        Duration::from_millis(500),
    );
    let stored_before = listener_stored().await.unwrap_or(0);
    let started = Instant::now();
    let result = load::run(
        c,
        settings.warmup,
        settings.duration,
        path.request(clients.clone()),
    )
    .await;
    // An amqp run leaves events queued; the next run starts only once the
    // listener has stored them all, and the time that took is reported.
    let drain = if path == Path::BrokerLog(Transport::Amqp) {
        Some(drain_queue(stored_before, started).await)
    } else {
        None
    };
    let usage = watcher
        .finish()
        .await
        .into_iter()
        .map(|(name, (usage, _))| (name, usage))
        .collect();
    if let Some(e) = &result.first_error {
        eprintln!("    {} errors, first: {e}", result.errors);
    }
    Row {
        group,
        path,
        concurrency: c,
        result,
        usage,
        drain,
    }
}

/// The listener's count of stored events, from its `/metrics`.
pub(crate) async fn listener_stored() -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{}/metrics", ports::local_http(ports::LISTENER)))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("listener_events_stored_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("listener_events_stored_total is missing from the listener's /metrics")
}

/// Waits until the listener's stored count has not moved for a second;
/// returns (events stored since `before`, seconds from `started` to the
/// last one).
pub(crate) async fn drain_queue(before: u64, started: Instant) -> (u64, f64) {
    let (mut last, mut last_change) = (listener_stored().await.unwrap_or(before), Instant::now());
    while last_change.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = listener_stored().await.unwrap_or(last);
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    (
        last - before,
        last_change.duration_since(started).as_secs_f64(),
    )
}

async fn bench(settings: &Settings, clients: Arc<Clients>) -> anyhow::Result<()> {
    let groups: [(&'static str, &[Path]); 3] = [
        ("Through the broker", &Path::THROUGH_BROKER),
        ("Straight at each service", &Path::STRAIGHT_AT_SERVICES),
        ("Beneath the logger", &Path::BENEATH_LOGGER),
    ];
    let mut rows = Vec::new();
    for (group, paths) in groups {
        eprintln!("{group}");
        for &path in paths {
            for &c in &settings.concurrency {
                rows.push(measure(settings, &clients, group, path, c).await);
            }
        }
    }

    eprintln!("Ceilings, measured by other tools");
    // The tools run as child processes, waited for on this thread.
    let (external, unmeasured) =
        tokio::task::block_in_place(|| measure_external(settings, &clients));

    eprintln!("Against the Go original: its requests, sent by wrk");
    let authorization = scenarios::signed_in()?
        .get(reqwest::header::AUTHORIZATION)
        .context("the bench's token")?
        .to_str()?
        .to_owned();
    let stored_before = listener_stored().await.unwrap_or(0);
    let started = Instant::now();
    let anchors = tokio::task::block_in_place(|| {
        anchor::measure(clients.broker(), &authorization, settings.duration)
    });
    drain_queue(stored_before, started).await;

    eprintln!("Open loop");
    let open = open_loop(settings, &clients, &rows).await;

    eprintln!("log p99 while an auth burst runs");
    let auth_burst = {
        let request = Path::BrokerAuth.request(clients.clone());
        let (warmup, duration) = (settings.warmup, settings.duration + Duration::from_secs(2));
        tokio::spawn(load::run(AUTH_BURST, warmup, duration, request))
    };
    let during_burst = load::run(
        1,
        settings.warmup + Duration::from_secs(1),
        settings.duration,
        Path::BrokerLog(Transport::Rpc).request(clients.clone()),
    )
    .await;
    let burst = auth_burst.await?;

    eprintln!("bcrypt cost per verification");
    let bcrypt_ms = tokio::task::spawn_blocking(|| {
        let hash = bcrypt::hash("verysecret", BCRYPT_COST).expect("hash");
        let started = Instant::now();
        for _ in 0..20 {
            assert!(bcrypt::verify("verysecret", &hash).expect("verify"));
        }
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    })
    .await?;

    eprintln!("amqp end to end: publish to stored");
    let amqp_e2e = amqp_end_to_end(&clients, 30).await?;

    let extra = report::Extra {
        external,
        unmeasured,
        anchors,
        open,
        bcrypt_ms,
        amqp_e2e_ms: amqp_e2e,
        log_during_auth: during_burst,
        auth_burst: burst,
    };
    report::write_bench(settings, &rows, &extra)?;
    eprintln!(
        "report written to {}",
        settings.out_dir.join("report.md").display()
    );
    // Two logger replicas (BENCH_SPREAD=0 leaves it out; `make
    // bench-spread` runs it alone).
    if std::env::var("BENCH_SPREAD").as_deref() != Ok("0") {
        spread::write(settings, &spread::measure(settings).await?)?;
    }
    // Last: it empties the log collection and fills it to its size
    // (BENCH_LISTING=0 leaves it out; `make bench-listing` runs it alone).
    if std::env::var("BENCH_LISTING").as_deref() != Ok("0") {
        let measured = listing::measure(settings, &clients).await?;
        listing::write(settings, &measured)?;
    }
    Ok(())
}

/// The ceilings that outside tools measure, at every concurrency; a tool
/// that fails is named in the report instead.
fn measure_external(
    settings: &Settings,
    clients: &Clients,
) -> (Vec<external::Measured>, Vec<String>) {
    let (mut measured, mut unmeasured) = (Vec::new(), Vec::new());
    let mongo = format!("mongodb://127.0.0.1:{}", ports::MONGODB);
    for &c in &settings.concurrency {
        eprintln!("  at concurrency {c}");
        let runs = [
            external::wrk(
                "broker hit (POST /)",
                &external::WrkPost {
                    url: &format!("{}/", clients.broker()),
                    json: None,
                    authorization: None,
                },
                c,
                settings.duration,
            ),
            external::smtp_source("127.0.0.1", ports::SMTP, c, settings.duration),
            external::pymongo_insert(&settings.python, &mongo, c, settings.duration),
        ];
        for run in runs {
            match run {
                Ok(m) => measured.push(m),
                Err(e) => {
                    eprintln!("    not measured: {e:#}");
                    unmeasured.push(format!("{e:#}"));
                }
            }
        }
    }
    (measured, unmeasured)
}

/// The logins at once of the auth burst that the log p99 is measured
/// beside.
pub const AUTH_BURST: usize = 16;

/// The fractions of each path's closed-loop maximum it is driven at in
/// the open-loop runs.
pub const OPEN_LOADS: [f64; 3] = [0.25, 0.5, 0.9];

/// Each path through the broker at fixed arrival rates: `OPEN_LOADS` of
/// the most it answered in the closed-loop runs.
async fn open_loop(settings: &Settings, clients: &Arc<Clients>, rows: &[Row]) -> Vec<report::Open> {
    let mut open = Vec::new();
    for &path in &Path::THROUGH_BROKER {
        let max = rows
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.result.per_second())
            .fold(0.0, f64::max);
        if max <= 0.0 {
            continue;
        }
        for load in OPEN_LOADS {
            let rate = max * load;
            eprintln!(
                "  {} at {rate:.0}/s ({:.0}% of {max:.0}/s)",
                path.label(),
                load * 100.0
            );
            let stored_before = listener_stored().await.unwrap_or(0);
            let started = Instant::now();
            let result = load::run_open(
                rate,
                Duration::from_secs(1),
                settings.open,
                path.request(clients.clone()),
            )
            .await;
            if path == Path::BrokerLog(Transport::Amqp) {
                drain_queue(stored_before, started).await;
            }
            if let Some(e) = &result.first_error {
                eprintln!("    {} errors, first: {e}", result.errors);
            }
            open.push(report::Open {
                path,
                load,
                rate,
                result,
            });
        }
    }
    open
}

/// Publishes one event at a time through the broker and waits until the
/// listener counts it stored (its `/metrics`): the time from the publish to
/// the stored entry. (Listing the logger's entries would measure the list
/// query instead, which the MongoDB stand-in answers slowly once the
/// collection is large.)
async fn amqp_end_to_end(clients: &Arc<Clients>, samples: usize) -> anyhow::Result<Vec<f64>> {
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    for i in 0..samples {
        let before = listener_stored().await?;
        let started = Instant::now();
        let body = json!({"action": "log", "transport": "amqp", "log": {"name": "e2e", "data": format!("end to end {i}")}});
        http.post(format!("{}/handle", clients.broker()))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        while listener_stored().await? <= before {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "event {i} was not stored within 10 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

async fn soak(settings: &Settings, clients: Arc<Clients>) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for transport in Transport::ALL {
        eprintln!(
            "soak: log via {transport}, concurrency 64, {} s",
            settings.soak.as_secs()
        );
        let watcher = Watcher::start(procs::services(&settings.run_dir), Duration::from_secs(10));
        let result = load::run(
            64,
            Duration::ZERO,
            settings.soak,
            Path::BrokerLog(transport).request(clients.clone()),
        )
        .await;
        // Drain what the listener has not stored yet before the next run
        // (bounded: the queue keeps the rest).
        let drained = if transport == Transport::Amqp {
            let before = listener_stored().await.unwrap_or(0);
            let started = Instant::now();
            let wait = drain_queue(before, started);
            tokio::time::timeout(Duration::from_secs(600), wait)
                .await
                .ok()
        } else {
            None
        };
        if let Some((stored, seconds)) = drained {
            eprintln!(
                "    the listener stored the last {stored} queued events in {seconds:.0} s after the run"
            );
        }
        let series = watcher.finish().await;
        if let Some(e) = &result.first_error {
            eprintln!("    {} errors, first: {e}", result.errors);
        }
        runs.push((transport, result, series));
    }
    report::write_soak(settings, &runs)?;
    eprintln!(
        "report written to {}",
        settings.out_dir.join("soak.md").display()
    );
    Ok(())
}
