//! What the listener has done, as counters in the service's metrics
//! (`GET /metrics`, [`service_kit::metrics`]), and the depth of the queue
//! it consumes, as RabbitMQ last reported it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use service_kit::metrics::prometheus_client::metrics::counter::Counter;
use service_kit::metrics::{Metrics as ServiceMetrics, Reading};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Deliveries taken from the queue.
    pub received: Counter,
    /// Events stored by the logger and acknowledged.
    pub stored: Counter,
    /// Store attempts that failed and were tried again.
    pub retried: Counter,
    /// Events sent to the dead-letter queue.
    pub dead_lettered: Counter,
    /// Connections to RabbitMQ established (1 + reconnects).
    pub connections: Counter,
    /// Whether a consumer is running right now.
    pub consuming: AtomicBool,
    /// Messages ready in the queue at the last look (-1: not known yet).
    pub queue_depth: AtomicI64,
}

impl Metrics {
    /// The listener's counters, registered in the service's `metrics`.
    pub fn registered(metrics: &ServiceMetrics) -> Arc<Self> {
        let this = Arc::new(Self {
            queue_depth: AtomicI64::new(-1),
            ..Self::default()
        });
        for (name, help, counter) in [
            (
                "listener_deliveries_received",
                "Deliveries taken from the queue.",
                &this.received,
            ),
            (
                "listener_events_stored",
                "Events stored and acknowledged.",
                &this.stored,
            ),
            (
                "listener_store_retries",
                "Failed store attempts that were retried.",
                &this.retried,
            ),
            (
                "listener_events_dead_lettered",
                "Events sent to the dead-letter queue.",
                &this.dead_lettered,
            ),
            (
                "listener_connections",
                "Connections to RabbitMQ established.",
                &this.connections,
            ),
        ] {
            metrics.register(name, help, counter.clone());
        }
        let read = Arc::downgrade(&this);
        metrics.register_reading(
            "listener_consuming",
            "Whether a consumer is running.",
            Reading::Gauge,
            &[],
            move || {
                read.upgrade()
                    .map_or(0, |m| i64::from(m.consuming.load(Ordering::Relaxed)))
            },
        );
        let read = Arc::downgrade(&this);
        metrics.register_reading(
            "listener_queue_depth",
            "Messages ready in the queue at the listener's last look (every 2 s; -1 before the first).",
            Reading::Gauge,
            &[("queue", proto::amqp::QUEUE)],
            move || {
                read.upgrade()
                    .map_or(-1, |m| m.queue_depth.load(Ordering::Relaxed))
            },
        );
        this
    }

    pub fn count(counter: &Counter) {
        counter.inc();
    }

    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }
}
