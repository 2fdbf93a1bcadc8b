//! How a request or call is counted: the duration buckets, one label
//! set's sharded counts ([`Timings`]), the families that render them as a
//! counter and a histogram, and the handle that counts one kind of
//! request or call by its outcome ([`Recorder`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::Outcome;

/// Request durations' bucket bounds in nanoseconds, from 0.25 ms to about
/// 16 s, each twice the last: what a request is counted by.
const BOUNDS_NANOS: [u64; 17] = {
    let mut bounds = [0; 17];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 250_000 << i;
        i += 1;
    }
    bounds
};

/// The same bounds in seconds, as the histograms are written.
const DURATION_BUCKETS: [f64; BOUNDS_NANOS.len()] = {
    let mut bounds = [0.0; BOUNDS_NANOS.len()];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = BOUNDS_NANOS[i] as f64 / 1e9;
        i += 1;
    }
    bounds
};

/// Each series' counts are split over this many shards, and a thread
/// counts in its own: two cores answering requests at once then rarely
/// write to the same cache line (a shared counter and a histogram behind
/// a lock were most of what metrics cost on `POST /`). A scrape adds the
/// shards up.
const SHARDS: usize = 8;

/// The shard the calling thread counts in.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// One shard of a series: its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Observations per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

/// One label set's requests and how long they took: both the counter
/// and the histogram of the series, from the same counts.
#[derive(Default)]
pub struct Timings {
    shards: [Shard; SHARDS],
}

impl std::fmt::Debug for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timings")
    }
}

impl Timings {
    pub(super) fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS_NANOS.len());
        let shard = &self.shards[shard()];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The shards added up: the count, the sum in seconds, and each
    /// bucket's upper bound with its own count.
    fn read(&self) -> (u64, f64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|bound| (bound, 0))
            .collect();
        let mut nanos = 0_u64;
        for shard in &self.shards {
            for (total, count) in buckets.iter_mut().zip(&shard.buckets) {
                total.1 += count.load(Ordering::Relaxed);
            }
            nanos = nanos.wrapping_add(shard.nanos.load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, count)| count).sum();
        (count, nanos as f64 / 1e9, buckets)
    }
}

/// A counter family and a histogram family with the same labels, kept as
/// one series per label set ([`Timings`]): `server_requests_total` with
/// `server_request_duration_seconds`, and the dependencies' pair.
pub(super) struct TimedFamily<L> {
    counter: (&'static str, &'static str),
    histogram: (&'static str, &'static str),
    series: RwLock<BTreeMap<L, Arc<Timings>>>,
}

impl<L> std::fmt::Debug for TimedFamily<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.counter.0)
    }
}

impl<L: Ord + Clone> TimedFamily<L> {
    pub(super) fn new(
        counter: (&'static str, &'static str),
        histogram: (&'static str, &'static str),
    ) -> Self {
        Self {
            counter,
            histogram,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    /// The series of `labels`, made on first use.
    pub(super) fn series(&self, labels: L) -> Arc<Timings> {
        if let Some(series) = self
            .series
            .read()
            .expect("the series lock is never poisoned")
            .get(&labels)
        {
            return series.clone();
        }
        self.series
            .write()
            .expect("the series lock is never poisoned")
            .entry(labels)
            .or_default()
            .clone()
    }
}

impl<L> Collector for TimedFamily<L>
where
    L: EncodeLabelSet + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self
            .series
            .read()
            .expect("the series lock is never poisoned");
        // Each series read once, so that its count and its histogram agree.
        let read: Vec<_> = series
            .iter()
            .map(|(labels, timings)| (labels, timings.read()))
            .collect();
        let (name, help) = self.counter;
        let mut counters = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, (count, _, _)) in &read {
            ConstCounter::new(*count).encode(counters.encode_family(*labels)?)?;
        }
        let (name, help) = self.histogram;
        let mut histograms = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, (count, sum, buckets)) in &read {
            histograms
                .encode_family(*labels)?
                .encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
        }
        Ok(())
    }
}

/// Counts one kind of request or call (a server's route, a client's
/// dependency): its series, one per outcome, looked up once, so counting
/// is two atomic updates in the calling thread's shard.
#[derive(Clone, Debug)]
pub struct Recorder(Arc<[Arc<Timings>; 3]>);

impl Recorder {
    pub(super) fn new(series: impl Fn(Outcome) -> Arc<Timings>) -> Self {
        // In the order of the variants, which `record` relies on.
        Self(Arc::new([
            series(Outcome::Ok),
            series(Outcome::ClientError),
            series(Outcome::ServerError),
        ]))
    }

    /// Counts one request or call that took `took`.
    pub fn record(&self, outcome: Outcome, took: Duration) {
        self.0[outcome as usize].record(took);
    }

    /// Times `call` and counts it by the outcome `judge` gives its result.
    pub async fn time<T>(
        &self,
        call: impl Future<Output = T>,
        judge: impl FnOnce(&T) -> Outcome,
    ) -> T {
        let started = Instant::now();
        let result = call.await;
        self.record(judge(&result), started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

    #[test]
    fn a_series_counts_every_request_from_every_thread_in_its_bucket() {
        let metrics = Metrics::new();
        let calls = metrics.calls_to("postgresql", "postgresql");
        std::thread::scope(|threads| {
            for _ in 0..4 {
                threads.spawn(|| {
                    for _ in 0..1000 {
                        calls.record(Outcome::Ok, Duration::from_micros(300));
                        metrics.served("tarpc", "log_info", Outcome::Ok, Duration::from_secs(20));
                    }
                });
            }
        });
        calls.record(Outcome::ServerError, Duration::from_micros(250));
        let text = metrics.render();
        for line in [
            r#"dependency_requests_total{dependency="postgresql",transport="postgresql",outcome="ok"} 4000"#,
            r#"dependency_requests_total{dependency="postgresql",transport="postgresql",outcome="server_error"} 1"#,
            // 0.3 ms is over the first bound (0.25 ms), within the second.
            r#"dependency_request_duration_seconds_bucket{le="0.00025",dependency="postgresql",transport="postgresql",outcome="ok"} 0"#,
            r#"dependency_request_duration_seconds_bucket{le="0.0005",dependency="postgresql",transport="postgresql",outcome="ok"} 4000"#,
            r#"dependency_request_duration_seconds_bucket{le="0.00025",dependency="postgresql",transport="postgresql",outcome="server_error"} 1"#,
            r#"dependency_request_duration_seconds_sum{dependency="postgresql",transport="postgresql",outcome="ok"} 1.2"#,
            r#"server_requests_total{transport="tarpc",route="log_info",outcome="ok"} 4000"#,
            // 20 s is over the last bound.
            r#"server_request_duration_seconds_bucket{le="16.384",transport="tarpc",route="log_info",outcome="ok"} 0"#,
            r#"server_request_duration_seconds_bucket{le="+Inf",transport="tarpc",route="log_info",outcome="ok"} 4000"#,
            r#"server_request_duration_seconds_count{transport="tarpc",route="log_info",outcome="ok"} 4000"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
