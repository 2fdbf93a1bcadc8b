//! Readings: values a service does not count itself but reads when
//! `/metrics` is scraped (a pool's size, a queue's depth, a count kept
//! elsewhere), registered with [`Metrics::register_reading`].
//!
//! [`Metrics::register_reading`]: super::Metrics::register_reading

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What a reading is: a value that goes up and down, or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Gauge,
    Counter,
}

type Read = Box<dyn Fn() -> i64 + Send + Sync>;

struct ReadingFamily {
    help: &'static str,
    kind: Reading,
    members: Vec<(Vec<(&'static str, &'static str)>, Read)>,
}

/// The values read at each scrape ([`Metrics::register_reading`]).
///
/// [`Metrics::register_reading`]: super::Metrics::register_reading
#[derive(Default)]
pub(super) struct Readings {
    families: Mutex<BTreeMap<&'static str, ReadingFamily>>,
}

impl Readings {
    /// Adds `read` to the readings of `name`, with its own `labels`.
    pub(super) fn add(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Reading,
        labels: &[(&'static str, &'static str)],
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        let mut families = self
            .families
            .lock()
            .expect("the readings lock is never poisoned");
        families
            .entry(name)
            .or_insert_with(|| ReadingFamily {
                help,
                kind,
                members: Vec::new(),
            })
            .members
            .push((labels.to_vec(), Box::new(read)));
    }
}

impl std::fmt::Debug for Readings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readings")
    }
}

impl Collector for Readings {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = self
            .families
            .lock()
            .expect("the readings lock is never poisoned");
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Reading::Gauge => MetricType::Gauge,
                Reading::Counter => MetricType::Counter,
            };
            let mut descriptor = encoder.encode_descriptor(name, family.help, None, kind)?;
            for (labels, read) in &family.members {
                let member = descriptor.encode_family(labels)?;
                let value = read();
                match family.kind {
                    Reading::Gauge => ConstGauge::new(value).encode(member)?,
                    Reading::Counter => {
                        ConstCounter::new(u64::try_from(value).unwrap_or(0)).encode(member)?
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::Metrics;
    use super::*;

    #[test]
    fn a_reading_is_taken_at_each_scrape() {
        let metrics = Metrics::new();
        let depth = Arc::new(std::sync::atomic::AtomicI64::new(3));
        let read = depth.clone();
        metrics.register_reading(
            "queue_depth",
            "Messages waiting.",
            Reading::Gauge,
            &[("queue", "logs")],
            move || read.load(std::sync::atomic::Ordering::Relaxed),
        );
        metrics.register_reading(
            "connections_opened",
            "Connections made.",
            Reading::Counter,
            &[],
            || 2,
        );
        assert!(metrics.render().contains("queue_depth{queue=\"logs\"} 3"));
        depth.store(7, std::sync::atomic::Ordering::Relaxed);
        let text = metrics.render();
        assert!(text.contains("queue_depth{queue=\"logs\"} 7"), "{text}");
        assert!(text.contains("connections_opened_total 2"), "{text}");
    }
}
