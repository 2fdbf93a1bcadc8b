//! Password checks with bcrypt, off the async runtime.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// bcrypt reads at most 72 bytes and silently ignores the rest, so longer
/// passwords are refused rather than half-checked.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The bcrypt cost of every hash: the seed user's (its migration carries a
/// hash of this cost, checked by a test below), the dummy hash an unknown
/// user is checked against (so an unknown email costs as much time as a
/// wrong password), the tests' users and the bench's measure of the cost.
pub const BCRYPT_COST: u32 = 10;

/// Why a password could not be checked (a wrong password is not an error:
/// it is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The blocking task running bcrypt panicked or was cancelled.
    #[error("the bcrypt task failed: {0}")]
    TaskFailed(#[from] tokio::task::JoinError),
    /// Every bcrypt slot stayed taken for the whole queue timeout.
    #[error("too many logins at once; try again in a moment")]
    Busy,
}

/// How many bcrypt checks run at once, and how long a login may wait for
/// one of them.
#[derive(Debug, Clone, Copy)]
pub struct BcryptLimits {
    /// `BCRYPT_THREADS`: checks at once (default: [`BcryptLimits::default_threads`]).
    pub threads: usize,
    /// `BCRYPT_QUEUE_SECS`: the longest wait for a slot before the login
    /// is answered 503 (default 2).
    pub queue_timeout: std::time::Duration,
}

impl BcryptLimits {
    /// One slot per core the process may use but one, and at least one:
    /// a burst of logins then leaves a core to every other request
    /// (docs/bench/README.md, "auth").
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(2, usize::from)
            .saturating_sub(1)
            .max(1)
    }
}

pub struct Passwords {
    dummy_hash: String,
    slots: Arc<Semaphore>,
    queue_timeout: std::time::Duration,
}

impl Passwords {
    pub async fn new(limits: BcryptLimits) -> anyhow::Result<Self> {
        let dummy_hash =
            tokio::task::spawn_blocking(|| bcrypt::hash("no user has this password", BCRYPT_COST))
                .await
                .context("hashing task failed")?
                .context("cannot compute the dummy hash")?;
        Ok(Self {
            dummy_hash,
            slots: Arc::new(Semaphore::new(limits.threads.max(1))),
            queue_timeout: limits.queue_timeout,
        })
    }

    /// The hash a login is checked against: the user's, or the dummy hash
    /// of the same cost when there is no user, so that an unknown email
    /// runs the same bcrypt as a wrong password.
    fn checked_against<'a>(&'a self, hash: Option<&'a str>) -> &'a str {
        hash.unwrap_or(&self.dummy_hash)
    }

    /// Checks `password` against `hash`, or against the dummy hash when
    /// there is no user, on the blocking pool so a burst of logins never
    /// stalls other requests. Always `false` for the dummy.
    ///
    /// At most `threads` checks run at once; a check waits for a slot for
    /// at most the queue timeout ([`PasswordError::Busy`] after it), so a
    /// flood queues briefly and is then refused instead of piling up. A
    /// login whose request is dropped while it waits (timed out, client
    /// gone) never runs bcrypt.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .expect("the bcrypt semaphore is never closed");
        let is_dummy = hash.is_none();
        let hash = self.checked_against(hash).to_owned();
        let password = password.to_owned();
        // In a trace, the hash check as a span of its own: it is most of a
        // login's time.
        let span = service_kit::trace_span!("bcrypt verify", otel.name = "bcrypt verify");
        let span = if span.is_none() {
            tracing::Span::current()
        } else {
            span
        };
        let matches = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _slot = slot;
            run_in_background_priority();
            bcrypt::verify(password, &hash)
        })
        .in_current_span()
        .await?;
        // A stored hash that bcrypt cannot read is treated as a mismatch.
        let matches = matches.unwrap_or_else(|e| {
            tracing::error!(error = %e, "unreadable password hash");
            false
        });
        Ok(matches && !is_dummy)
    }
}

/// Lowers the calling thread's scheduling priority (nice 10), once per
/// thread. bcrypt still uses every idle core, but request handling, here and
/// in the other services on the same machine, runs first, so a burst of
/// logins does not slow everything else down. On Linux the nice value is per
/// thread; elsewhere this does nothing.
fn run_in_background_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|lowered| {
        if !lowered.get() {
            #[cfg(target_os = "linux")]
            // SAFETY: setpriority only reads its arguments; `who = 0` is the
            // calling thread on Linux.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            lowered.set(true);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cost a bcrypt hash was made with (`$2b$<cost>$...`).
    fn cost(hash: &str) -> u32 {
        hash[4..6].parse().unwrap()
    }

    fn limits() -> BcryptLimits {
        BcryptLimits {
            threads: 1,
            queue_timeout: std::time::Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_with_a_hash_of_the_same_cost() {
        let passwords = Passwords::new(limits()).await.unwrap();
        let dummy = passwords.checked_against(None);
        assert_eq!(cost(dummy), BCRYPT_COST, "{dummy}");
        let user = bcrypt::hash("rightpassword", BCRYPT_COST).unwrap();
        assert_eq!(passwords.checked_against(Some(&user)), user);
    }

    #[tokio::test]
    async fn the_dummy_hash_never_lets_anyone_in() {
        let passwords = Passwords::new(limits()).await.unwrap();
        let password = "no user has this password";
        assert!(!passwords.verify(password, None).await.unwrap());
    }

    /// The seed migration's hash is `$2b$<cost>$...` and is `verysecret`'s.
    #[test]
    fn the_seed_hash_has_the_cost_every_hash_uses() {
        let seed = include_str!("../migrations/0002_seed_admin.sql");
        let start = seed.find("'$2b$").expect("the seed carries a bcrypt hash") + 1;
        let hash = &seed[start..start + 60];
        assert_eq!(cost(hash), BCRYPT_COST, "{hash}");
        assert!(bcrypt::verify("verysecret", hash).unwrap());
    }
}
