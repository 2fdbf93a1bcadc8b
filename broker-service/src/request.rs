//! The broker's request, typed: one variant per action, carrying its
//! payload.
//!
//! The body is parsed as [`RequestPayload`], the wire struct, so that serde's
//! messages (malformed JSON, a missing `action`, a field of the wrong type,
//! an unknown transport) stay what they are, and unknown fields are still
//! ignored. [`BrokerRequest::try_from`] then checks the action and takes its
//! payload out, with the broker's own messages for what serde cannot see:
//! an unknown action, or a known one without its payload.

use proto::http::{AuthPayload, LogPayload, MailPayload, RequestPayload, Transport};
use service_kit::http::ApiError;

/// The actions `POST /handle` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Auth,
    Log,
    Mail,
}

impl Action {
    /// The action's name on the wire, which is also its payload's field.
    pub fn name(self) -> &'static str {
        match self {
            Action::Auth => "auth",
            Action::Log => "log",
            Action::Mail => "mail",
        }
    }

    /// Whether the action needs an access token. The token is checked before
    /// the payload (docs/contracts.md §4): without one, a `mail` is a 401
    /// even when its payload is missing too.
    pub fn needs_token(self) -> bool {
        matches!(self, Action::Mail)
    }
}

/// One `POST /handle` request.
#[derive(Debug, Clone, PartialEq)]
pub enum BrokerRequest {
    Auth(AuthPayload),
    /// `transport` is the request's, `rpc` when it named none.
    Log {
        transport: Transport,
        entry: LogPayload,
    },
    Mail(MailPayload),
}

impl BrokerRequest {
    pub fn action(&self) -> Action {
        match self {
            BrokerRequest::Auth(_) => Action::Auth,
            BrokerRequest::Log { .. } => Action::Log,
            BrokerRequest::Mail(_) => Action::Mail,
        }
    }
}

/// Why a parsed body is not a request; each is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `"unknown action"`.
    UnknownAction,
    /// A known action without its payload: ``"missing field `log` for
    /// action log"``.
    MissingPayload(Action),
}

impl Refused {
    /// The action refused, if it is a known one.
    pub fn action(self) -> Option<Action> {
        match self {
            Refused::UnknownAction => None,
            Refused::MissingPayload(action) => Some(action),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::UnknownAction => f.write_str("unknown action"),
            Refused::MissingPayload(action) => {
                let name = action.name();
                write!(f, "missing field `{name}` for action {name}")
            }
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::BadRequest(refused.to_string())
    }
}

impl TryFrom<RequestPayload> for BrokerRequest {
    type Error = Refused;

    /// Moves the action's payload out; the other payloads, and `transport`
    /// for any action but `log`, are dropped unread, as they always were.
    fn try_from(payload: RequestPayload) -> Result<Self, Refused> {
        let missing = Refused::MissingPayload;
        match payload.action.as_str() {
            "auth" => payload
                .auth
                .map(BrokerRequest::Auth)
                .ok_or(missing(Action::Auth)),
            "log" => payload
                .log
                .map(|entry| BrokerRequest::Log {
                    transport: payload.transport.unwrap_or_default(),
                    entry,
                })
                .ok_or(missing(Action::Log)),
            "mail" => payload
                .mail
                .map(BrokerRequest::Mail)
                .ok_or(missing(Action::Mail)),
            _ => Err(Refused::UnknownAction),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The body as the route reads it, then converted.
    fn request(body: serde_json::Value) -> Result<BrokerRequest, Refused> {
        let payload: RequestPayload = serde_json::from_value(body).expect("a well-formed body");
        BrokerRequest::try_from(payload)
    }

    fn refusal(body: serde_json::Value) -> String {
        ApiError::from(request(body).unwrap_err()).to_string()
    }

    #[test]
    fn each_action_carries_its_own_payload() {
        let auth = request(json!({"action": "auth", "transport": "http",
            "auth": {"email": "a@example.com", "password": "p"},
            "log": {"name": "ignored"}}))
        .unwrap();
        assert_eq!(
            auth,
            BrokerRequest::Auth(AuthPayload {
                email: "a@example.com".into(),
                password: "p".into(),
            })
        );
        assert_eq!(auth.action(), Action::Auth);

        let log = request(json!({"action": "log", "transport": "amqp",
            "log": {"name": "event", "data": "d", "level": "ERROR", "id": "0123456789abcdef01234567"},
            "mail": {"to": "ignored@example.com"}}))
        .unwrap();
        assert_eq!(
            log,
            BrokerRequest::Log {
                transport: Transport::Amqp,
                entry: LogPayload {
                    name: "event".into(),
                    data: "d".into(),
                    level: Some(proto::amqp::Level::Error),
                    id: Some("0123456789abcdef01234567".into()),
                },
            }
        );
        assert_eq!(log.action(), Action::Log);

        let mail = request(json!({"action": "mail", "mail": {"to": "you@example.com"}})).unwrap();
        assert_eq!(
            mail,
            BrokerRequest::Mail(MailPayload {
                from: String::new(),
                to: "you@example.com".into(),
                subject: String::new(),
                message: String::new(),
            })
        );
        assert_eq!(mail.action(), Action::Mail);
    }

    #[test]
    fn a_log_without_a_transport_goes_over_rpc() {
        for (transport, expected) in [
            (None, Transport::Rpc),
            (Some("rpc"), Transport::Rpc),
            (Some("http"), Transport::Http),
            (Some("grpc"), Transport::Grpc),
            (Some("amqp"), Transport::Amqp),
        ] {
            let mut body = json!({"action": "log", "log": {"name": "x"}});
            if let Some(transport) = transport {
                body["transport"] = json!(transport);
            }
            let Ok(BrokerRequest::Log { transport, .. }) = request(body) else {
                panic!("a log request");
            };
            assert_eq!(transport, expected);
        }
    }

    #[test]
    fn a_known_action_without_its_payload_names_the_missing_field() {
        for (action, expected) in [
            (Action::Auth, "missing field `auth` for action auth"),
            (Action::Log, "missing field `log` for action log"),
            (Action::Mail, "missing field `mail` for action mail"),
        ] {
            // Every payload but the action's own: another's does not stand
            // in for it, and an explicit null is no payload either.
            let mut body = json!({"action": action.name(), "transport": "http",
                "auth": {"email": "a@example.com", "password": "p"},
                "log": {"name": "x"}, "mail": {"to": "you@example.com"}});
            body.as_object_mut().unwrap().remove(action.name());
            assert_eq!(request(body.clone()), Err(Refused::MissingPayload(action)));
            assert_eq!(refusal(body.clone()), expected);
            body[action.name()] = json!(null);
            assert_eq!(refusal(body), expected);
        }
    }

    #[test]
    fn an_unknown_action_is_refused_whatever_it_carries() {
        for action in ["dance", "", "Log", "LOG", " log", "log ", "logs"] {
            let body = json!({"action": action, "transport": "grpc", "log": {"name": "x"},
                "auth": {"email": "a@example.com", "password": "p"}});
            assert_eq!(
                request(body.clone()),
                Err(Refused::UnknownAction),
                "{action:?}"
            );
            assert_eq!(refusal(body), "unknown action");
        }
    }

    #[test]
    fn the_refused_status_is_400_and_only_mail_needs_a_token_first() {
        for refused in [
            Refused::UnknownAction,
            Refused::MissingPayload(Action::Auth),
            Refused::MissingPayload(Action::Log),
            Refused::MissingPayload(Action::Mail),
        ] {
            assert_eq!(
                ApiError::from(refused).status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{refused}"
            );
        }
        assert_eq!(Refused::UnknownAction.action(), None);
        assert_eq!(
            Refused::MissingPayload(Action::Mail).action(),
            Some(Action::Mail)
        );
        let needing: Vec<_> = [Action::Auth, Action::Log, Action::Mail]
            .into_iter()
            .filter(|a| a.needs_token())
            .collect();
        assert_eq!(needing, [Action::Mail]);
    }
}
