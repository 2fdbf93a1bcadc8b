//! `POST /send`.

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use lettre::message::Mailbox;
use proto::http::{Envelope, MailPayload};
use service_kit::http::{ApiError, JsonBody};

use crate::AppState;
use crate::compose::{self, Mail};

/// A mail of at most this many bytes of text is composed on the async
/// worker that received it.
const COMPOSE_INLINE_BYTES: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new().route("/send", post(send)).with_state(state)
}

#[tracing::instrument(skip_all, fields(to = %payload.to))]
async fn send(
    State(state): State<AppState>,
    JsonBody(payload): JsonBody<MailPayload>,
) -> Result<(StatusCode, Json<Envelope<()>>), ApiError> {
    let to = payload.to.trim().to_owned();
    let mail = Mail {
        from: match payload.from.trim() {
            "" => state.default_from.clone(),
            from => parse_mailbox("from", from)?,
        },
        to: parse_mailbox("to", &to)?,
        subject: payload.subject,
        text: payload.message,
    };
    // Composing takes microseconds for a usual mail; a large one (the body
    // may be up to a MiB) is encoded on the blocking pool, off the async
    // workers. Handing every mail to that pool cost two thread switches.
    let message = if mail.text.len() + mail.subject.len() <= COMPOSE_INLINE_BYTES {
        compose::build_message(&mail, &state.domain)?
    } else {
        let domain = state.domain.clone();
        tokio::task::spawn_blocking(move || compose::build_message(&mail, &domain))
            .await
            .context("the message builder panicked")??
    };
    let response = state.mailer.send(message).await.inspect_err(|e| {
        tracing::warn!(error = %e, "mail not sent");
    })?;
    tracing::info!(
        smtp_code = %response.code(),
        "mail sent"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(Envelope::ok(format!("sent to {to}"))),
    ))
}

/// `field`'s address, or a 400 naming the field.
fn parse_mailbox(field: &str, value: &str) -> Result<Mailbox, ApiError> {
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be an email address, not empty"
        )));
    }
    value
        .parse()
        .map_err(|e| ApiError::BadRequest(format!("invalid `{field}` address {value:?}: {e}")))
}
