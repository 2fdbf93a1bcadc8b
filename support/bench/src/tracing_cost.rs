//! `make bench-tracing`: what exporting traces costs. The native stack is
//! started three ways in turn (export off; on, sampling 100%; on, sampling
//! 10%; with `BASELINE_ROOT`, also the code before; with `EXPORT_ON=0`,
//! only off and before), `ROUNDS` times over, and each path through the broker is measured in each
//! (throughput and p99 at one concurrency). The spans go to an OTLP
//! receiver of the bench's own that only counts them, so the figures are
//! the services' cost, not a backend's. Writes `tracing.md`.

use proto::http::Transport;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::Settings;
use crate::load::{self, LoadResult};
use crate::procs::{self, Watcher};
use crate::scenarios::{Clients, Endpoints, Path};

/// Counts the spans it is sent.
struct Count(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Count {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A way to start the stack, and the environment it takes.
struct Config {
    label: String,
    ratio: Option<&'static str>,
    /// Another checkout whose `make start` starts the stack (the code
    /// before traces and metrics), on this one's run and infrastructure
    /// directories.
    root: Option<String>,
}

fn configs() -> Vec<Config> {
    let mut configs = vec![Config {
        label: "export off".into(),
        ratio: None,
        root: None,
    }];
    // `EXPORT_ON=0`: only the code before against export off.
    if std::env::var("EXPORT_ON").as_deref() != Ok("0") {
        configs.extend([
            Config {
                label: "export on, 100%".into(),
                ratio: Some("1.0"),
                root: None,
            },
            Config {
                label: "export on, 10%".into(),
                ratio: Some("0.1"),
                root: None,
            },
        ]);
    }
    if let Ok(root) = std::env::var("BASELINE_ROOT") {
        let commit = crate::tools::commit(Some(&root));
        configs.insert(
            0,
            Config {
                label: format!("before ({commit})"),
                ratio: None,
                root: Some(root),
            },
        );
    }
    configs
}

const PATHS: [Path; 5] = [
    Path::BrokerHit,
    Path::BrokerLog(Transport::Rpc),
    Path::BrokerLog(Transport::Http),
    Path::BrokerLog(Transport::Grpc),
    Path::BrokerLog(Transport::Amqp),
];

/// Rounds: the configurations are measured in turn this many times
/// (`ROUNDS`, 2 unless set), and each figure is the best of its rounds
/// (the machine's own swings are larger than the differences measured).
fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .filter(|&rounds| rounds > 0)
        .unwrap_or(2)
}

fn restart(config: &Config, endpoint: &str, settings: &Settings) -> anyhow::Result<()> {
    let status = std::process::Command::new("project/native/stop.sh").status()?;
    anyhow::ensure!(status.success(), "make stop failed");
    let here = std::env::current_dir()?;
    let root = config
        .root
        .as_ref()
        .map_or_else(|| here.clone(), std::path::PathBuf::from);
    let mut start = std::process::Command::new(root.join("project/native/start.sh"));
    start
        .env("RUN_DIR", here.join(&settings.run_dir))
        .env("INFRA_DIR", here.join(".infra"));
    match config.ratio {
        Some(ratio) => start
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
            .env("OTEL_TRACES_SAMPLER_ARG", ratio),
        None => start.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
    };
    let status = start.stdout(std::process::Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "make start failed ({})", config.label);
    Ok(())
}

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let spans = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let server = TraceServiceServer::new(Count(spans.clone()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let concurrency = settings.concurrency.last().copied().unwrap_or(64);

    let configs = configs();
    // best[config][path] = (req/s, p99 ms, spans per request, CPU µs per request)
    let mut best = vec![vec![(0.0_f64, f64::MAX, 0.0_f64, f64::MAX); PATHS.len()]; configs.len()];
    let rounds = rounds();
    for round in 0..rounds {
        for (c, config) in configs.iter().enumerate() {
            eprintln!("round {}: {}", round + 1, config.label);
            restart(config, &endpoint, settings)?;
            let clients = Clients::connect(Endpoints::default())
                .await
                .context("the stack did not come up")?;
            for (p, &path) in PATHS.iter().enumerate() {
                // Each run starts on a quiet stack: the listener has
                // stored every event of the last (its CPU would be counted
                // against this run's requests), and the last run's spans
                // have arrived.
                let stored = crate::listener_stored().await.unwrap_or(0);
                crate::drain_queue(stored, std::time::Instant::now()).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                let before = spans.load(Ordering::Relaxed);
                let watcher = Watcher::start(
                    procs::services(&settings.run_dir),
                    Duration::from_millis(500),
                );
                let result: LoadResult = load::run(
                    concurrency,
                    settings.warmup,
                    settings.duration,
                    path.request(clients.clone()),
                )
                .await;
                // The services' CPU, all of them, per request answered.
                let cpu: f64 = watcher
                    .finish()
                    .await
                    .values()
                    .map(|(usage, _)| usage.cpu_percent)
                    .sum();
                tokio::time::sleep(Duration::from_secs(2)).await;
                let sent = spans.load(Ordering::Relaxed) - before;
                let per_second = result.per_second();
                let cpu_us = cpu / 100.0 * 1e6 / per_second.max(1.0);
                let p99 = result.quantile_ms(0.99);
                // Spans exported per answered request, warm-up included
                // in the spans but not in the count: an upper bound.
                let per_request = sent as f64 / (result.requests.max(1)) as f64;
                eprintln!(
                    "  {}: {per_second:.0}/s, p99 {p99:.2} ms, {cpu_us:.0} µs CPU/request, {per_request:.1} spans/request, {} errors",
                    path.label(),
                    result.errors
                );
                if config.ratio.is_some() && sent == 0 {
                    eprintln!("    no span arrived: is the export on?");
                }
                let cell = &mut best[c][p];
                cell.0 = cell.0.max(per_second);
                cell.1 = cell.1.min(p99);
                cell.2 = per_request;
                cell.3 = cell.3.min(cpu_us);
            }
        }
    }
    let status = std::process::Command::new("project/native/stop.sh").status()?;
    anyhow::ensure!(status.success(), "make stop failed");

    let mut md = String::new();
    writeln!(
        md,
        "# What exporting traces costs\n\n\
         `make bench-tracing`: the native stack started {} ways in turn, {rounds} rounds; \
         each figure is the best of its rounds. Spans go over OTLP/gRPC to a receiver in the \
         bench that only counts them. The change is the throughput's against export off.\n\n{}",
        configs.len(),
        crate::report::machine(&format!(
            "each path through the broker at concurrency {concurrency} for {} s after {} s of warm-up",
            settings.duration.as_secs(),
            settings.warmup.as_secs(),
        )),
    )?;
    let mut header = "| path |".to_owned();
    let mut rule = "|---|".to_owned();
    for config in &configs {
        write!(header, " {} |", config.label)?;
        rule.push_str("---|");
    }
    writeln!(md, "{header}\n{rule}")?;
    let off = configs
        .iter()
        .position(|c| c.root.is_none() && c.ratio.is_none())
        .expect("export off is always measured");
    for (p, path) in PATHS.iter().enumerate() {
        let mut line = format!("| {} |", path.label());
        for (c, config) in configs.iter().enumerate() {
            let (rate, p99, per_request, cpu_us) = best[c][p];
            write!(line, " {rate:.0}/s, p99 {p99:.2} ms, {cpu_us:.0} µs CPU")?;
            if c != off {
                let (off_rate, _, _, off_cpu) = best[off][p];
                write!(
                    line,
                    " ({:+.1}% rate, {:+.1}% CPU vs export off)",
                    (rate / off_rate - 1.0) * 100.0,
                    (cpu_us / off_cpu - 1.0) * 100.0
                )?;
            }
            if config.ratio.is_some() {
                write!(line, "; {per_request:.1} spans/request")?;
            }
            line.push_str(" |");
        }
        writeln!(md, "{line}")?;
    }
    writeln!(
        md,
        "\nCPU is the services' own (utime + stime of all six, from /proc), per request \
         answered; the load generator's is not counted."
    )?;
    let path = settings.out_dir.join("tracing.md");
    std::fs::write(&path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
