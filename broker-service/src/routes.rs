//! The broker's HTTP routes.

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use proto::http::{Envelope, RequestPayload};
use service_kit::http::{ApiError, JsonBody};

pub fn router() -> Router {
    Router::new()
        .route("/", post(hit))
        .route("/handle", post(handle))
}

async fn hit() -> Json<Envelope<()>> {
    Json(Envelope::ok("Hit the broker"))
}

/// Dispatches one action. A known action without its payload is a 400 that
/// names the missing field.
async fn handle(
    JsonBody(payload): JsonBody<RequestPayload>,
) -> Result<(StatusCode, Json<Envelope<serde_json::Value>>), ApiError> {
    match payload.action.as_str() {
        "auth" => {
            require(payload.auth.as_ref(), "auth")?;
            Err(not_served("auth"))
        }
        "log" => {
            require(payload.log.as_ref(), "log")?;
            Err(not_served("log"))
        }
        "mail" => {
            require(payload.mail.as_ref(), "mail")?;
            Err(not_served("mail"))
        }
        _ => Err(ApiError::BadRequest("unknown action".into())),
    }
}

fn require<T>(payload: Option<&T>, field: &str) -> Result<(), ApiError> {
    payload
        .map(drop)
        .ok_or_else(|| ApiError::BadRequest(format!("missing field `{field}` for action {field}")))
}

/// The actions are wired to their services one by one; until then the
/// broker says so plainly rather than pretending.
fn not_served(action: &str) -> ApiError {
    ApiError::NotImplemented(format!("action {action} is not served by this build yet"))
}
