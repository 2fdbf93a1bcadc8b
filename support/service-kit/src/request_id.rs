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

/// Makes the id of a request that came without one: the id of the trace
/// its caller's `traceparent` names, written as a UUID, so a request and
/// its trace share one id ([`crate::telemetry`]); a new random UUID when
/// there is none.
#[derive(Clone, Copy, Default)]
pub struct MakeId;

/// `traceparent`, as a header name made once (a `&str` is parsed into one
/// at every look-up).
static TRACEPARENT_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static(crate::telemetry::TRACEPARENT);

impl tower_http::request_id::MakeRequestId for MakeId {
    fn make_request_id<B>(
        &mut self,
        request: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = request
            .headers()
            .get(&TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(trace_id_of_traceparent)
            .map_or_else(uuid::Uuid::new_v4, uuid::Uuid::from_u128);
        let value = axum::http::HeaderValue::from_str(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        )
        .ok()?;
        Some(tower_http::request_id::RequestId::new(value))
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
/// when it is a valid one.
pub fn trace_id_of_traceparent(traceparent: &str) -> Option<u128> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace_id, span_id) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = version.len() == 2
        && version != "ff"
        && trace_id.len() == 32
        && span_id.len() == 16
        && parts.next().is_some_and(|flags| flags.len() == 2);
    let id = u128::from_str_radix(trace_id, 16).ok()?;
    (valid && id != 0 && u64::from_str_radix(span_id, 16).ok()? != 0).then_some(id)
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
    fn a_request_with_a_traceparent_takes_its_trace_id_as_its_id() {
        use tower_http::request_id::MakeRequestId;
        let with = axum::http::Request::builder()
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(())
            .unwrap();
        let id = MakeId.make_request_id(&with).unwrap();
        assert_eq!(id.header_value(), "0af76519-16cd-43dd-8448-eb211c80319c");

        for bad in [
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd-b7ad6b7169203331-01",
            "not a traceparent",
        ] {
            assert_eq!(trace_id_of_traceparent(bad), None, "{bad}");
        }
        let without = axum::http::Request::builder().body(()).unwrap();
        let made = MakeId.make_request_id(&without).unwrap();
        assert!(uuid::Uuid::try_parse(made.header_value().to_str().unwrap()).is_ok());
    }

    #[test]
    fn a_uuid_survives_the_trip_through_a_trace_id() {
        let id = "0b7f3c9e-5a61-4f0e-9d2a-1c3b5d7e9f00";
        assert_eq!(from_trace_id(to_trace_id(id).unwrap()), id);
        assert_eq!(to_trace_id("not-a-uuid"), None);
    }
}
