//! What each service process costs during a run, read from /proc: resident
//! memory (peak of the samples), open file descriptors, TCP sockets and CPU.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub rss_kib: u64,
    pub fds: u64,
    pub sockets: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads one process's numbers; `None` once it is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let (mut fds, mut sockets) = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        fds += 1;
        if std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        {
            sockets += 1;
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Sample {
        rss_kib,
        fds,
        sockets,
        cpu_ticks,
    })
}

/// The services `make start` runs, by name, from their PID files.
pub fn services(run_dir: &Path) -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    for name in [
        "broker-service",
        "authentication-service",
        "logger-service",
        "mail-service",
        "listener-service",
    ] {
        if let Some(pid) = std::fs::read_to_string(run_dir.join(format!("{name}.pid")))
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            found.insert(name.to_owned(), pid);
        }
    }
    found
}

/// Per-process usage over a window: peak RSS, peak fds and sockets, CPU %.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub peak_rss_kib: u64,
    pub peak_fds: u64,
    pub peak_sockets: u64,
    pub cpu_percent: f64,
}

/// Samples `pids` every `every` until stopped; `finish` returns the usage.
pub struct Watcher {
    stop: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<BTreeMap<String, (Usage, Vec<Sample>)>>,
}

impl Watcher {
    pub fn start(pids: BTreeMap<String, u32>, every: Duration) -> Self {
        let stop = Arc::new(Mutex::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let ticks_per_second = 100.0; // USER_HZ on Linux
            let started = Instant::now();
            let first: BTreeMap<_, _> = pids
                .iter()
                .filter_map(|(n, p)| Some((n.clone(), sample(*p)?)))
                .collect();
            let mut series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
            loop {
                for (name, pid) in &pids {
                    if let Some(s) = sample(*pid) {
                        series.entry(name.clone()).or_default().push(s);
                    }
                }
                if *stopped.lock().unwrap() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
            let seconds = started.elapsed().as_secs_f64();
            series
                .into_iter()
                .map(|(name, samples)| {
                    let last = samples.last().copied().unwrap_or_default();
                    let cpu = first
                        .get(&name)
                        .map_or(0, |f| last.cpu_ticks.saturating_sub(f.cpu_ticks));
                    let usage = Usage {
                        peak_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
                        peak_fds: samples.iter().map(|s| s.fds).max().unwrap_or(0),
                        peak_sockets: samples.iter().map(|s| s.sockets).max().unwrap_or(0),
                        cpu_percent: cpu as f64 / ticks_per_second / seconds * 100.0,
                    };
                    (name, (usage, samples))
                })
                .collect()
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> BTreeMap<String, (Usage, Vec<Sample>)> {
        *self.stop.lock().unwrap() = true;
        self.task.await.expect("the sampler panicked")
    }
}
