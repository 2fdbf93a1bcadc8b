//! Every wire contract of the system, in one place.
//!
//! - [`grpc`]: the logger's gRPC service, generated from `logs.proto`.
//! - [`rpc`]: the logger's tarpc service.
//! - [`http`]: the JSON payloads of the HTTP APIs and the response envelope.
//! - [`amqp`]: the log event published to RabbitMQ.

pub mod amqp;
pub mod http;
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
