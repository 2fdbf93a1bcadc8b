//! Every wire contract of the system, in one place.
//!
//! - [`grpc`]: the logger's gRPC service, generated from `logs.proto`.
//! - [`rpc`]: the logger's tarpc service.
//! - [`http`]: the JSON payloads of the HTTP APIs and the response envelope.
//! - [`amqp`]: the log event published to RabbitMQ.
//! - [`ports`]: every port of the system.
//! - [`token`]: who signs the access tokens and whom they are for.

pub mod amqp;
pub mod http;
pub mod ports;
pub mod rpc;

/// The access token's fixed claims (docs/security.md).
pub mod token {
    /// Who signs tokens.
    pub const ISSUER: &str = "authentication-service";
    /// Whom they are for: this system's own services.
    pub const AUDIENCE: &str = "microservices";
}

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

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::http::RequestPayload;

    /// Arbitrary bytes, or an object with an `action` (any text) and maybe
    /// one more field of any name.
    fn request_bodies() -> impl Strategy<Value = Vec<u8>> {
        let object = (".{0,20}", proptest::option::of("[a-z]{1,9}"), any::<i64>()).prop_map(
            |(action, key, n)| {
                let mut object = serde_json::json!({ "action": action });
                if let Some(key) = key {
                    object[key] = serde_json::json!(n);
                }
                object.to_string().into_bytes()
            },
        );
        prop_oneof![proptest::collection::vec(any::<u8>(), 0..512), object]
    }

    proptest! {
        /// The entry check is exactly its rule, for any text at all.
        #[test]
        fn the_entry_check_is_its_rule(name in "\\PC{0,300}|\\s{0,5}", data in ".{0,10}") {
            let expected = !name.trim().is_empty() && name.len() <= MAX_LOG_NAME_BYTES;
            prop_assert_eq!(check_log_entry(&name, &data).is_ok(), expected);
            if let Err(reason) = check_log_entry(&name, &data) {
                prop_assert!(reason.contains("name"));
            }
        }

        #[test]
        fn data_over_the_bound_is_refused(extra in 1usize..100) {
            let data = "d".repeat(MAX_LOG_DATA_BYTES + extra);
            let refused = check_log_entry("event", &data).unwrap_err();
            prop_assert!(refused.contains("data"), "{}", refused);
        }

        #[test]
        fn an_id_is_24_hex_digits(id in "[0-9a-fA-F]{24}", other in "\\PC{0,30}") {
            prop_assert!(check_entry_id(&id).is_ok());
            let hex = other.len() == 24 && other.bytes().all(|b| b.is_ascii_hexdigit());
            prop_assert_eq!(check_entry_id(&other).is_ok(), hex);
        }

        /// Any bytes at all, and objects near a request: the broker's
        /// request decoder never panics; what it accepts has its `action`
        /// and survives a round trip; an object with a string `action` and
        /// none of the fields it reads is never refused.
        #[test]
        fn the_request_decoder_takes_any_bytes(bytes in request_bodies()) {
            let value = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            match serde_json::from_slice::<RequestPayload>(&bytes) {
                Ok(payload) => {
                    let action = value.as_ref().and_then(|v| v["action"].as_str());
                    prop_assert_eq!(action, Some(payload.action.as_str()));
                    let text = serde_json::to_string(&payload).unwrap();
                    prop_assert_eq!(serde_json::from_str::<RequestPayload>(&text).unwrap(), payload);
                }
                Err(_) => {
                    if let Some(object) = value.as_ref().and_then(|v| v.as_object()) {
                        let reads = ["transport", "auth", "log", "mail"]
                            .iter()
                            .any(|k| object.contains_key(*k));
                        let action = object.get("action").is_some_and(|a| a.is_string());
                        prop_assert!(reads || !action, "refused {:?}", object);
                    }
                }
            }
        }
    }
}
