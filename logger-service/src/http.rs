//! The JSON API (docs/contracts.md §4): write, list, read, update and drop log entries.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use proto::http::{Envelope, LogEntry, LogPayload};
use service_kit::http::{ApiError, JsonBody};

use crate::store::{LogStore, MAX_PAGE_SIZE, NewLog, Page, StoreError};

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
    let entry = store
        .insert(NewLog::new(payload.name, payload.data)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Envelope::with_data("logged", entry)),
    ))
}

async fn list_logs(
    State(store): State<LogStore>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Envelope<Vec<LogEntry>>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let page = page(&query)?;
    let entries = store.list(page).await?;
    Ok(Json(Envelope::with_data(
        format!("{} log entries", entries.len()),
        entries,
    )))
}

/// `limit` (1 and up, capped at [`MAX_PAGE_SIZE`]) and `skip` (0 and up).
fn page(query: &HashMap<String, String>) -> Result<Page, ApiError> {
    let mut page = Page::default();
    if let Some(limit) = query.get("limit") {
        page.limit = match limit.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n.min(u64::from(MAX_PAGE_SIZE)) as u32,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 (at most {MAX_PAGE_SIZE} are returned), not {limit:?}"
                )));
            }
        };
    }
    if let Some(skip) = query.get("skip") {
        page.skip = skip.trim().parse().map_err(|_| {
            ApiError::BadRequest(format!("skip must be a whole number from 0, not {skip:?}"))
        })?;
    }
    Ok(page)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn paging_defaults_caps_and_refuses_nonsense() {
        assert_eq!(page(&query(&[])).unwrap(), Page::default());
        assert_eq!(
            page(&query(&[("limit", "5"), ("skip", "7")])).unwrap(),
            Page { limit: 5, skip: 7 }
        );
        assert_eq!(page(&query(&[("limit", "5000")])).unwrap().limit, 1000);
        for bad in [
            ("limit", "0"),
            ("limit", "-1"),
            ("limit", "ten"),
            ("skip", "-2"),
            ("skip", ""),
        ] {
            assert!(page(&query(&[bad])).is_err(), "{bad:?}");
        }
    }
}
