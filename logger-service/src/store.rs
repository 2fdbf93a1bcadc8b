//! The MongoDB store behind all three transports: collection `logs` with
//! documents `{_id, name, data, created_at, updated_at}`, and beside it the
//! creation times of the newest entries ([`crate::newest`]), which bound
//! the listing (see [`LogStore::list`]).
//!
//! Entries can only be written as a [`NewLog`], whose constructor is the one
//! place the bounds of docs/contracts.md §4 are checked. Every operation is bounded by
//! [`OPERATION_TIMEOUT`], so a MongoDB outage is a prompt
//! [`StoreError::Unavailable`], never a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{DateTime, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::results::InsertManyResult;
use mongodb::{Client, Collection, IndexModel};
use proto::http::{LogEntry, MAX_PAGE_LIMIT, MAX_PAGE_SKIP, Page};
use resilience::Backoff;
use serde::{Deserialize, Serialize};
use service_kit::config::Url;
use service_kit::health::ReadinessCheck;
use service_kit::metrics::prometheus_client::metrics::histogram::Histogram;
use service_kit::metrics::{Metrics, Outcome, Recorder};
use service_kit::shutdown::CancellationToken;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::newest::{self, NewestTimes};

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

/// A log entry that passed validation, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLog {
    id: Option<ObjectId>,
    name: String,
    data: String,
}

impl NewLog {
    /// `name` must be non-blank and at most [`proto::MAX_LOG_NAME_BYTES`] bytes;
    /// `data` at most [`proto::MAX_LOG_DATA_BYTES`] bytes (it may be empty). Both
    /// are stored as given.
    pub fn new(name: String, data: String) -> Result<Self, StoreError> {
        proto::check_log_entry(&name, &data).map_err(StoreError::InvalidArgument)?;
        Ok(Self {
            id: None,
            name,
            data,
        })
    }

    /// The entry's id as the caller gave it (24 hex digits); none or empty:
    /// the store makes one. An entry written twice with the same id is
    /// stored once.
    pub fn with_id(mut self, id: Option<&str>) -> Result<Self, StoreError> {
        self.id = match id {
            None | Some("") => None,
            Some(id) => Some(parse_id(id)?),
        };
        Ok(self)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An entry as stored in MongoDB.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogDocument {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    #[serde(default)]
    data: String,
    created_at: DateTime,
    updated_at: DateTime,
}

impl From<LogDocument> for LogEntry {
    fn from(doc: LogDocument) -> Self {
        LogEntry {
            id: doc.id.to_hex(),
            name: doc.name,
            data: doc.data,
            created_at: rfc3339(doc.created_at),
            updated_at: rfc3339(doc.updated_at),
        }
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.123Z`.
fn rfc3339(time: DateTime) -> String {
    chrono::DateTime::<Utc>::from_timestamp_millis(time.timestamp_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An entry id by the one rule of docs/contracts.md §4
/// ([`proto::check_entry_id`]).
fn parse_id(id: &str) -> Result<ObjectId, StoreError> {
    proto::check_entry_id(id).map_err(StoreError::InvalidArgument)?;
    ObjectId::parse_str(id)
        .map_err(|e| StoreError::Internal(anyhow::Error::new(e).context("a checked id")))
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

/// Entries one `insert_many` may carry.
const MAX_BATCH: usize = 256;
/// Batches in flight at once.
const WRITERS: usize = 4;

/// An entry waiting to be stored, and who to tell once it is.
struct PendingWrite {
    doc: LogDocument,
    stored: oneshot::Sender<Result<Stored, BatchFailure>>,
}

/// How an entry came to be in the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Written now.
    New,
    /// An entry with its id was already there (a retried write).
    AlreadyThere,
}

/// MongoDB's code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// Why a batch was not stored, shareable by all its callers.
#[derive(Debug, Clone)]
enum BatchFailure {
    Unavailable(String),
    Internal(String),
}

impl From<BatchFailure> for StoreError {
    fn from(failure: BatchFailure) -> Self {
        match failure {
            BatchFailure::Unavailable(m) => StoreError::Unavailable(m),
            BatchFailure::Internal(m) => StoreError::Internal(anyhow::anyhow!(m)),
        }
    }
}

/// Coalesces concurrent writes: whatever entries are waiting when a writer
/// is free go to MongoDB in one `insert_many`, and each caller is answered
/// only once its batch is stored. Under light load a batch is one entry, so
/// nothing waits for company; under heavy load one round trip stores many.
/// The creation times of the new entries are noted in `newest`.
async fn write_batches(
    logs: Collection<LogDocument>,
    newest: NewestTimes,
    mut pending: mpsc::Receiver<PendingWrite>,
    observed: BatchMetrics,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        if pending.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let writes: Vec<PendingWrite> = std::mem::take(&mut batch);
        let (logs, newest, observed) = (logs.clone(), newest.clone(), observed.clone());
        tokio::spawn(async move {
            let docs: Vec<&LogDocument> = writes.iter().map(|w| &w.doc).collect();
            observed.sizes.observe(writes.len() as f64);
            let started = Instant::now();
            let result = within_limit(logs.insert_many(docs).ordered(false)).await;
            let outcome = match &result {
                Ok(Ok(_)) => Outcome::Ok,
                _ => Outcome::ServerError,
            };
            observed.inserts.record(outcome, started.elapsed());
            let outcomes = outcomes(writes.len(), result);
            if writes.len() > 1 {
                tracing::debug!(entries = writes.len(), "batch stored");
            }
            let mut created = Vec::new();
            for (write, outcome) in writes.into_iter().zip(outcomes) {
                if matches!(outcome, Ok(Stored::New)) {
                    created.push(write.doc.created_at);
                }
                let _ = write.stored.send(outcome);
            }
            newest.record(&created);
            drop(writer);
        });
    }
}

/// What the writer counts: each `insert_many` as a call to MongoDB, and
/// how many entries each carried.
#[derive(Clone)]
struct BatchMetrics {
    inserts: Recorder,
    sizes: Histogram,
}

impl BatchMetrics {
    fn new(metrics: &Metrics) -> Self {
        let sizes = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
        metrics.register(
            "logger_batch_entries",
            "Entries each insert_many carried (writes are coalesced).",
            sizes.clone(),
        );
        Self {
            inserts: metrics.calls_to("mongodb", "mongodb"),
            sizes,
        }
    }
}

/// Each entry's outcome of one unordered `insert_many` of `count` entries:
/// every entry MongoDB did not report stored; one it refused as a duplicate
/// key was stored before; one it refused otherwise, or all of them when the
/// whole call failed, is not (and may be written again: its id keeps that
/// from doubling it).
fn outcomes(
    count: usize,
    result: Result<mongodb::error::Result<InsertManyResult>, StoreError>,
) -> Vec<Result<Stored, BatchFailure>> {
    let all_failed = |e: StoreError| {
        let failure = match e {
            StoreError::Unavailable(m) => BatchFailure::Unavailable(m),
            other => BatchFailure::Internal(format!("{other:#}")),
        };
        vec![Err(failure); count]
    };
    let error = match result {
        Ok(Ok(_)) => return vec![Ok(Stored::New); count],
        Ok(Err(error)) => error,
        Err(timeout) => return all_failed(timeout),
    };
    let ErrorKind::InsertMany(failure) = &*error.kind else {
        return all_failed(StoreError::from(error));
    };
    let mut outcomes = vec![Ok(Stored::New); count];
    if let Some(concern) = &failure.write_concern_error {
        let failure = BatchFailure::Internal(format!("write concern: {}", concern.message));
        outcomes.fill(Err(failure));
    }
    for write in failure.write_errors.iter().flatten() {
        if let Some(outcome) = outcomes.get_mut(write.index) {
            *outcome = if write.code == DUPLICATE_KEY {
                Ok(Stored::AlreadyThere)
            } else {
                Err(BatchFailure::Internal(format!(
                    "MongoDB refused the entry ({}): {}",
                    write.code, write.message
                )))
            };
        }
    }
    outcomes
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
    use proto::{MAX_LOG_DATA_BYTES, MAX_LOG_NAME_BYTES};

    fn invalid(name: &str, data: &str) -> bool {
        matches!(
            NewLog::new(name.into(), data.into()),
            Err(StoreError::InvalidArgument(_))
        )
    }

    #[test]
    fn names_must_be_present_and_bounded() {
        assert!(invalid("", "x"));
        assert!(invalid(" \t\n", "x"));
        assert!(invalid(&"n".repeat(MAX_LOG_NAME_BYTES + 1), "x"));
        // Bytes, not characters: 129 two-byte characters are 258 bytes.
        assert!(invalid(&"é".repeat(129), "x"));
        assert!(!invalid(&"n".repeat(MAX_LOG_NAME_BYTES), "x"));
        assert!(!invalid(" event ", ""));
    }

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

    #[test]
    fn data_is_bounded() {
        assert!(invalid("event", &"d".repeat(MAX_LOG_DATA_BYTES + 1)));
        assert!(!invalid("event", &"d".repeat(MAX_LOG_DATA_BYTES)));
    }

    #[test]
    fn ids_are_hex_object_ids() {
        assert!(matches!(
            parse_id("nope"),
            Err(StoreError::InvalidArgument(_))
        ));
        let oid = ObjectId::new();
        assert_eq!(parse_id(&oid.to_hex()).unwrap(), oid);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let time = DateTime::from_millis(1_714_564_800_123);
        assert_eq!(rfc3339(time), "2024-05-01T12:00:00.123Z");
    }
}
