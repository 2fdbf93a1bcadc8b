//! The one backoff every retry loop of the system uses: the listener's
//! reconnects and store retries, the logger's index creation, the
//! authentication service's migrations at start.

use std::time::Duration;

/// Exponential backoff: waits of `first`, then twice as long each time, at
/// most `max`; [`reset`](Self::reset) starts again from `first` (after a
/// success).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first.min(max),
        }
    }

    /// The wait before the next attempt; the one after it will be twice as
    /// long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(250), ms(1500));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_delay()).collect();
        assert_eq!(waits, [ms(250), ms(500), ms(1000), ms(1500), ms(1500)]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(250));
        // A constant wait is the same backoff with first = max.
        let mut constant = Backoff::new(ms(1000), ms(1000));
        assert_eq!(
            [constant.next_delay(), constant.next_delay()],
            [ms(1000); 2]
        );
    }
}
