//! The MongoDB store behind all three transports: collection `logs` with
//! documents `{_id, name, data, created_at, updated_at}`, and beside it the
//! creation times of the newest entries ([`crate::newest`]), which bound
//! the listing (see [`LogStore::list`]).
//!
//! Entries can only be written as a [`NewLog`], whose constructor is the one
//! place the bounds of docs/contracts.md §4 are checked. Every operation is bounded by
//! [`OPERATION_TIMEOUT`], so a MongoDB outage is a prompt
//! [`StoreError::Unavailable`], never a hang.

use std::time::Duration;

use anyhow::Context as _;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::bson::{DateTime, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};
use proto::http::{LogEntry, MAX_PAGE_LIMIT, MAX_PAGE_SKIP, Page};
use resilience::Backoff;
use service_kit::config::Url;
use service_kit::health::ReadinessCheck;
use service_kit::metrics::Metrics;
use service_kit::shutdown::CancellationToken;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::newest::{self, NewestTimes};

mod batch;
mod entry;

use batch::{BatchMetrics, MAX_BATCH, PendingWrite, Stored, write_batches};
pub use entry::NewLog;
use entry::{LogDocument, parse_id};

/// The collection every entry lives in.
pub const COLLECTION: &str = "logs";
/// How long the driver looks for a usable server (and a TCP connect may
/// take) before an operation fails.
pub const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a pooled MongoDB connection may sit idle before the driver
/// drops it rather than reuse it, unless `MONGO_URL` says otherwise
/// (`maxIdleTimeMS`). Below what closes idle connections on the way or at
/// the server (the MongoDB stand-in closes one idle for 300 s, many NATs
/// and load balancers after 4 to 6 minutes): a write sent on a connection
/// closed meanwhile fails, and a standalone server offers no retryable
/// writes to cover it.
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(60);
/// The longest any one store operation may take, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest MongoDB itself may spend on one listing (`maxTimeMS`):
/// past it the server stops the query, rather than working on after the
/// logger has given up.
pub const LIST_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's input breaks a rule (a bound, a malformed id).
    #[error("{0}")]
    InvalidArgument(String),
    /// No entry has this id.
    #[error("no log entry with id {0}")]
    NotFound(String),
    /// MongoDB cannot be reached or did not answer in time.
    #[error("MongoDB is unavailable: {0}")]
    Unavailable(String),
    /// MongoDB answered with an error, or an answer could not be read.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<mongodb::error::Error> for StoreError {
    fn from(e: mongodb::error::Error) -> Self {
        match *e.kind {
            ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::Shutdown => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(anyhow::Error::new(e).context("MongoDB operation failed")),
        }
    }
}

/// The log collection, shared by every transport. Cheap to clone: clones
/// share one MongoDB client and its connection pool.
#[derive(Clone)]
pub struct LogStore {
    client: Client,
    logs: Collection<LogDocument>,
    newest: NewestTimes,
    writes: mpsc::Sender<PendingWrite>,
}

/// The driver's options: `url`'s, with this service's name, its timeouts
/// and, where the URL sets none, [`MAX_IDLE_TIME`].
async fn client_options(url: &Url) -> anyhow::Result<ClientOptions> {
    let mut options = ClientOptions::parse(url.as_str())
        .await
        .context("MONGO_URL is not a usable MongoDB connection string")?;
    options.app_name = Some("logger-service".to_owned());
    options.server_selection_timeout = Some(SERVER_SELECTION_TIMEOUT);
    options.connect_timeout = Some(SERVER_SELECTION_TIMEOUT);
    options.max_idle_time.get_or_insert(MAX_IDLE_TIME);
    Ok(options)
}

impl LogStore {
    /// Sets up the client; nothing is dialed until the first operation, so
    /// this succeeds while MongoDB is down. Its writes are counted in
    /// `metrics`.
    pub async fn connect(url: &Url, database: &str, metrics: &Metrics) -> anyhow::Result<Self> {
        let options = client_options(url).await?;
        let client = Client::with_options(options).context("cannot create the MongoDB client")?;
        let logs = client.database(database).collection(COLLECTION);
        let newest = NewestTimes::new(client.database(database).collection(newest::COLLECTION));
        let (writes, pending) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(
            logs.clone(),
            newest.clone(),
            pending,
            BatchMetrics::new(metrics),
        ));
        Ok(Self {
            client,
            logs,
            newest,
            writes,
        })
    }

    /// Stores a new entry and returns it as stored. An entry whose id is
    /// already there is not stored again: the one there is returned.
    pub async fn insert(&self, entry: NewLog) -> Result<LogEntry, StoreError> {
        let now = DateTime::now();
        let doc = LogDocument {
            // A new ObjectId when the caller gave none.
            id: entry.id.unwrap_or_default(),
            name: entry.name,
            data: entry.data,
            created_at: now,
            updated_at: now,
        };
        let (stored, outcome) = oneshot::channel();
        let entry = LogEntry::from(doc.clone());
        let queued = PendingWrite { doc, stored };
        // The write as a client span: the wait for a writer and the
        // insert_many it went out in (with whatever entries shared it).
        let span = service_kit::trace_span!(
            "insert",
            otel.name = "insert logs",
            otel.kind = "client",
            db.system.name = "mongodb",
            db.collection.name = COLLECTION,
            db.operation.name = "insert",
            otel.status_code = tracing::field::Empty,
        );
        let stored = async {
            self.writes
                .send(queued)
                .await
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
            outcome
                .await
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))
        }
        .instrument(span.clone())
        .await;
        if matches!(stored, Err(_) | Ok(Err(_))) {
            span.record("otel.status_code", "ERROR");
        }
        match stored? {
            Ok(Stored::New) => Ok(entry),
            Ok(Stored::AlreadyThere) => {
                tracing::debug!(id = entry.id, "already stored");
                self.get(&entry.id).await
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Entries newest first (ties by insertion order, newest first).
    ///
    /// A query over the whole collection costs its whole size on the
    /// MongoDB stand-in, whatever the index (docs/design.md, "Listing at
    /// size"), so a page is read from a range `created_at >= since`, which
    /// costs only the entries in it. `since` starts where the page's last
    /// entry was created by the newest times known ([`crate::newest`]), and moves back
    /// tenfold (in distance from now) while the range holds fewer entries
    /// than the page ends at; past [`WIDEST_WINDOW`] the range is dropped.
    /// A range holding `skip + limit` entries holds the page exactly, as
    /// every entry outside it is older.
    pub async fn list(&self, page: Page) -> Result<Vec<LogEntry>, StoreError> {
        let limit = page.limit.clamp(1, MAX_PAGE_LIMIT);
        let skip = page.skip.min(MAX_PAGE_SKIP);
        bounded(async {
            let now = DateTime::now();
            let mut since = Some(
                self.newest
                    .since(skip + u64::from(limit))
                    .await
                    .unwrap_or_else(|| back_from(now, Duration::from_secs(1))),
            );
            loop {
                let filter = match since {
                    Some(since) => doc! {"created_at": {"$gte": since}},
                    None => doc! {},
                };
                let docs: Vec<LogDocument> = self
                    .logs
                    .find(filter)
                    .sort(doc! {"created_at": -1, "_id": -1})
                    .skip(skip)
                    .limit(i64::from(limit))
                    .max_time(LIST_TIME_LIMIT)
                    .await?
                    .try_collect()
                    .await?;
                let Some(from) = since.filter(|_| docs.len() < limit as usize) else {
                    return Ok(docs.into_iter().map(LogEntry::from).collect());
                };
                let distance = Duration::from_millis(
                    (now.timestamp_millis() - from.timestamp_millis()).max(1) as u64,
                );
                since = (distance < WIDEST_WINDOW).then(|| back_from(now, distance * 10));
            }
        })
        .await
    }

    /// One entry by its hex id.
    pub async fn get(&self, id: &str) -> Result<LogEntry, StoreError> {
        let oid = parse_id(id)?;
        bounded(self.logs.find_one(doc! {"_id": oid}))
            .await?
            .map(LogEntry::from)
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }

    /// Replaces an entry's name and data and sets `updated_at`; `created_at`
    /// stays. Returns the entry as updated.
    pub async fn update(&self, id: &str, entry: NewLog) -> Result<LogEntry, StoreError> {
        let oid = parse_id(id)?;
        let set = doc! {"$set": {
            "name": entry.name,
            "data": entry.data,
            "updated_at": DateTime::now(),
        }};
        bounded(
            self.logs
                .find_one_and_update(doc! {"_id": oid}, set)
                .return_document(ReturnDocument::After),
        )
        .await?
        .map(LogEntry::from)
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }

    /// Drops the whole collection, then puts its index back so the next
    /// entries are indexed too.
    pub async fn drop_all(&self) -> Result<(), StoreError> {
        bounded(self.logs.drop()).await?;
        self.newest.forget().await?;
        tracing::info!("log collection dropped");
        if let Err(e) = self.ensure_indexes().await {
            tracing::warn!(error = %e, "cannot re-create the listing index after the drop");
        }
        Ok(())
    }

    /// Creates the index that serves the listing's exact sort, newest
    /// first with ties by id (a no-op if it exists).
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let index = IndexModel::builder()
            .keys(doc! {"created_at": -1, "_id": -1})
            .build();
        bounded(self.logs.create_index(index)).await?;
        Ok(())
    }

    /// Adds this process's newest creation times to the shared document
    /// until `shutdown` ([`NewestTimes::keep_flushing`]).
    pub async fn keep_sharing_newest(self, shutdown: CancellationToken) {
        self.newest.keep_flushing(shutdown).await;
    }

    /// Retries [`ensure_indexes`](Self::ensure_indexes) with a growing delay
    /// until it succeeds or `shutdown` is cancelled, so a MongoDB that is
    /// down at start does not stop the service from starting.
    pub async fn keep_ensuring_indexes(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = self.ensure_indexes() => attempt,
            };
            let Err(e) = attempt else {
                tracing::info!("listing index (created_at, _id) in place");
                return;
            };
            let delay = backoff.next_delay();
            tracing::warn!(
                error = %e,
                retry_in_ms = delay.as_millis() as u64,
                "cannot create the listing index yet"
            );
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// A real round trip to the server (`ping`), not just a TCP connect.
    pub async fn ping(&self) -> Result<(), StoreError> {
        bounded(self.client.database("admin").run_command(doc! {"ping": 1})).await?;
        Ok(())
    }
}

/// Cuts off an operation after [`OPERATION_TIMEOUT`].
pub(crate) async fn bounded<T>(
    operation: impl IntoFuture<Output = mongodb::error::Result<T>>,
) -> Result<T, StoreError> {
    within_limit(operation).await?.map_err(StoreError::from)
}

/// Past this distance back from now, a listing stops bounding its range.
const WIDEST_WINDOW: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `distance` before `time`, or the earliest time there is.
fn back_from(time: DateTime, distance: Duration) -> DateTime {
    let millis = i64::try_from(distance.as_millis()).unwrap_or(i64::MAX);
    DateTime::from_millis(time.timestamp_millis().saturating_sub(millis))
}

/// The operation's own result, or [`StoreError::Unavailable`] when it took
/// longer than [`OPERATION_TIMEOUT`].
async fn within_limit<T>(
    operation: impl IntoFuture<Output = mongodb::error::Result<T>>,
) -> Result<mongodb::error::Result<T>, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, operation)
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "no answer within {} ms",
                OPERATION_TIMEOUT.as_millis()
            ))
        })
}

/// `/readyz`: ready while MongoDB answers a `ping`.
pub struct MongoCheck(pub LogStore);

impl ReadinessCheck for MongoCheck {
    fn name(&self) -> &str {
        "mongodb"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_connections_are_dropped_after_a_minute_unless_the_url_says() {
        let plain = Url::parse("mongodb://127.0.0.1:27017").unwrap();
        let plain = client_options(&plain).await.unwrap();
        assert_eq!(plain.max_idle_time, Some(MAX_IDLE_TIME));
        assert_eq!(plain.app_name.as_deref(), Some("logger-service"));
        let set = Url::parse("mongodb://127.0.0.1:27017/?maxIdleTimeMS=700").unwrap();
        let set = client_options(&set).await.unwrap();
        assert_eq!(set.max_idle_time, Some(Duration::from_millis(700)));
    }
}
