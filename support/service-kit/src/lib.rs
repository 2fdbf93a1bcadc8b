//! What every service of the system shares, and nothing that belongs to one
//! service alone:
//!
//! - [`config`]: typed configuration from environment variables, validated at
//!   start, with errors that name the variable.
//! - [`telemetry`]: logs (human-readable or JSON), OpenTelemetry traces
//!   over OTLP, and the W3C trace context every hop carries.
//! - [`metrics`]: each service's Prometheus metrics, served on `/metrics`.
//! - [`shutdown`]: SIGINT/SIGTERM as a cancellation token for every server task.
//! - [`http`]: the HTTP conventions: the error envelope, the JSON body rules,
//!   the per-request log line and timeout, and a bounded graceful drain.
//! - [`limit`]: per-client rate limits.
//! - [`origins`]: which web pages may use a service from a browser.
//! - [`request_id`]: the id each request carries to every service it
//!   reaches, in every log line.
//! - [`health`]: `/healthz`, `/ping` and `/readyz` with dependency checks.
//! - [`token`]: the access tokens authentication-service signs and the
//!   broker and the logger verify.
//! - [`upstream`]: a pooled JSON client for calling the other services.
//! - [`service`]: [`Service`], the builder every service is assembled
//!   with, its supervisor, and [`main`], the start of every service binary.

pub mod config;
pub mod health;
pub mod http;
pub mod limit;
pub mod metrics;
pub mod origins;
pub mod request_id;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod token;
pub mod upstream;

pub use service::{Bound, Service, main};
