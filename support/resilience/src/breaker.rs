//! A circuit breaker: closed while calls succeed; open after
//! [`Settings::failures`] calls in a row failed, or over
//! [`Settings::failure_percent`] of at least [`Settings::min_calls`] in one
//! [`Settings::window`]; while open every call is refused at once, with the
//! time left; once the open time is over, half-open: up to
//! [`Settings::probes`] calls go through, and the first to succeed closes
//! it, the first to fail opens it again for twice as long (up to
//! [`Settings::open_max`]).
//!
//! The state machine alone: the caller says how each admitted call ended
//! ([`Ticket::succeeded`], [`Ticket::failed`]); a ticket dropped without a
//! word (the call was cancelled) changes nothing but frees its probe slot.
//! Each transition is logged with its reason and counted.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Calls in a row that failed before it opens.
    pub failures: u32,
    /// The window the failure rate is counted in.
    pub window: Duration,
    /// Calls in a window before the rate counts.
    pub min_calls: u32,
    /// The share of a window's calls that opens it, in percent.
    pub failure_percent: u32,
    /// The first open time; doubled on each failed probe.
    pub open_for: Duration,
    /// The longest open time.
    pub open_max: Duration,
    /// Calls let through at once while half-open.
    pub probes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            failures: 5,
            window: Duration::from_secs(10),
            min_calls: 20,
            failure_percent: 50,
            open_for: Duration::from_secs(1),
            open_max: Duration::from_secs(30),
            probes: 1,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub const ALL: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call the breaker refused: try again after `retry_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub name: Arc<str>,
    pub retry_after: Duration,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is failing; not called for {} ms",
            self.name,
            self.retry_after.as_millis()
        )
    }
}

impl std::error::Error for Rejected {}

/// One breaker; a cheap handle to share.
#[derive(Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    settings: Settings,
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    in_a_row: u32,
    window_started: Instant,
    calls: u32,
    failed: u32,
    open_until: Instant,
    open_for: Duration,
    probes_out: u32,
    transitions: [u64; 3],
}

/// An admitted call, to be told how it ended.
pub struct Ticket {
    breaker: Breaker,
    probe: bool,
    done: bool,
}

impl Ticket {
    pub fn succeeded(self) {
        self.end(None, Instant::now());
    }

    pub fn failed(self, reason: &str) {
        self.end(Some(reason), Instant::now());
    }

    /// The call ended at `now`; `failure` says why it failed.
    fn end(mut self, failure: Option<&str>, now: Instant) {
        self.done = true;
        self.breaker.ended(self.probe, failure, now);
    }

    /// Whether the call is one of the half-open state's probes.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.lock().probes_out -= 1;
        }
    }
}

impl Breaker {
    /// A closed breaker called `name` in logs, metrics and refusals.
    pub fn new(name: impl Into<Arc<str>>, settings: Settings) -> Self {
        let now = Instant::now();
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                settings,
                inner: Mutex::new(Inner {
                    state: State::Closed,
                    in_a_row: 0,
                    window_started: now,
                    calls: 0,
                    failed: 0,
                    open_until: now,
                    open_for: settings.open_for,
                    probes_out: 0,
                    transitions: [0; 3],
                }),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Lets a call through, or refuses it at once.
    pub fn admit(&self) -> Result<Ticket, Rejected> {
        self.admit_at(Instant::now())
    }

    /// The state now (an open breaker whose time is over turns half-open
    /// on the next call it admits).
    pub fn state(&self) -> State {
        self.lock().state
    }

    /// Transitions into `state` so far.
    pub fn transitions(&self, state: State) -> u64 {
        self.lock().transitions[state.index()]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit_at(&self, now: Instant) -> Result<Ticket, Rejected> {
        let mut inner = self.lock();
        if inner.state == State::Open {
            if now < inner.open_until {
                return Err(self.rejected(inner.open_until - now));
            }
            self.move_to(&mut inner, State::HalfOpen, "its open time is over");
        }
        let probe = inner.state == State::HalfOpen;
        if probe {
            if inner.probes_out >= self.shared.settings.probes {
                return Err(self.rejected(inner.open_for));
            }
            inner.probes_out += 1;
        }
        drop(inner);
        Ok(Ticket {
            breaker: self.clone(),
            probe,
            done: false,
        })
    }

    fn rejected(&self, retry_after: Duration) -> Rejected {
        Rejected {
            name: self.shared.name.clone(),
            retry_after,
        }
    }

    /// A call admitted as `probe` ended: `failure` says why it failed.
    fn ended(&self, probe: bool, failure: Option<&str>, now: Instant) {
        let settings = self.shared.settings;
        let mut inner = self.lock();
        if probe {
            inner.probes_out -= 1;
            if inner.state != State::HalfOpen {
                return;
            }
            match failure {
                None => {
                    inner.open_for = settings.open_for;
                    inner.in_a_row = 0;
                    inner.calls = 0;
                    inner.failed = 0;
                    inner.window_started = now;
                    self.move_to(&mut inner, State::Closed, "a probe call succeeded");
                }
                Some(reason) => {
                    inner.open_for = (inner.open_for * 2).min(settings.open_max);
                    inner.open_until = now + inner.open_for;
                    let why = format!("a probe call failed: {reason}");
                    self.move_to(&mut inner, State::Open, &why);
                }
            }
            return;
        }
        // A call admitted while closed that ends after the breaker moved
        // on says nothing about the dependency now.
        if inner.state != State::Closed {
            return;
        }
        if now.duration_since(inner.window_started) >= settings.window {
            inner.window_started = now;
            inner.calls = 0;
            inner.failed = 0;
        }
        inner.calls += 1;
        let Some(reason) = failure else {
            inner.in_a_row = 0;
            return;
        };
        inner.failed += 1;
        inner.in_a_row += 1;
        let why = if inner.in_a_row >= settings.failures {
            format!(
                "{} calls in a row failed, the last: {reason}",
                inner.in_a_row
            )
        } else if inner.calls >= settings.min_calls
            && inner.failed * 100 >= settings.failure_percent * inner.calls
        {
            format!(
                "{} of {} calls failed within {} s, the last: {reason}",
                inner.failed,
                inner.calls,
                settings.window.as_secs()
            )
        } else {
            return;
        };
        inner.open_for = settings.open_for;
        inner.open_until = now + inner.open_for;
        self.move_to(&mut inner, State::Open, &why);
    }

    fn move_to(&self, inner: &mut Inner, to: State, reason: &str) {
        let from = inner.state;
        inner.state = to;
        inner.transitions[to.index()] += 1;
        let name = &*self.shared.name;
        match to {
            State::Open => {
                tracing::warn!(breaker = name, %from, %to, open_ms = inner.open_for.as_millis() as u64, reason, "circuit breaker opened")
            }
            _ => tracing::info!(breaker = name, %from, %to, reason, "circuit breaker moved"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            failures: 3,
            window: Duration::from_secs(10),
            min_calls: 10,
            failure_percent: 50,
            open_for: Duration::from_secs(1),
            open_max: Duration::from_secs(3),
            probes: 1,
        }
    }

    /// Admits a call at `now` and ends it with `failure`.
    fn call(breaker: &Breaker, now: Instant, failure: Option<&str>) -> Result<(), Rejected> {
        breaker.admit_at(now)?.end(failure, now);
        Ok(())
    }

    fn opened(breaker: &Breaker, now: Instant) {
        for _ in 0..3 {
            call(breaker, now, Some("timed out")).unwrap();
        }
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn closed_opens_over_the_failure_rate_of_a_window() {
        let breaker = Breaker::new("dep", settings());
        let now = Instant::now();
        for _ in 0..3 {
            call(&breaker, now, Some("timed out")).unwrap();
            call(&breaker, now, Some("timed out")).unwrap();
            call(&breaker, now, None).unwrap();
        }
        assert_eq!(breaker.state(), State::Closed, "nine calls: too few");
        // The tenth, a failure: 7 of 10, over half.
        call(&breaker, now, Some("timed out")).unwrap();
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.transitions(State::Open), 1);

        let other = Breaker::new("dep", settings());
        for _ in 0..20 {
            call(&other, now, Some("timed out")).unwrap();
            call(&other, now, None).unwrap();
            call(&other, now, None).unwrap();
        }
        assert_eq!(other.state(), State::Closed, "a third is under the rate");
    }

    #[test]
    fn closed_opens_after_failures_in_a_row() {
        let breaker = Breaker::new("dep", settings());
        let now = Instant::now();
        call(&breaker, now, Some("timed out")).unwrap();
        call(&breaker, now, Some("timed out")).unwrap();
        assert_eq!(breaker.state(), State::Closed);
        call(&breaker, now, Some("timed out")).unwrap();
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn open_refuses_at_once_with_the_time_left() {
        let breaker = Breaker::new("logger-service (grpc)", settings());
        let now = Instant::now();
        opened(&breaker, now);
        let refused = breaker
            .admit_at(now + Duration::from_millis(400))
            .err()
            .unwrap();
        assert_eq!(refused.retry_after, Duration::from_millis(600));
        assert_eq!(
            refused.to_string(),
            "logger-service (grpc) is failing; not called for 600 ms"
        );
    }

    #[test]
    fn open_turns_half_open_after_its_time_and_lets_one_probe_through() {
        let breaker = Breaker::new("dep", settings());
        let now = Instant::now();
        opened(&breaker, now);
        let later = now + Duration::from_secs(1);
        let probe = breaker.admit_at(later).unwrap();
        assert!(probe.is_probe());
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(breaker.admit_at(later).is_err(), "one probe at a time");
        drop(probe);
        assert!(
            breaker.admit_at(later).is_ok(),
            "a probe dropped unanswered frees its slot"
        );
    }

    #[test]
    fn half_open_closes_when_the_probe_succeeds() {
        let breaker = Breaker::new("dep", settings());
        let now = Instant::now();
        opened(&breaker, now);
        let later = now + Duration::from_secs(1);
        call(&breaker, later, None).unwrap();
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.transitions(State::Closed), 1);
        // Closed again from scratch: two failures do not open it.
        call(&breaker, later, Some("timed out")).unwrap();
        call(&breaker, later, Some("timed out")).unwrap();
        assert_eq!(breaker.state(), State::Closed);
    }

    #[test]
    fn half_open_opens_again_for_twice_as_long_up_to_the_cap() {
        let breaker = Breaker::new("dep", settings());
        let mut now = Instant::now();
        opened(&breaker, now);
        for expected in [2, 3, 3] {
            now += Duration::from_secs(3);
            call(&breaker, now, Some("timed out")).unwrap();
            assert_eq!(breaker.state(), State::Open);
            let left = breaker.admit_at(now).err().unwrap().retry_after;
            assert_eq!(left, Duration::from_secs(expected));
        }
        // A success resets the open time to the first.
        now += Duration::from_secs(3);
        call(&breaker, now, None).unwrap();
        opened(&breaker, now);
        let left = breaker.admit_at(now).err().unwrap().retry_after;
        assert_eq!(left, Duration::from_secs(1));
    }

    #[test]
    fn a_call_admitted_while_closed_that_ends_later_changes_nothing() {
        let breaker = Breaker::new("dep", settings());
        let now = Instant::now();
        let late = breaker.admit_at(now).unwrap();
        opened(&breaker, now);
        late.failed("timed out");
        assert_eq!(breaker.transitions(State::Open), 1);
        let probe = breaker.admit_at(now + Duration::from_secs(1)).unwrap();
        let old = breaker.admit_at(now);
        assert!(old.is_err(), "the probe is in flight");
        probe.succeeded();
        assert_eq!(breaker.state(), State::Closed);
    }
}
