//! What the listener has done, as counters served on `/metrics` in the
//! Prometheus text format.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::header;
use axum::response::IntoResponse;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Deliveries taken from the queue.
    pub received: AtomicU64,
    /// Events stored by the logger and acknowledged.
    pub stored: AtomicU64,
    /// Store attempts that failed and were tried again.
    pub retried: AtomicU64,
    /// Events sent to the dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Connections to RabbitMQ established (1 + reconnects).
    pub connections: AtomicU64,
    /// Whether a consumer is running right now.
    pub consuming: AtomicBool,
}

impl Metrics {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn render(&self) -> impl IntoResponse + use<> {
        let counters = [
            (
                "listener_deliveries_received_total",
                "Deliveries taken from the queue.",
                &self.received,
            ),
            (
                "listener_events_stored_total",
                "Events stored and acknowledged.",
                &self.stored,
            ),
            (
                "listener_store_retries_total",
                "Failed store attempts that were retried.",
                &self.retried,
            ),
            (
                "listener_events_dead_lettered_total",
                "Events sent to the dead-letter queue.",
                &self.dead_lettered,
            ),
            (
                "listener_connections_total",
                "Connections to RabbitMQ established.",
                &self.connections,
            ),
        ];
        let mut text = String::new();
        for (name, help, counter) in counters {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                Self::get(counter)
            ));
        }
        let consuming = u8::from(self.consuming.load(Ordering::Relaxed));
        text.push_str(&format!(
            "# HELP listener_consuming Whether a consumer is running.\n# TYPE listener_consuming gauge\nlistener_consuming {consuming}\n"
        ));
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
    }
}
