//! The request id (docs/contracts.md §3). Every HTTP request gets one as it
//! arrives: the caller's `x-request-id` when it sent one, a new UUID
//! otherwise. It is echoed in the response, is a field of every log line
//! the request causes, and goes along with every call the request makes to
//! another service: as the `x-request-id` header over HTTP, gRPC metadata
//! of that name, the AMQP message header of that name, and tarpc's 128-bit
//! trace id (when the id is a UUID, as the ones made here are).
//!
//! Within a request the id is kept in a task-local, so the clients read it
//! from [`current`] without every function passing it along; work spawned
//! onto another task takes it with [`scope`].

use std::future::Future;

pub use proto::http::REQUEST_ID_HEADER as HEADER;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` with `id` as the current request id (none: as it is).
pub async fn scope<F: Future>(id: Option<String>, work: F) -> F::Output {
    match id {
        Some(id) => CURRENT.scope(id, work).await,
        None => work.await,
    }
}

/// The id as tarpc's trace id, when it is a UUID.
pub fn to_trace_id(id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(id).ok().map(|u| u.as_u128())
}

/// A tarpc trace id written as the request id it came from.
pub fn from_trace_id(trace_id: u128) -> String {
    uuid::Uuid::from_u128(trace_id).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_is_current_only_inside_its_scope() {
        assert_eq!(current(), None);
        let inside = scope(Some("abc".into()), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("abc"));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_uuid_survives_the_trip_through_a_trace_id() {
        let id = "0b7f3c9e-5a61-4f0e-9d2a-1c3b5d7e9f00";
        assert_eq!(from_trace_id(to_trace_id(id).unwrap()), id);
        assert_eq!(to_trace_id("not-a-uuid"), None);
    }
}
