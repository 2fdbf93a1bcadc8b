//! The JSON contracts of the HTTP APIs: the response envelope every service
//! answers with, the broker's request, and the payloads it forwards.
//!
//! Unknown fields are ignored everywhere (serde's default); missing required
//! fields are reported by serde with the field's name.

use serde::{Deserialize, Serialize};

use crate::amqp::Level;

/// The header carrying a request's id from service to service (also the
/// gRPC metadata key and the AMQP message header; docs/contracts.md §3).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The paging of `GET /logs`, one rule for the broker's and the logger's:
/// `?limit=N&skip=M`, newest first. `limit` is a whole number from 1 to
/// [`MAX_PAGE_LIMIT`] (default [`DEFAULT_PAGE_LIMIT`]), `skip` one from 0
/// (default 0). The services read it with `service_kit::http::CheckedQuery`:
/// axum's `Query`, whose rejection names the field that is not a whole
/// number, then [`Page::check`] ([`Check`]), which refuses a limit out of
/// range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Page {
    pub limit: u32,
    pub skip: u64,
}

/// How many entries `GET /logs` lists without a `limit`.
pub const DEFAULT_PAGE_LIMIT: u32 = 10;
/// The most entries one `GET /logs` lists.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// The most entries `GET /logs` skips: a listing is for the newest entries,
/// and a deep skip makes the server walk that many.
pub const MAX_PAGE_SKIP: u64 = 10_000;

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_LIMIT,
            skip: 0,
        }
    }
}

/// A request's own rule, beyond its shape: checked once it is parsed.
pub trait Check: Sized {
    /// The value, if it keeps the rule; else the message of the 400.
    fn check(self) -> Result<Self, String>;
}

impl Check for Page {
    /// The page, if its limit and skip are in range.
    fn check(self) -> Result<Self, String> {
        if !(1..=MAX_PAGE_LIMIT).contains(&self.limit) {
            return Err(format!(
                "limit must be a whole number from 1 to {MAX_PAGE_LIMIT}, not {}",
                self.limit
            ));
        }
        if self.skip > MAX_PAGE_SKIP {
            return Err(format!(
                "skip must be a whole number from 0 to {MAX_PAGE_SKIP}, not {}",
                self.skip
            ));
        }
        Ok(self)
    }
}

impl Page {
    /// The query string that asks for this page (`limit=N&skip=M`).
    pub fn query(&self) -> String {
        format!("limit={}&skip={}", self.limit, self.skip)
    }
}

/// Every HTTP answer of every service: `{"error", "message", "data"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    pub error: bool,
    pub message: String,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

impl<T> Envelope<T> {
    /// A success with a message and no data.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            error: false,
            message: message.into(),
            data: None,
        }
    }

    /// A success carrying data.
    pub fn with_data(message: impl Into<String>, data: T) -> Self {
        Self {
            error: false,
            message: message.into(),
            data: Some(data),
        }
    }

    /// A failure; the status code travels beside it.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            error: true,
            message: message.into(),
            data: None,
        }
    }
}

/// The logger transport the broker uses for a `log` action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Rpc,
    Http,
    Grpc,
    Amqp,
}

impl Transport {
    pub const ALL: [Transport; 4] = [
        Transport::Rpc,
        Transport::Http,
        Transport::Grpc,
        Transport::Amqp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rpc => "rpc",
            Transport::Http => "http",
            Transport::Grpc => "grpc",
            Transport::Amqp => "amqp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of the broker's `POST /handle`.
///
/// `action` stays a string so that an unknown action gets the broker's own
/// `"unknown action"` answer rather than a parser message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestPayload {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailPayload>,
}

/// Credentials for `POST /authenticate`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthPayload {
    pub email: String,
    pub password: String,
}

/// Keeps the password out of every `{:?}`, and so out of every log line.
impl std::fmt::Debug for AuthPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPayload")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A log entry to write. `level` only matters for the `amqp` transport,
/// where it picks the routing key (`log.INFO` by default). `id` (24 hex
/// digits, an ObjectId) is the entry's id: a write repeated with the same
/// id stores the entry once. The broker gives every entry one (the caller's
/// own, if it sent one); the logger makes one for a write without.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPayload {
    pub name: String,
    #[serde(default)]
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A mail to send through mail-service's `POST /send`. An empty `from`
/// falls back to the service's configured sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailPayload {
    #[serde(default)]
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub message: String,
}

/// A user as authentication-service returns it: never with the password
/// hash. Times are RFC 3339 in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A successful login, as authentication-service (and the broker) returns
/// it: the user and an access token for the routes that need one
/// (`Authorization: Bearer <access_token>`), valid for `expires_in`
/// seconds; after that the client logs in again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub user: User,
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
}

/// A stored log entry as the logger returns it. `id` is the hex ObjectId;
/// times are RFC 3339 in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: String,
    pub name: String,
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_omits_empty_data() {
        let text = serde_json::to_string(&Envelope::<()>::ok("Hit the broker")).unwrap();
        assert_eq!(text, r#"{"error":false,"message":"Hit the broker"}"#);
        let text = serde_json::to_string(&Envelope::with_data("x", json!({"a": 1}))).unwrap();
        assert_eq!(text, r#"{"error":false,"message":"x","data":{"a":1}}"#);
    }

    #[test]
    fn request_payload_ignores_unknown_fields_and_names_missing_ones() {
        let p: RequestPayload =
            serde_json::from_value(json!({"action": "log", "extra": 1, "transport": "grpc",
                "log": {"name": "event", "data": "d"}}))
            .unwrap();
        assert_eq!(p.transport, Some(Transport::Grpc));
        assert_eq!(p.log.unwrap().name, "event");

        let err =
            serde_json::from_value::<RequestPayload>(json!({"log": {"name": "x"}})).unwrap_err();
        assert!(err.to_string().contains("missing field `action`"), "{err}");
        let err = serde_json::from_value::<RequestPayload>(
            json!({"action": "log", "transport": "pigeon"}),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `pigeon`"),
            "{err}"
        );
    }

    #[test]
    fn auth_payload_debug_hides_the_password() {
        let p = AuthPayload {
            email: "a@b.c".into(),
            password: "verysecret".into(),
        };
        assert!(!format!("{p:?}").contains("verysecret"));
    }
}

#[cfg(test)]
mod page_tests {
    use super::{Check, MAX_PAGE_LIMIT, Page};

    #[test]
    fn a_limit_out_of_range_is_refused_and_the_default_is_ten() {
        assert_eq!(Page::default().check(), Ok(Page { limit: 10, skip: 0 }));
        assert!(
            Page { limit: 0, skip: 0 }
                .check()
                .unwrap_err()
                .contains("limit")
        );
        let over = Page {
            limit: MAX_PAGE_LIMIT + 1,
            skip: 0,
        };
        assert!(over.check().is_err());
        let max = Page {
            limit: MAX_PAGE_LIMIT,
            skip: 3,
        };
        assert_eq!(max.check(), Ok(max));
        assert_eq!(max.query(), "limit=1000&skip=3");
        let deep = Page {
            limit: 10,
            skip: super::MAX_PAGE_SKIP + 1,
        };
        assert!(deep.check().unwrap_err().contains("skip"));
    }
}
