//! `POST /authenticate`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use proto::http::{AuthPayload, Envelope, Login};
use service_kit::http::{ApiError, JsonBody};

use crate::AppState;
use crate::passwords::{MAX_PASSWORD_BYTES, PasswordError};
use crate::store::StoreError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/authenticate", post(authenticate))
        .with_state(state)
}

/// The one answer for an unknown user, a wrong password and an inactive user.
fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid credentials".into())
}

/// The domain errors, as the handler answers them: an unreachable database
/// is a 503; anything else a 500 whose cause is logged, not shown.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::NotMigrated => {
                ApiError::Unavailable(e.to_string())
            }
            StoreError::Query(_) => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => ApiError::Busy(e.to_string()),
            PasswordError::TaskFailed(_) => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

#[tracing::instrument(skip_all, fields(email = %credentials.email))]
async fn authenticate(
    State(state): State<AppState>,
    JsonBody(credentials): JsonBody<AuthPayload>,
) -> Result<(StatusCode, Json<Envelope<Login>>), ApiError> {
    if credentials.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::BadRequest(format!(
            "password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    // A locked address is refused before any lookup or bcrypt work, and
    // the attempt neither counts nor extends the lock.
    if let Some(retry_after) = state.lockout.locked_for(&credentials.email) {
        return Err(ApiError::TooManyRequests {
            message: "too many failed logins for this account; try again later".into(),
            retry_after,
        });
    }
    let user = state.users.find_by_email(&credentials.email).await?;
    // The hash is checked even for an unknown or inactive user, so every
    // failure takes as long as a wrong password.
    let matches = state
        .passwords
        .verify(
            &credentials.password,
            user.as_ref().map(|u| u.password.as_str()),
        )
        .await?;
    match user {
        Some(user) if matches && user.user_active => {
            state.lockout.succeeded(&credentials.email);
            state
                .activity
                .record(format!("Logged in user {}", user.email));
            let access_token =
                state
                    .token_key
                    .issue(i64::from(user.id), &user.email, state.token_ttl);
            Ok((
                StatusCode::ACCEPTED,
                Json(Envelope::with_data(
                    format!("Logged in user {}", user.email),
                    Login {
                        user: user.to_user(),
                        access_token,
                        token_type: "Bearer".into(),
                        expires_in: state.token_ttl.as_secs(),
                    },
                )),
            ))
        }
        _ => {
            state.lockout.failed(&credentials.email);
            state
                .activity
                .record(format!("Failed login for {}", credentials.email));
            Err(invalid_credentials())
        }
    }
}
