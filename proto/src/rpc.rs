//! The logger's tarpc contract, served on port 5001 with JSON framing over TCP.

use serde::{Deserialize, Serialize};

/// Why the logger refused or failed an RPC log call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRpcError {
    /// The entry breaks a bound (empty or oversized name, oversized data).
    InvalidArgument(String),
    /// The logger could not store the entry.
    Unavailable(String),
}

impl std::fmt::Display for LogRpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for LogRpcError {}

/// Writes one log entry. On success the answer is
/// `"Processed payload via RPC: <name>"`. `id` (24 hex digits, an ObjectId)
/// makes the write idempotent: a retried call with the same id stores the
/// entry once. `None`: the logger makes an id.
#[tarpc::service]
pub trait LogService {
    async fn log_info(
        name: String,
        data: String,
        id: Option<String>,
    ) -> Result<String, LogRpcError>;
}
