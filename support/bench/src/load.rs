//! A closed-loop load generator: `concurrency` workers each send one request
//! after another; a warm-up is run and discarded, then every request
//! answered within the measured window counts, with its latency.

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
                    let answered = Instant::now();
                    // What was answered within the window counts, whenever
                    // it was sent (as wrk counts). Counting what was sent
                    // in it instead, over the window plus the drain of
                    // the last answers, understated a slow path's rate by
                    // one latency in ten seconds: auth at concurrency 16,
                    // answered in 0.9 s, by 8%.
                    if answered < measure_from || answered > stop_at {
                        continue;
                    }
                    result.requests += 1;
                    match outcome {
                        Ok(()) => result
                            .latencies_us
                            .push((answered - sent).as_micros().min(u128::from(u32::MAX)) as u32),
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
    total.elapsed = duration;
    total.latencies_us.sort_unstable();
    total
}

/// How many requests of an open-loop run are on the wire at once, as wrk2
/// keeps a fixed set of connections: a request due while all are busy
/// waits for one, and its wait counts in its latency.
const CONNECTIONS: usize = 256;
/// Requests due but not yet answered beyond which an open-loop run stops
/// sending: the path is far past its capacity, and the unsent are counted
/// as errors.
const MAX_PENDING: usize = 100_000;

/// An open-loop run: requests sent at `rate` per second on a fixed
/// schedule, whatever the answers do, each one's latency measured from
/// the moment it was due, not from when it went out (so a stall counts
/// against every request it held back: no coordinated omission). `warmup`
/// first at the same rate, not measured. The schedule is kept by a thread
/// of its own, which sleeps with the operating system's precision rather
/// than the runtime timer's millisecond.
pub async fn run_open<F, Fut>(
    rate: f64,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> LoadResult
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let request = Arc::new(request);
    let runtime = tokio::runtime::Handle::current();
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let connections = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let start = Instant::now() + Duration::from_millis(10);
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let scheduler = std::thread::spawn({
        let in_flight = in_flight.clone();
        move || {
            let mut skipped = 0u64;
            for n in 0u32.. {
                let due = start + interval * n;
                if due >= stop_at {
                    break;
                }
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let measured = due >= measure_from;
                if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= MAX_PENDING {
                    skipped += u64::from(measured);
                    continue;
                }
                in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (request, done, in_flight) = (request.clone(), done.clone(), in_flight.clone());
                let connections = connections.clone();
                runtime.spawn(async move {
                    let _connection = connections.acquire_owned().await;
                    let outcome = request().await;
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    if measured {
                        let _ = done.send((outcome, due.elapsed()));
                    }
                });
            }
            skipped
        }
    });
    let mut result = LoadResult::default();
    while let Some((outcome, latency)) = answers.recv().await {
        result.requests += 1;
        match outcome {
            Ok(()) => result
                .latencies_us
                .push(latency.as_micros().min(u128::from(u32::MAX)) as u32),
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert(e);
            }
        }
    }
    let skipped = tokio::task::spawn_blocking(move || scheduler.join())
        .await
        .expect("the scheduler's join")
        .expect("the open-loop scheduler panicked");
    if skipped > 0 {
        result.requests += skipped;
        result.errors += skipped;
        result.first_error.get_or_insert(format!(
            "{skipped} requests not sent: {MAX_PENDING} already pending"
        ));
    }
    result.elapsed = duration;
    result.latencies_us.sort_unstable();
    result
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{run, run_open};

    /// Two workers, each answer 400 ms after it was asked: in the window
    /// from 0.5 to 1.5 s, each worker's answers at 0.8 and 1.2 s count,
    /// and those at 0.4 and 1.6 s do not: 4 answers, 4/s. (Counting the
    /// sends of the window, at 0.8 and 1.2 s, over the window plus the
    /// drain to 1.6 s made it 4 in 1.1 s.)
    #[tokio::test]
    async fn a_closed_loop_counts_the_answers_of_its_window() {
        let result = run(
            2,
            Duration::from_millis(500),
            Duration::from_secs(1),
            || async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Ok(())
            },
        )
        .await;
        assert_eq!(result.errors, 0);
        assert_eq!(result.requests, 4, "{result:?}");
        assert!(
            (result.per_second() - 4.0).abs() < 1e-9,
            "{}",
            result.per_second()
        );
        assert_eq!(result.latencies_us.len(), 4);
        assert!(
            result.latencies_us.iter().all(|&us| us >= 400_000),
            "{result:?}"
        );
    }

    /// A stall of the path holds no request back: every request due in the
    /// window is sent, and those due during the stall count its time.
    #[tokio::test]
    async fn an_open_loop_keeps_its_schedule_through_a_stall() {
        let opens = Instant::now() + Duration::from_millis(210);
        let (open, gate) = tokio::sync::watch::channel(false);
        let opener = tokio::spawn(async move {
            tokio::time::sleep_until(opens.into()).await;
            open.send_replace(true);
        });
        let result = run_open(
            100.0,
            Duration::ZERO,
            Duration::from_millis(500),
            move || {
                let mut gate = gate.clone();
                async move {
                    let _ = gate.wait_for(|open| *open).await;
                    Ok(())
                }
            },
        )
        .await;
        opener.await.unwrap();
        assert_eq!(result.errors, 0, "{:?}", result.first_error);
        // 50 due in 0.5 s at 100/s: all of them sent, none waiting for an
        // answer first (a closed loop of one would have sent about 30).
        assert!((49..=51).contains(&result.requests), "{}", result.requests);
        // The first was due about 200 ms before the stall ended.
        assert!(
            result.quantile_ms(1.0) >= 180.0,
            "{}",
            result.quantile_ms(1.0)
        );
        // Those due after it were answered at once.
        assert!(
            result.quantile_ms(0.5) < 50.0,
            "{}",
            result.quantile_ms(0.5)
        );
    }
}
