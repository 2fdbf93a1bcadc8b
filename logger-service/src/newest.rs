//! The creation times of the newest entries, which bound a listing's range
//! (docs/design.md, "Listing at size"): this process's own, in memory, and
//! every logger's, in the one document of `logs_newest`
//! (`{_id: "newest", created_at: [..]}`), to which each logger adds its new
//! times every [`FLUSH_EVERY`]. Every time kept is an entry's, so a range
//! from the `n`-th newest of them holds at least `n` entries, whichever
//! logger wrote them and however late the document is.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::Collection;
use mongodb::bson::{DateTime, Document, doc};
use service_kit::shutdown::CancellationToken;

use crate::store::{StoreError, bounded};

/// The collection of the one document.
pub const COLLECTION: &str = "logs_newest";
/// How many times are kept, in memory and in the document: a listing page
/// that ends within them is one small range query.
pub const KEPT: usize = 128;
/// How often this process adds its new times to the document.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

const ID: &str = "newest";

#[derive(Clone)]
pub struct NewestTimes {
    collection: Collection<Document>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// This process's newest times, oldest first.
    recent: VecDeque<DateTime>,
    /// Times not yet in the document.
    unflushed: Vec<DateTime>,
}

impl NewestTimes {
    pub fn new(collection: Collection<Document>) -> Self {
        Self {
            collection,
            state: Arc::default(),
        }
    }

    /// Notes the creation times of entries just stored.
    pub fn record(&self, created: &[DateTime]) {
        let mut state = self.state.lock().expect("newest times");
        for &time in created {
            if state.recent.len() == KEPT {
                state.recent.pop_front();
            }
            state.recent.push_back(time);
        }
        state.unflushed.extend_from_slice(created);
        let excess = state.unflushed.len().saturating_sub(KEPT);
        state.unflushed.drain(..excess);
    }

    /// When the `need`-th newest known entry was created, or the oldest
    /// known time when fewer are known; none when nothing is. This
    /// process's own times suffice when there are `need` of them;
    /// otherwise the document's are read too.
    pub async fn since(&self, need: u64) -> Option<DateTime> {
        let need = usize::try_from(need).unwrap_or(usize::MAX);
        let mut times: Vec<DateTime> = {
            let state = self.state.lock().expect("newest times");
            state.recent.iter().copied().collect()
        };
        if times.len() < need {
            times.extend(self.stored().await);
        }
        // One time twice (this process's, also in the document) must count
        // once: equal times then count once too, which only widens the range.
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.dedup();
        times.get(need.min(times.len()).checked_sub(1)?).copied()
    }

    async fn stored(&self) -> Vec<DateTime> {
        let found = bounded(self.collection.find_one(doc! {"_id": ID}))
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "cannot read the newest creation times"));
        let Ok(Some(document)) = found else {
            return Vec::new();
        };
        document
            .get_array("created_at")
            .map(|times| {
                times
                    .iter()
                    .filter_map(|t| t.as_datetime().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds the times not yet there to the document, keeping its last
    /// [`KEPT`]. A failure loses nothing that matters: the listing widens.
    async fn flush(&self) {
        let created = std::mem::take(&mut self.state.lock().expect("newest times").unflushed);
        if created.is_empty() {
            return;
        }
        let kept = -(KEPT as i32);
        let push = doc! {"$push": {"created_at": {"$each": created, "$slice": kept}}};
        let update = self
            .collection
            .update_one(doc! {"_id": ID}, push)
            .upsert(true);
        if let Err(e) = bounded(update).await {
            tracing::debug!(error = %e, "cannot record the newest creation times");
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown`, and once more then.
    pub async fn keep_flushing(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => self.flush().await,
            }
        }
        self.flush().await;
    }

    /// Forgets every time, here and in the document (the entries are gone).
    pub async fn forget(&self) -> Result<(), StoreError> {
        *self.state.lock().expect("newest times") = State::default();
        bounded(self.collection.drop()).await
    }
}
