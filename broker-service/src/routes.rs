//! The broker's HTTP routes.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use log_queue::PublishError;
use proto::amqp::LogEvent;
use proto::http::{
    AuthPayload, Envelope, LogPayload, MailPayload, Page, RequestPayload, Transport,
};
use serde_json::Value;
use service_kit::http::{AnyJsonBody, ApiError, CheckedQuery};
use service_kit::limit::client_ip;
use service_kit::metrics::Outcome;
use service_kit::token::Bearer;
use service_kit::upstream::Reply;
use service_kit::{request_id, telemetry};
use tracing::Instrument;

use crate::AppState;
use crate::request::{Action, BrokerRequest, Refused};

type Answer = Result<(StatusCode, Json<Envelope<Value>>), ApiError>;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(hit))
        .route("/handle", post(handle))
        .route("/log-grpc", post(log_grpc))
        .route("/logs", get(recent_logs))
        .with_state(state)
}

async fn hit() -> Json<Envelope<()>> {
    Json(Envelope::ok("Hit the broker"))
}

/// Dispatches one action, typed ([`BrokerRequest`]): an unknown action, or
/// a known one without its payload, is a 400 ([`Refused`]), except that a
/// `mail` without a valid token is a 401 first, whatever its payload.
async fn handle(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    AnyJsonBody(payload): AnyJsonBody<RequestPayload>,
) -> Answer {
    let client = || client_ip(peer, &headers, state.trust_forwarded_for);
    let request = BrokerRequest::try_from(payload);
    // Who may send: a signed-in user, checked before the payload.
    let action = match &request {
        Ok(request) => Some(request.action()),
        Err(refused) => refused.action(),
    };
    if action.is_some_and(Action::needs_token) {
        state.token_key.require(&headers)?;
    }
    match request? {
        BrokerRequest::Auth(credentials) => {
            state.login_limit.check(client())?;
            authenticate(&state, credentials).await
        }
        BrokerRequest::Log { transport, entry } => log(&state, transport, entry).await,
        BrokerRequest::Mail(mail) => {
            // The token was checked above; then the client's limit.
            state.mail_limit.check(client())?;
            send_mail(&state, mail).await
        }
    }
}

/// The gRPC path under its own route, for clients of the original course:
/// the same body as a `log` action, whose `action` (which must be there)
/// and `transport` are not read.
async fn log_grpc(
    State(state): State<AppState>,
    AnyJsonBody(payload): AnyJsonBody<RequestPayload>,
) -> Answer {
    let entry = payload.log.ok_or(Refused::MissingPayload(Action::Log))?;
    log(&state, Transport::Grpc, entry).await
}

fn accepted(message: String, data: Option<Value>) -> Answer {
    Ok((
        StatusCode::ACCEPTED,
        Json(Envelope {
            error: false,
            message,
            data,
        }),
    ))
}

async fn authenticate(state: &AppState, credentials: AuthPayload) -> Answer {
    let reply = state.auth.post("/authenticate", &credentials).await?;
    let reply = relay_failure(state.auth.name(), reply)?;
    accepted("Authenticated!".into(), reply.envelope.data)
}

async fn send_mail(state: &AppState, mail: MailPayload) -> Answer {
    let reply = state.mail.post("/send", &mail).await?;
    relay_failure(state.mail.name(), reply)?;
    accepted(format!("Message sent to {}", mail.to), None)
}

async fn log(state: &AppState, transport: Transport, mut entry: LogPayload) -> Answer {
    validate(&entry)?;
    // The entry's id, given here once so that no retry on any transport
    // (tarpc's, the listener's redelivery, a caller's own) stores it twice.
    let id = entry
        .id
        .get_or_insert_with(|| bson::oid::ObjectId::new().to_hex())
        .clone();
    let message = match transport {
        Transport::Rpc => state.rpc_logger.log(&entry.name, &entry.data, &id).await?,
        Transport::Grpc => {
            state.grpc_logger.log(&entry.name, &entry.data, &id).await?;
            format!("Processed payload via gRPC: {}", entry.name)
        }
        Transport::Http => {
            // The entry's id makes a second send safe.
            let reply = state.logger.post_idempotent("/log", &entry).await?;
            relay_failure(state.logger.name(), reply)?;
            format!("Processed payload via HTTP: {}", entry.name)
        }
        Transport::Amqp => {
            let event = LogEvent {
                name: entry.name,
                data: entry.data,
            };
            let level = entry.level.unwrap_or_default();
            // A producer span, as OpenTelemetry's messaging conventions
            // name it: "<operation> <destination>".
            let span = service_kit::trace_span!(
                "publish",
                otel.name = format_args!("publish {}", proto::amqp::EXCHANGE),
                otel.kind = "producer",
                messaging.system = "rabbitmq",
                messaging.destination.name = proto::amqp::EXCHANGE,
                messaging.rabbitmq.destination.routing_key = level.routing_key(),
                otel.status_code = tracing::field::Empty,
            );
            let request_id = request_id::current();
            let traceparent = telemetry::traceparent(&span);
            let headers: Vec<(&str, &str)> = [
                request_id.as_deref().map(|v| (request_id::HEADER, v)),
                traceparent.as_deref().map(|v| (telemetry::TRACEPARENT, v)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let publish = state.publisher.publish(level, &event, &id, &headers);
            state
                .amqp_calls
                .time(publish.instrument(span.clone()), |result| match result {
                    Ok(()) => Outcome::Ok,
                    Err(_) => {
                        span.record("otel.status_code", "ERROR");
                        Outcome::ServerError
                    }
                })
                .await
                .map_err(publish_failure)?;
            "logged via RabbitMQ".to_owned()
        }
    };
    accepted(message, None)
}

/// A publish that RabbitMQ did not confirm, as the broker answers it:
/// unreachable, unroutable or refused (the queue is full) 503, too slow 504.
fn publish_failure(e: PublishError) -> ApiError {
    match e {
        PublishError::Unreachable(_) => {
            ApiError::Unavailable("RabbitMQ is unreachable".into()).logged(e)
        }
        PublishError::Unroutable(_) | PublishError::Refused => ApiError::Unavailable(e.to_string()),
        PublishError::Timeout(_) => {
            ApiError::Timeout("RabbitMQ did not confirm the event in time".into()).logged(e)
        }
        PublishError::Internal(_) => ApiError::Internal(anyhow::Error::new(e)),
    }
}

/// The logger's bounds, checked here too so a bad entry is refused the same
/// way on every transport, before anything is sent.
fn validate(entry: &LogPayload) -> Result<(), ApiError> {
    proto::check_log_entry(&entry.name, &entry.data).map_err(ApiError::BadRequest)?;
    match &entry.id {
        Some(id) => proto::check_entry_id(id).map_err(ApiError::BadRequest),
        None => Ok(()),
    }
}

/// The newest entries, for a signed-in user (the test page's panel):
/// `GET /logs?limit=N&skip=M`, under
/// the logger's own paging rule ([`CheckedQuery`]), checked before it is forwarded.
async fn recent_logs(
    State(state): State<AppState>,
    _signed_in: Bearer,
    CheckedQuery(page): CheckedQuery<Page>,
) -> Answer {
    let reply = state.logger.get(&format!("/logs?{}", page.query())).await?;
    let reply = relay_failure(state.logger.name(), reply)?;
    Ok((
        StatusCode::OK,
        Json(Envelope {
            error: false,
            message: "logs".into(),
            data: reply.envelope.data,
        }),
    ))
}

/// Passes a service's success through; turns its failure into the broker's:
/// the caller's own mistakes (400, 401, 404, 429) keep their status, anything
/// else is the dependency's failure (502), whose own message goes to the
/// log, not to the client.
fn relay_failure(service: &str, reply: Reply) -> Result<Reply, ApiError> {
    let message = reply.envelope.message.clone();
    match reply.status {
        s if s.is_success() => Ok(reply),
        StatusCode::BAD_REQUEST => Err(ApiError::BadRequest(message)),
        StatusCode::UNAUTHORIZED => Err(ApiError::Unauthorized(message)),
        StatusCode::NOT_FOUND => Err(ApiError::NotFound(message)),
        StatusCode::TOO_MANY_REQUESTS => Err(ApiError::TooManyRequests {
            message,
            retry_after: Duration::from_secs(reply.retry_after.unwrap_or(1)),
        }),
        status => Err(ApiError::BadGateway(format!("{service} failed ({status})")).logged(message)),
    }
}
