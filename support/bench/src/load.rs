//! A closed-loop load generator: `concurrency` workers each send one request
//! after another; a warm-up is run and discarded, then every latency of the
//! measured window is kept.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request; `Err` is counted as an error with its message.
pub type Outcome = Result<(), String>;

#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Sorted latencies of the successful requests, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// Runs the load: `warmup` first (not measured), then `duration`.
pub async fn run<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> LoadResult
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut result = LoadResult::default();
                loop {
                    let sent = Instant::now();
                    if sent >= stop_at {
                        break;
                    }
                    let outcome = request().await;
                    if sent < measure_from {
                        continue;
                    }
                    result.requests += 1;
                    match outcome {
                        Ok(()) => result
                            .latencies_us
                            .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
                        Err(e) => {
                            result.errors += 1;
                            result.first_error.get_or_insert(e);
                        }
                    }
                }
                result
            })
        })
        .collect();
    let mut total = LoadResult::default();
    for worker in workers {
        let part = worker.await.expect("a load worker panicked");
        total.requests += part.requests;
        total.errors += part.errors;
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
        total.latencies_us.extend(part.latencies_us);
    }
    // Requests still in flight at the end finish after `stop_at`; the
    // window is measured up to the last of them.
    total.elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .max(duration);
    total.latencies_us.sort_unstable();
    total
}
