//! The coalescing writer: concurrent writes go to MongoDB together, one
//! `insert_many` per free writer, each caller answered once its entry is
//! stored.

use std::sync::Arc;
use std::time::Instant;

use mongodb::Collection;
use mongodb::error::ErrorKind;
use mongodb::results::InsertManyResult;
use service_kit::metrics::prometheus_client::metrics::histogram::Histogram;
use service_kit::metrics::{Metrics, Outcome, Recorder};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::entry::LogDocument;
use super::{StoreError, within_limit};
use crate::newest::NewestTimes;

/// Entries one `insert_many` may carry.
pub(super) const MAX_BATCH: usize = 256;
/// Batches in flight at once.
pub(super) const WRITERS: usize = 4;

/// An entry waiting to be stored, and who to tell once it is.
pub(super) struct PendingWrite {
    pub(super) doc: LogDocument,
    pub(super) stored: oneshot::Sender<Result<Stored, BatchFailure>>,
}

/// How an entry came to be in the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Written now.
    New,
    /// An entry with its id was already there (a retried write).
    AlreadyThere,
}

/// MongoDB's code for a duplicate key.
pub(super) const DUPLICATE_KEY: i32 = 11000;

/// Why a batch was not stored, shareable by all its callers.
#[derive(Debug, Clone)]
pub(super) enum BatchFailure {
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
pub(super) async fn write_batches(
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
pub(super) struct BatchMetrics {
    inserts: Recorder,
    sizes: Histogram,
}

impl BatchMetrics {
    pub(super) fn new(metrics: &Metrics) -> Self {
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
pub(super) fn outcomes(
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
