//! How the system waits, tries again and spreads its calls: the
//! primitives every retry, every reconnect and every balanced client is
//! built from, and nothing else.
//!
//! - [`Backoff`]: the delays between attempts (the listener's reconnects
//!   and store retries, the logger's index creation, authentication's
//!   migrations at start).
//! - [`Reconnecting`]: one long-lived connection shared by every request,
//!   dialed again after it is lost (the broker's tarpc client, the AMQP
//!   publisher).
//! - [`Replicas`]: every replica of a service with a client each, calls
//!   spread over them in turn, re-resolved as replicas come and go (every
//!   client of the system's own services).
//! - [`Breaker`]: a circuit breaker's state machine (closed, open,
//!   half-open, the open time doubling on each failed probe); not yet wired
//!   into the clients (issue 32).

pub mod backoff;
pub mod breaker;
pub mod reconnect;
pub mod replicas;

pub use backoff::Backoff;
pub use breaker::{Breaker, Rejected, Settings as BreakerSettings, State as BreakerState, Ticket};
pub use reconnect::Reconnecting;
pub use replicas::{NoReplica, Picked, Replicas, Target};
