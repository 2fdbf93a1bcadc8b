//! The HTTP conventions of docs/contracts.md §3, shared by every service:
//!
//! - [`ApiError`]: the one place where failures become status codes and the
//!   `{"error":true,"message":...}` envelope.
//! - [`JsonBody`]: a JSON body with a JSON Content-Type (415 otherwise), at
//!   most [`MAX_BODY_BYTES`], with the parser's message on a bad body; and
//!   [`AnyJsonBody`], the broker's, read whatever its Content-Type says;
//!   [`CheckedQuery`], a query string held to its type's own rule.
//! - [`with_conventions`]: the envelope for unknown routes and methods, the
//!   body limit, the request id, and one log line per request (tower-http's
//!   `TraceLayer`) under a request timeout.
//! - [`serve`] and [`HttpServer`]: an HTTP server that drains in-flight
//!   requests on shutdown, for a bounded time.
//!
//! One module each: [`error`], [`extract`], [`conventions`], [`server`].

pub mod conventions;
pub mod error;
pub mod extract;
pub mod server;

pub use conventions::with_conventions;
pub use error::ApiError;
pub use extract::{AnyJsonBody, CheckedQuery, JsonBody};
pub use server::{ConnectionLimits, HttpServer, serve};

/// The largest request body any service accepts: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
