//! Per-account lockout (docs/security.md, "Throttling"): after
//! `after` failed logins in a row for one e-mail address, that address is
//! locked for a while that doubles with each further failure, up to `max`.
//!
//! While an address is locked, a login for it is answered 429 with
//! `Retry-After` without checking the password: no bcrypt work, no
//! guess counted, and the lock is not extended, so an attacker cannot lock
//! a user out for longer than `max` after their last attempt. A successful
//! login clears the address. It applies to any address, known or not, so
//! a lock says nothing about whether an account exists.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered at most; past it, the ones whose failures are
/// older than `max` are forgotten.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// `LOCKOUT_AFTER`: failures in a row before the first lock (default 5).
    pub after: u32,
    /// `LOCKOUT_BASE_SECS`: the first lock (default 1 s), doubled each time.
    pub base: Duration,
    /// `LOCKOUT_MAX_SECS`: the longest lock (default 60 s).
    pub max: Duration,
}

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Lockout {
    policy: LockoutPolicy,
    accounts: Mutex<HashMap<String, Failures>>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// How long `email` is still locked, if it is.
    pub fn locked_for(&self, email: &str) -> Option<Duration> {
        let accounts = self.accounts.lock().expect("lockout state");
        let until = accounts.get(&Self::key(email))?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed login for `email`, locking it once the count passes
    /// the policy's threshold.
    pub fn failed(&self, email: &str) {
        let now = Instant::now();
        let mut accounts = self.accounts.lock().expect("lockout state");
        if accounts.len() >= MAX_REMEMBERED {
            let max = self.policy.max;
            accounts.retain(|_, f| now.duration_since(f.last) < max);
        }
        let failures = accounts.entry(Self::key(email)).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if failures.count >= self.policy.after {
            let doublings = (failures.count - self.policy.after).min(20);
            let lock = self
                .policy
                .base
                .saturating_mul(1 << doublings)
                .min(self.policy.max);
            failures.locked_until = Some(now + lock);
        }
    }

    /// Clears `email` after a successful login.
    pub fn succeeded(&self, email: &str) {
        self.accounts
            .lock()
            .expect("lockout state")
            .remove(&Self::key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            after: 3,
            base: Duration::from_secs(10),
            max: Duration::from_secs(25),
        }
    }

    #[test]
    fn the_lock_starts_at_the_threshold_doubles_and_stops_at_the_cap() {
        let lockout = Lockout::new(policy());
        lockout.failed("a@example.com");
        lockout.failed("A@example.com ");
        assert_eq!(lockout.locked_for("a@example.com"), None);
        lockout.failed("a@example.com");
        let first = lockout.locked_for("a@example.com").unwrap();
        assert!(first > Duration::from_secs(9) && first <= Duration::from_secs(10));
        lockout.failed("a@example.com");
        let second = lockout.locked_for("a@example.com").unwrap();
        assert!(second > Duration::from_secs(19), "{second:?}");
        for _ in 0..30 {
            lockout.failed("a@example.com");
        }
        assert!(lockout.locked_for("a@example.com").unwrap() <= Duration::from_secs(25));
        assert_eq!(lockout.locked_for("b@example.com"), None, "per account");
        lockout.succeeded("a@example.com");
        assert_eq!(lockout.locked_for("a@example.com"), None);
    }
}
