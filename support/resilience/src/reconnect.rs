//! One long-lived connection shared by every request, dialed on first use
//! and again after it is lost: for clients that do not reconnect by
//! themselves (tarpc, AMQP).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// A slot holding the live connection `T` (a cheap, cloneable handle),
/// numbered so that a caller that saw it fail drops only that connection,
/// never a newer one another caller has dialed since.
pub struct Reconnecting<T> {
    live: Mutex<Option<(u64, T)>>,
    dials: AtomicU64,
}

impl<T: Clone> Default for Reconnecting<T> {
    fn default() -> Self {
        Self {
            live: Mutex::new(None),
            dials: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> Reconnecting<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The live connection and its number, or a new one from `dial` when
    /// there is none or `alive` says it is gone. Concurrent callers wait for
    /// one dial instead of racing.
    pub async fn get<E, Fut>(
        &self,
        alive: impl Fn(&T) -> bool,
        dial: impl FnOnce() -> Fut,
    ) -> Result<(u64, T), E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut live = self.live.lock().await;
        if let Some((number, connection)) = live.as_ref()
            && alive(connection)
        {
            return Ok((*number, connection.clone()));
        }
        let connection = dial().await?;
        let number = self.dials.fetch_add(1, Ordering::Relaxed);
        *live = Some((number, connection.clone()));
        Ok((number, connection))
    }

    /// Connections dialed so far.
    pub fn dials(&self) -> u64 {
        self.dials.load(Ordering::Relaxed)
    }

    /// Drops connection `number` if it is still the live one, and hands it
    /// back so the caller may close it.
    pub async fn forget(&self, number: u64) -> Option<T> {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|(n, _)| *n == number) {
            live.take().map(|(_, c)| c)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dial that makes `value`.
    fn dial(value: u32) -> impl FnOnce() -> std::future::Ready<Result<u32, ()>> {
        move || std::future::ready(Ok(value))
    }

    #[tokio::test]
    async fn a_live_connection_is_handed_out_again_without_a_dial() {
        let slot = Reconnecting::<u32>::new();
        let (number, connection) = slot.get(|_| true, dial(1)).await.unwrap();
        let again = slot.get(|_| true, dial(2)).await.unwrap();
        assert_eq!(
            again,
            (number, connection),
            "the same connection, not a new dial"
        );
    }

    #[tokio::test]
    async fn a_connection_that_fails_the_check_is_replaced_under_a_new_number() {
        let slot = Reconnecting::<u32>::new();
        let (first, _) = slot.get(|_| true, dial(1)).await.unwrap();
        let (second, connection) = slot.get(|c| *c != 1, dial(3)).await.unwrap();
        assert_eq!(connection, 3, "dialed again");
        assert_eq!(second, first + 1);
    }

    #[tokio::test]
    async fn forgetting_a_number_that_is_no_longer_live_changes_nothing() {
        let slot = Reconnecting::<u32>::new();
        let (stale, _) = slot.get(|_| true, dial(1)).await.unwrap();
        let live = slot.get(|c| *c != 1, dial(3)).await.unwrap();
        assert_eq!(slot.forget(stale).await, None);
        assert_eq!(slot.get(|_| true, dial(4)).await.unwrap(), live);
    }

    #[tokio::test]
    async fn forgetting_the_live_connection_hands_it_back_and_the_next_get_dials() {
        let slot = Reconnecting::<u32>::new();
        let (number, _) = slot.get(|_| true, dial(1)).await.unwrap();
        assert_eq!(slot.forget(number).await, Some(1));
        let (next, connection) = slot.get(|_| true, dial(5)).await.unwrap();
        assert_eq!((next, connection), (number + 1, 5));
    }

    #[tokio::test]
    async fn a_failed_dial_leaves_the_slot_empty() {
        let slot = Reconnecting::<u32>::new();
        let failed: Result<(u64, u32), &str> =
            slot.get(|_| true, || async { Err("refused") }).await;
        assert_eq!(failed, Err("refused"));
        assert_eq!(
            slot.get(|_| true, || async { Ok::<_, ()>(7) }).await,
            Ok((0, 7))
        );
    }
}
