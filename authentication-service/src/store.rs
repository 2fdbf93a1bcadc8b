//! The `users` table.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use proto::http::User;
use resilience::Backoff;
use service_kit::config::Url;
use service_kit::health::ReadinessCheck;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A row of `users`, hash included: it never leaves this service.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: i32,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub user_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRow {
    /// The user as the API shows it, without the hash.
    pub fn to_user(&self) -> User {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        User {
            id: self.id,
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            active: self.user_active,
            created_at: time(&self.created_at),
            updated_at: time(&self.updated_at),
        }
    }
}

#[derive(Clone)]
pub struct UserStore {
    pool: PgPool,
}

impl UserStore {
    /// A lazily connecting pool: the service starts, and reports itself not
    /// ready, while PostgreSQL is down.
    pub fn connect(url: &Url) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url.as_str())
            .context("invalid DATABASE_URL")?;
        Ok(Self { pool })
    }

    /// Runs the migrations, retrying while the database is unreachable for
    /// at most `limit`. Concurrent replicas serialise on sqlx's lock.
    pub async fn migrate(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        loop {
            match sqlx::migrate!("./migrations").run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "migrations failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e).context("cannot migrate the users database"),
            }
        }
    }

    /// The user with this email, compared case-insensitively.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, first_name, last_name, password, user_active, created_at, updated_at \
             FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)
    }
}

/// Why a user could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or every pooled connection is busy.
    #[error("the user database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug or a schema that does not match.
    #[error("the user query failed")]
    Query(#[source] sqlx::Error),
}

fn database_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            tracing::warn!(error = %error, "database unavailable");
            StoreError::Unavailable(error)
        }
        other => StoreError::Query(other),
    }
}

impl ReadinessCheck for UserStore {
    fn name(&self) -> &str {
        "postgres"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}
