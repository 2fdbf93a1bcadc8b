//! The log event carried over RabbitMQ: a persistent JSON message published
//! to the durable topic exchange [`EXCHANGE`] with a `log.<LEVEL>` routing key.

use serde::{Deserialize, Serialize};

/// The durable topic exchange the broker publishes log events to.
pub const EXCHANGE: &str = "logs_topic";
/// The dead-letter exchange for events that could not be stored.
pub const DEAD_LETTER_EXCHANGE: &str = "logs_topic.dlx";
/// The durable queue shared by every listener replica.
pub const QUEUE: &str = "logs";
/// The queue that keeps dead-lettered events.
pub const DEAD_LETTER_QUEUE: &str = "logs.dead";
/// The header of a dead-lettered event that says why it is poison.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
/// The header of a dead-lettered event that keeps its routing key, so a
/// replay routes it as first published.
pub const ORIGINAL_ROUTING_KEY_HEADER: &str = "x-original-routing-key";
/// The largest event the listener accepts: an entry at its bounds
/// (`MAX_LOG_NAME_BYTES`, `MAX_LOG_DATA_BYTES`) encoded as JSON with every
/// byte escaped (`\u00XX`, six bytes), plus the braces and keys. So every
/// entry the broker accepts fits, and a bigger message is poison. Held
/// `PREFETCH` (32) at a time, that is about 12 MiB at most.
pub const MAX_EVENT_BYTES: usize = 6 * (crate::MAX_LOG_NAME_BYTES + crate::MAX_LOG_DATA_BYTES) + 64;

/// Severity of a log event; selects the routing key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    #[default]
    Info,
    Warning,
    Error,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Info, Level::Warning, Level::Error];

    /// The routing key this level is published with, e.g. `log.INFO`.
    pub fn routing_key(self) -> &'static str {
        match self {
            Level::Info => "log.INFO",
            Level::Warning => "log.WARNING",
            Level::Error => "log.ERROR",
        }
    }
}

/// The message body: `{"name": ..., "data": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    pub name: String,
    pub data: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_follow_the_level() {
        let keys: Vec<_> = Level::ALL.iter().map(|l| l.routing_key()).collect();
        assert_eq!(keys, ["log.INFO", "log.WARNING", "log.ERROR"]);
        let level: Level = serde_json::from_str("\"WARNING\"").unwrap();
        assert_eq!(level, Level::Warning);
    }
}
