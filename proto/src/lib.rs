//! Every wire contract of the system, in one place.
//!
//! - [`grpc`]: the logger's gRPC service, generated from `logs.proto`.
//! - [`rpc`]: the logger's tarpc service.
//! - [`http`]: the JSON payloads of the HTTP APIs and the response envelope.
//! - [`amqp`]: the log event published to RabbitMQ.
//! - [`ports`]: every port of the system.

pub mod amqp;
pub mod http;
pub mod ports;
pub mod rpc;

/// The gRPC contract (package `logs`). Kept in its own module because tarpc
/// and tonic both generate a `LogService`.
pub mod grpc {
    tonic::include_proto!("logs");
}

/// Upper bound on a log entry's `name`, in bytes, on every transport.
pub const MAX_LOG_NAME_BYTES: usize = 256;
/// Upper bound on a log entry's `data`, in bytes, on every transport.
pub const MAX_LOG_DATA_BYTES: usize = 64 * 1024;

/// The bounds every transport enforces on a log entry: `name` non-blank and
/// at most [`MAX_LOG_NAME_BYTES`], `data` at most [`MAX_LOG_DATA_BYTES`]
/// (it may be empty). The error says which rule was broken.
pub fn check_log_entry(name: &str, data: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name is required and must not be blank".into());
    }
    if name.len() > MAX_LOG_NAME_BYTES {
        return Err(format!(
            "name is {} bytes; at most {MAX_LOG_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    if data.len() > MAX_LOG_DATA_BYTES {
        return Err(format!(
            "data is {} bytes; at most {MAX_LOG_DATA_BYTES} are allowed",
            data.len()
        ));
    }
    Ok(())
}

/// An entry's id is 24 hex digits (a MongoDB ObjectId), on every transport.
pub fn check_entry_id(id: &str) -> Result<(), String> {
    if id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("malformed id {id:?}: expected 24 hex digits"))
    }
}
