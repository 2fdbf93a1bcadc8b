//! The newest-first listing at size (`bench listing`, and the end of
//! `bench`): the log collection is emptied and filled with `LISTING_ENTRIES`
//! entries (1,000,000) through the logger's gRPC, then `GET /logs?limit=10`
//! is timed at the logger and through the broker, idle and while entries
//! keep being written.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::load::{self, LoadResult};
use crate::scenarios::{Clients, Path};
use crate::{Settings, report};

/// Workers filling the collection.
const FILLERS: usize = 64;

pub struct Listing {
    entries: u64,
    fill: Duration,
    rows: Vec<(String, &'static str, LoadResult)>,
}

pub async fn measure(settings: &Settings, clients: &Arc<Clients>) -> anyhow::Result<Listing> {
    let entries: u64 = std::env::var("LISTING_ENTRIES")
        .unwrap_or_else(|_| "1000000".into())
        .parse()
        .context("LISTING_ENTRIES")?;
    eprintln!("listing: emptying the log collection, then {entries} entries over gRPC");
    // Dropping a large collection takes the stand-in longer than the
    // logger waits (503); the drop goes on, and a later one finds it done.
    let mut attempts = 0;
    while let Err(e) = clients.delete(format!("{}/logs", clients.logger())).await {
        attempts += 1;
        anyhow::ensure!(attempts < 24, "cannot empty the log collection: {e}");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let started = Instant::now();
    fill(clients, entries).await?;
    let fill = started.elapsed();
    eprintln!("  filled in {:.0} s", fill.as_secs_f64());

    let mut rows = Vec::new();
    for (label, base) in [("logger", clients.logger()), ("broker", clients.broker())] {
        let url = format!("{base}/logs?limit=10");
        let label = format!("{label} GET /logs?limit=10");
        eprintln!("  {label}");
        let idle = load::run(
            1,
            settings.warmup,
            settings.duration,
            clients.getter(url.clone()),
        )
        .await;
        rows.push((label.clone(), "idle", idle));
        let writes = tokio::spawn(load::run(
            16,
            Duration::ZERO,
            settings.warmup + settings.duration + Duration::from_secs(1),
            Path::LoggerGrpc.request(clients.clone()),
        ));
        let busy = load::run(1, settings.warmup, settings.duration, clients.getter(url)).await;
        let writes = writes.await?;
        rows.push((label, "while 16 workers write over gRPC", busy));
        if writes.errors > 0 {
            eprintln!(
                "    {} write errors, first: {:?}",
                writes.errors, writes.first_error
            );
        }
    }
    Ok(Listing {
        entries,
        fill,
        rows,
    })
}

/// Writes `entries` entries with `FILLERS` workers; a failed write is
/// sent again.
async fn fill(clients: &Arc<Clients>, entries: u64) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..FILLERS)
        .map(|_| {
            let (next, failures) = (next.clone(), failures.clone());
            let write = Path::LoggerGrpc.request(clients.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < entries {
                    while write().await.is_err() {
                        if failures.fetch_add(1, Ordering::Relaxed) > 1000 {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let failures = failures.load(Ordering::Relaxed);
    anyhow::ensure!(failures <= 1000, "over 1000 writes failed while filling");
    if failures > 0 {
        eprintln!("  {failures} writes failed and were sent again");
    }
    Ok(())
}

pub fn write(settings: &Settings, listing: &Listing) -> anyhow::Result<()> {
    let mut md = String::new();
    writeln!(
        md,
        "# Listing at size\n\nWritten by `make bench` (alone: `make bench-listing`). The log collection is emptied and {} entries are written through the logger's gRPC by {FILLERS} workers ({:.0} s, {:.0} entries/s); then `GET /logs?limit=10` (the test page's panel) is sent by one worker, idle and while 16 workers keep writing. How the listing stays fast: docs/design.md, \"Listing at size\".\n",
        listing.entries,
        listing.fill.as_secs_f64(),
        listing.entries as f64 / listing.fill.as_secs_f64()
    )?;
    md.push_str(&report::machine_for_runs(settings, "Each listing run"));
    writeln!(
        md,
        "\n| request | while | requests | p50 ms | p99 ms | max ms | errors |\n|---|---|---:|---:|---:|---:|---:|"
    )?;
    for (label, condition, r) in &listing.rows {
        writeln!(
            md,
            "| {label} | {condition} | {} | {:.2} | {:.2} | {:.2} | {} |",
            r.requests,
            r.quantile_ms(0.5),
            r.quantile_ms(0.99),
            r.quantile_ms(1.0),
            r.errors
        )?;
    }
    std::fs::write(settings.out_dir.join("listing.md"), md)?;
    Ok(())
}
