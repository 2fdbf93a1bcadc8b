//! How the system waits and tries again: the two primitives every retry and
//! every reconnect is built from, and nothing else.
//!
//! - [`Backoff`]: the delays between attempts (the listener's reconnects
//!   and store retries, the logger's index creation, authentication's
//!   migrations at start).
//! - [`Reconnecting`]: one long-lived connection shared by every request,
//!   dialed again after it is lost (the broker's tarpc client, the AMQP
//!   publisher).

pub mod backoff;
pub mod reconnect;

pub use backoff::Backoff;
pub use reconnect::Reconnecting;
