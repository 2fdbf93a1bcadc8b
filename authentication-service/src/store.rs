//! The `users` table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use proto::http::User;
use resilience::Backoff;
use service_kit::config::Url;
use service_kit::health::ReadinessCheck;
use service_kit::metrics::{Metrics, Outcome, Reading, Recorder};
use service_kit::shutdown::CancellationToken;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tracing::Instrument;

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

/// The trial user of the README and the test page.
pub const TRIAL_EMAIL: &str = "admin@example.com";
/// Its password, documented and public: the user exists only where
/// `SEED_ADMIN=true` (docs/security.md).
const TRIAL_PASSWORD: &str = "verysecret";

#[derive(Clone)]
pub struct UserStore {
    pool: PgPool,
    /// `SEED_ADMIN`: whether the trial user should exist.
    seed_admin: bool,
    /// Set once the migrations are applied; until then the service answers
    /// 503 and is not ready.
    migrated: Arc<AtomicBool>,
    /// The user look-ups, counted as calls to PostgreSQL.
    queries: Option<Recorder>,
}

impl UserStore {
    /// A lazily connecting pool: the service starts, and reports itself not
    /// ready, while PostgreSQL is down.
    pub fn connect(url: &Url, seed_admin: bool) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url.as_str())
            .context("invalid DATABASE_URL")?;
        Ok(Self {
            pool,
            seed_admin,
            migrated: Arc::default(),
            queries: None,
        })
    }

    /// Counts each look-up in `metrics`, and reports the pool's open and
    /// idle connections at each scrape.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.queries = Some(metrics.calls_to("postgresql", "postgresql"));
        for state in ["open", "idle"] {
            let pool = self.pool.clone();
            metrics.register_reading(
                "dependency_pool_connections",
                "Connections in a client's pool, open and idle.",
                Reading::Gauge,
                &[("dependency", "postgresql"), ("state", state)],
                move || {
                    i64::from(if state == "open" {
                        pool.size()
                    } else {
                        u32::try_from(pool.num_idle()).unwrap_or(u32::MAX)
                    })
                },
            );
        }
        self
    }

    /// Runs the migrations, retrying with backoff for as long as PostgreSQL
    /// is down (the service meanwhile serves, answering 503), until they are
    /// applied or `shutdown` is cancelled. Concurrent replicas serialise on
    /// sqlx's lock.
    pub async fn keep_migrating(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = self.migrate() => attempt,
            };
            let Err(e) = attempt else {
                self.migrated.store(true, Ordering::Release);
                tracing::info!("users database migrated");
                return;
            };
            let wait = backoff.next_delay();
            tracing::warn!(
                error = format!("{e:#}"),
                retry_in_ms = wait.as_millis() as u64,
                "migrations failed; retrying"
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The migrations, then the trial user as configured: added when
    /// `SEED_ADMIN` is on and it is missing; removed when it is off and the
    /// user still has the trial password (a user whose password was changed
    /// is someone's real account, and stays). The seed migration adds it to
    /// a new database either way, so it is settled here before the service
    /// is ready.
    async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password FROM users WHERE lower(email) = $1")
                .bind(TRIAL_EMAIL)
                .fetch_optional(&self.pool)
                .await?;
        match (self.seed_admin, hash) {
            (true, None) => {
                let hash = tokio::task::spawn_blocking(|| {
                    bcrypt::hash(TRIAL_PASSWORD, crate::passwords::BCRYPT_COST)
                })
                .await??;
                sqlx::query(
                    "INSERT INTO users (email, first_name, last_name, password, user_active) \
                     VALUES ($1, 'Admin', 'User', $2, TRUE) ON CONFLICT ((lower(email))) DO NOTHING",
                )
                .bind(TRIAL_EMAIL)
                .bind(hash)
                .execute(&self.pool)
                .await?;
                tracing::info!(email = TRIAL_EMAIL, "added the trial user (SEED_ADMIN)");
            }
            (false, Some(hash)) => {
                let trial =
                    tokio::task::spawn_blocking(move || bcrypt::verify(TRIAL_PASSWORD, &hash))
                        .await?
                        .unwrap_or(false);
                if trial {
                    sqlx::query("DELETE FROM users WHERE lower(email) = $1")
                        .bind(TRIAL_EMAIL)
                        .execute(&self.pool)
                        .await?;
                    tracing::info!(
                        email = TRIAL_EMAIL,
                        "removed the trial user (SEED_ADMIN is off)"
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// The user with this email, compared case-insensitively.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        if !self.is_migrated() {
            return Err(StoreError::NotMigrated);
        }
        let span = service_kit::trace_span!(
            "query",
            otel.name = "SELECT users",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.collection.name = "users",
            db.operation.name = "SELECT",
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let found = sqlx::query_as::<_, UserRow>(
            "SELECT id, email, first_name, last_name, password, user_active, created_at, updated_at \
             FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .instrument(span.clone())
        .await;
        let outcome = if found.is_ok() {
            Outcome::Ok
        } else {
            span.record("otel.status_code", "ERROR");
            Outcome::ServerError
        };
        if let Some(queries) = &self.queries {
            queries.record(outcome, started.elapsed());
        }
        found.map_err(database_error)
    }
}

/// Why a user could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The migrations are not applied yet (PostgreSQL has been down since
    /// the start).
    #[error("the user database is not ready yet")]
    NotMigrated,
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
            if !self.is_migrated() {
                return Err("migrations not applied yet".to_owned());
            }
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}
