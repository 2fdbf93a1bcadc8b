//! The spread over two logger replicas (`make bench-spread`, and the end of
//! `make bench`): each log path through the broker is measured with the
//! stack's one logger, then a second logger process is started beside it
//! (the same binary and environment on free ports), the broker and the
//! listener are restarted with both addresses in their lists
//! (docs/deploy.md, "Balancing"), and each path is measured again, with the
//! share of its calls each replica served, from the replicas' own
//! `server_requests_total`. At the end the second logger is stopped and the
//! broker and the listener are started again as they were. Writes
//! `spread.md`.

use proto::http::Transport;
use service_kit::metrics::scrape::{self, Scrape};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proto::ports;

use crate::load::{self, LoadResult};
use crate::scenarios::{Clients, Endpoints, Path};
use crate::{Settings, drain_queue, listener_stored, report};

/// Each log path, and the logger's series for the calls it makes: the
/// broker's tarpc, gRPC and HTTP calls, and the listener's HTTP calls for
/// the events the broker publishes.
const TRANSPORTS: [(Transport, (&str, &str)); 4] = [
    (Transport::Rpc, ("tarpc", "log_info")),
    (Transport::Grpc, ("grpc", "WriteLog")),
    (Transport::Http, ("http", "/log")),
    (Transport::Amqp, ("http", "/log")),
];

pub struct Spread {
    concurrency: usize,
    rows: Vec<Row>,
}

struct Row {
    transport: Transport,
    one: LoadResult,
    two: LoadResult,
    /// Calls each of the two replicas served during the two-replica run.
    served: [u64; 2],
    /// Entries per `insert_many` with one replica and with two.
    batch: [f64; 2],
}

/// A service of the running stack: its binary and environment, read from
/// `/proc`, to start it again with other settings.
struct Process {
    name: String,
    exe: PathBuf,
    env: Vec<(OsString, OsString)>,
    pid: u32,
    /// Set when this bench started it (reaped when it is stopped).
    child: Option<Child>,
}

impl Process {
    fn of_stack(run_dir: &FsPath, name: &str) -> anyhow::Result<Self> {
        let pid: u32 = std::fs::read_to_string(run_dir.join(format!("{name}.pid")))
            .with_context(|| format!("{name}'s pid file (is the native stack up?)"))?
            .trim()
            .parse()
            .with_context(|| format!("{name}'s pid file"))?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .with_context(|| format!("{name} (pid {pid}) is not running"))?;
        let env = std::fs::read(format!("/proc/{pid}/environ"))?
            .split(|&b| b == 0)
            .filter_map(|pair| {
                let pair = String::from_utf8_lossy(pair);
                let (key, value) = pair.split_once('=')?;
                Some((key.into(), value.into()))
            })
            .collect();
        Ok(Self {
            name: name.into(),
            exe,
            env,
            pid,
            child: None,
        })
    }

    /// Starts `self`'s binary with its environment and `overrides`, its
    /// output appended to `<run_dir>/<name>.log` and its pid in
    /// `<run_dir>/<name>.pid` (where `make stop` finds it), and waits for
    /// its `/readyz` on `port`.
    async fn start(
        &self,
        name: &str,
        overrides: &[(&str, String)],
        run_dir: &FsPath,
        port: u16,
    ) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join(format!("{name}.log")))?;
        let child = Command::new(&self.exe)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(overrides.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Out of the terminal's process group: a Ctrl-C of the bench
            // leaves it to `make stop`, as the rest of the stack.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        std::fs::write(run_dir.join(format!("{name}.pid")), format!("{pid}\n"))?;
        let mut env = self.env.clone();
        env.extend(overrides.iter().map(|(k, v)| (k.into(), v.into())));
        let started = Self {
            name: name.into(),
            exe: self.exe.clone(),
            env,
            pid,
            child: Some(child),
        };
        ready(name, port).await?;
        Ok(started)
    }

    /// Stops it (SIGTERM) and waits until it has exited.
    async fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {} ({})", self.pid, self.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let exited = match &mut self.child {
                Some(child) => child.try_wait()?.is_some(),
                // Gone, or a zombie of this bench's (started by an
                // earlier `start` whose handle was dropped).
                None => std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).map_or(
                    true,
                    |stat| {
                        stat.rsplit_once(')')
                            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                    },
                ),
            };
            if exited {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} (pid {}) did not exit within 30 s",
                self.name,
                self.pid
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits up to 30 s for `http://127.0.0.1:<port>/readyz` to answer 200.
async fn ready(name: &str, port: u16) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} is not ready on port {port} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What one logger replica has counted so far, from its own `/metrics`.
#[derive(Clone, Copy, Default)]
struct Counts {
    /// Calls over the transport's route, all outcomes.
    served: u64,
    /// Entries stored in batches, and the batches (`insert_many` calls).
    entries: f64,
    batches: f64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, before: Counts) -> Counts {
        Counts {
            served: self.served - before.served,
            entries: self.entries - before.entries,
            batches: self.batches - before.batches,
        }
    }
}

async fn counts(logger_http: u16, (transport, route): (&str, &str)) -> anyhow::Result<Counts> {
    let text = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{logger_http}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let scrape = Scrape::new(text);
    Ok(Counts {
        served: scrape.sum(&scrape::served_any(transport, route)) as u64,
        entries: scrape.sum("logger_batch_entries_sum "),
        batches: scrape.sum("logger_batch_entries_count "),
    })
}

/// Entries per `insert_many` over the replicas' counts.
fn mean_batch(counts: &[Counts]) -> f64 {
    let (entries, batches) = counts
        .iter()
        .fold((0.0, 0.0), |(e, b), c| (e + c.entries, b + c.batches));
    if batches == 0.0 {
        0.0
    } else {
        entries / batches
    }
}

/// One log path at `concurrency` through the broker; an AMQP run waits
/// until the listener has stored what it queued.
async fn run(
    settings: &Settings,
    concurrency: usize,
    transport: Transport,
) -> anyhow::Result<LoadResult> {
    let clients = Clients::connect(Endpoints::default()).await?;
    let stored_before = listener_stored().await.unwrap_or(0);
    let started = Instant::now();
    let result = load::run(
        concurrency,
        settings.warmup,
        settings.duration,
        Path::BrokerLog(transport).request(Arc::clone(&clients)),
    )
    .await;
    if transport == Transport::Amqp {
        drain_queue(stored_before, started).await;
    }
    if let Some(e) = &result.first_error {
        eprintln!("    {} errors, first: {e}", result.errors);
    }
    Ok(result)
}

pub async fn measure(settings: &Settings) -> anyhow::Result<Spread> {
    let concurrency: usize = std::env::var("SPREAD_CONCURRENCY")
        .unwrap_or_else(|_| "16".into())
        .parse()
        .context("SPREAD_CONCURRENCY")?;
    eprintln!("spread: each log path with one logger replica, at concurrency {concurrency}");
    let mut one = Vec::new();
    for (transport, series) in TRANSPORTS {
        eprintln!("  log via {transport}");
        let before = counts(ports::LOGGER_HTTP, series).await?;
        let result = run(settings, concurrency, transport).await?;
        let batch = mean_batch(&[counts(ports::LOGGER_HTTP, series).await? - before]);
        one.push((result, batch));
    }

    let run_dir = &settings.run_dir;
    let logger = Process::of_stack(run_dir, "logger-service")?;
    let broker = Process::of_stack(run_dir, "broker-service")?;
    let listener = Process::of_stack(run_dir, "listener-service")?;
    let (http, rpc, grpc) = (free_port()?, free_port()?, free_port()?);
    eprintln!("spread: a second logger on ports {http} (HTTP), {rpc} (tarpc), {grpc} (gRPC)");
    let second = logger
        .start(
            "logger-service-2",
            &[
                ("HTTP_ADDR", format!("127.0.0.1:{http}")),
                ("RPC_ADDR", format!("127.0.0.1:{rpc}")),
                ("GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ],
            run_dir,
            http,
        )
        .await?;
    let both = |first: String, second: String| format!("{first},{second}");
    let logger_url = both(
        ports::local_http(ports::LOGGER_HTTP),
        format!("http://127.0.0.1:{http}"),
    );
    let lists = [
        ("LOGGER_URL", logger_url.clone()),
        (
            "LOGGER_RPC_ADDR",
            both(ports::local(ports::LOGGER_RPC), format!("127.0.0.1:{rpc}")),
        ),
        (
            "LOGGER_GRPC_URL",
            both(
                ports::local_http(ports::LOGGER_GRPC),
                format!("http://127.0.0.1:{grpc}"),
            ),
        ),
    ];
    let replicas = [ports::LOGGER_HTTP, http];
    let measured = async {
        broker.replace(&lists, run_dir, ports::BROKER).await?;
        listener
            .replace(
                &[("LOGGER_URL", logger_url.clone())],
                run_dir,
                ports::LISTENER,
            )
            .await?;
        eprintln!("spread: each log path with two logger replicas");
        let mut rows = Vec::new();
        for ((transport, series), (one, one_batch)) in TRANSPORTS.into_iter().zip(one) {
            eprintln!("  log via {transport}");
            let before = [
                counts(replicas[0], series).await?,
                counts(replicas[1], series).await?,
            ];
            let two = run(settings, concurrency, transport).await?;
            let after = [
                counts(replicas[0], series).await?,
                counts(replicas[1], series).await?,
            ];
            let during = [after[0] - before[0], after[1] - before[1]];
            rows.push(Row {
                transport,
                one,
                two,
                served: [during[0].served, during[1].served],
                batch: [one_batch, mean_batch(&during)],
            });
        }
        anyhow::Ok(rows)
    }
    .await;
    // The stack as it was, whatever happened above.
    eprintln!("spread: the second logger stopped, the broker and the listener as they were");
    second.stop().await?;
    std::fs::remove_file(run_dir.join("logger-service-2.pid"))?;
    restore(&broker, run_dir, ports::BROKER).await?;
    restore(&listener, run_dir, ports::LISTENER).await?;
    Ok(Spread {
        concurrency,
        rows: measured?,
    })
}

impl Process {
    /// Stops the stack's process and starts its binary again with
    /// `overrides`; the new process is left running (see [`restore`]).
    async fn replace(
        &self,
        overrides: &[(&str, String)],
        run_dir: &FsPath,
        port: u16,
    ) -> anyhow::Result<()> {
        Process::of_stack(run_dir, &self.name)?.stop().await?;
        // Left running: `restore` stops it by its pid file.
        self.start(&self.name, overrides, run_dir, port).await?;
        Ok(())
    }
}

/// Stops whatever runs under `process`'s pid file now and starts it again
/// with the environment it had.
async fn restore(process: &Process, run_dir: &FsPath, port: u16) -> anyhow::Result<()> {
    match Process::of_stack(run_dir, &process.name) {
        Ok(running) if running.pid == process.pid => return Ok(()),
        Ok(running) => running.stop().await?,
        // Stopped by a `replace` that could not start it again.
        Err(_) => {}
    }
    process.start(&process.name, &[], run_dir, port).await?;
    Ok(())
}

pub fn write(settings: &Settings, spread: &Spread) -> anyhow::Result<()> {
    let mut md = String::new();
    writeln!(
        md,
        "# Two logger replicas\n\nWritten by `make bench` (alone: `make bench-spread`). Each log path through the broker at concurrency {}, first with the native stack's one logger, then with a second logger process beside it (the same binary and settings on other ports) and the broker and the listener started with both addresses in `LOGGER_URL`, `LOGGER_RPC_ADDR` and `LOGGER_GRPC_URL` (docs/deploy.md, \"Balancing\"). The share is each replica's own count of the calls (`server_requests_total` of the route: tarpc `log_info`, gRPC `WriteLog`, HTTP `/log`, which the listener calls for the AMQP path); entries per insert is the loggers' `logger_batch_entries` (sum over count) during the run. Both replicas share the machine's two cores and one MongoDB, so no speed-up is expected: the table shows the spread and what balancing costs.\n",
        spread.concurrency
    )?;
    md.push_str(&report::machine_for_runs(settings, "Each run"));
    writeln!(
        md,
        "\n| log via | one replica: requests/s | p99 ms | entries per insert | two replicas: requests/s | p99 ms | entries per insert | change | replica 1 | replica 2 | replica 1's share | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for row in &spread.rows {
        let total = row.served[0] + row.served[1];
        let share = if total == 0 {
            0.0
        } else {
            row.served[0] as f64 / total as f64 * 100.0
        };
        writeln!(
            md,
            "| {} | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} | {:.1} | {:+.1}% | {} | {} | {share:.1}% | {} |",
            row.transport,
            row.one.per_second(),
            row.one.quantile_ms(0.99),
            row.batch[0],
            row.two.per_second(),
            row.two.quantile_ms(0.99),
            row.batch[1],
            (row.two.per_second() / row.one.per_second() - 1.0) * 100.0,
            row.served[0],
            row.served[1],
            row.one.errors + row.two.errors,
        )?;
    }
    std::fs::write(settings.out_dir.join("spread.md"), md)?;
    Ok(())
}
