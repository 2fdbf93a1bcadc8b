//! The JSON API (docs/contracts.md §4): write, list, read, update and drop log entries.

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use proto::http::{Envelope, LogEntry, LogPayload, Page};
use service_kit::http::{ApiError, CheckedQuery, JsonBody};
use service_kit::token::{Bearer, TokenKey};

use crate::store::{LogStore, NewLog, StoreError};

type Accepted<T> = (StatusCode, Json<Envelope<T>>);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidArgument(m) => ApiError::BadRequest(m),
            e @ StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            e @ StoreError::Unavailable(_) => {
                ApiError::Unavailable("MongoDB is unavailable".into()).logged(e)
            }
            StoreError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// What the routes share: the store, and the key that the update and drop
/// routes verify access tokens with.
#[derive(Clone)]
struct Api {
    store: LogStore,
    token_key: TokenKey,
}

impl FromRef<Api> for LogStore {
    fn from_ref(api: &Api) -> LogStore {
        api.store.clone()
    }
}

impl FromRef<Api> for TokenKey {
    fn from_ref(api: &Api) -> TokenKey {
        api.token_key.clone()
    }
}

/// Writing and reading are open to the system's services; changing or
/// dropping entries needs an access token ([`Bearer`]).
pub fn router(store: LogStore, token_key: TokenKey) -> Router {
    Router::new()
        .route("/log", post(write_log))
        .route("/logs", get(list_logs).delete(drop_logs))
        .route("/logs/{id}", get(get_log).put(update_log))
        .with_state(Api { store, token_key })
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
    CheckedQuery(page): CheckedQuery<Page>,
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
    _signed_in: Bearer,
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

async fn drop_logs(
    State(store): State<LogStore>,
    _signed_in: Bearer,
) -> Result<Accepted<()>, ApiError> {
    store.drop_all().await?;
    Ok((StatusCode::ACCEPTED, Json(Envelope::ok("logs dropped"))))
}
