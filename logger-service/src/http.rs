//! The JSON API (docs/contracts.md §4): write, list, read, update and drop log entries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use proto::http::{Envelope, LogEntry, LogPayload};
use service_kit::http::{ApiError, JsonBody, Paging};

use crate::store::{LogStore, NewLog, StoreError};

type Accepted<T> = (StatusCode, Json<Envelope<T>>);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidArgument(m) => ApiError::BadRequest(m),
            e @ StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            e @ StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            StoreError::Internal(e) => ApiError::Internal(e),
        }
    }
}

pub fn router(store: LogStore) -> Router {
    Router::new()
        .route("/log", post(write_log))
        .route("/logs", get(list_logs).delete(drop_logs))
        .route("/logs/{id}", get(get_log).put(update_log))
        .with_state(store)
}

async fn write_log(
    State(store): State<LogStore>,
    JsonBody(payload): JsonBody<LogPayload>,
) -> Result<Accepted<LogEntry>, ApiError> {
    let entry = NewLog::new(payload.name, payload.data)?.with_id(payload.id.as_deref())?;
    let entry = store.insert(entry).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Envelope::with_data("logged", entry)),
    ))
}

async fn list_logs(
    State(store): State<LogStore>,
    Paging(page): Paging,
) -> Result<Json<Envelope<Vec<LogEntry>>>, ApiError> {
    let entries = store.list(page).await?;
    Ok(Json(Envelope::with_data(
        format!("{} log entries", entries.len()),
        entries,
    )))
}

async fn get_log(
    State(store): State<LogStore>,
    Path(id): Path<String>,
) -> Result<Json<Envelope<LogEntry>>, ApiError> {
    let entry = store.get(&id).await?;
    Ok(Json(Envelope::with_data("log entry", entry)))
}

async fn update_log(
    State(store): State<LogStore>,
    Path(id): Path<String>,
    JsonBody(payload): JsonBody<LogPayload>,
) -> Result<Accepted<LogEntry>, ApiError> {
    let entry = store
        .update(&id, NewLog::new(payload.name, payload.data)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Envelope::with_data("updated", entry)),
    ))
}

async fn drop_logs(State(store): State<LogStore>) -> Result<Accepted<()>, ApiError> {
    store.drop_all().await?;
    Ok((StatusCode::ACCEPTED, Json(Envelope::ok("logs dropped"))))
}
