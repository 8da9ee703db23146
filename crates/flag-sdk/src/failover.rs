//! Which endpoint the follower tries next, and how long it waits first: another replica at
//! once, the backoff only once every endpoint has failed in turn.
//!
//! The endpoints are replicas of one store, so moving to the next costs the client nothing
//! (it resumes from its revision there) and waiting first would only keep its flags stale
//! for longer. Waiting matters when there is nowhere else to go: then a fleet cut off
//! together must not come back together, nor a client spin against servers that fail.

use std::time::Duration;

use crate::backoff::Backoff;

/// A position in the endpoint list and the failures of the round in progress.
#[derive(Debug)]
pub(crate) struct Rotation {
    count: usize,
    current: usize,
    /// Endpoints that failed since the last one served flags, or since the last backoff.
    failed_in_round: usize,
    backoff: Backoff,
}

impl Rotation {
    /// Over `count` endpoints (at least one), from the first.
    pub(crate) fn new(count: usize, backoff: Backoff) -> Rotation {
        Rotation { count: count.max(1), current: 0, failed_in_round: 0, backoff }
    }

    /// The index of the endpoint to try now.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The current endpoint failed (it cannot be reached, or its stream ended): moves to the
    /// next and answers how long to wait before trying it — nothing while the round has
    /// endpoints left to try, a backoff delay once all have failed.
    pub(crate) fn failed(&mut self) -> Duration {
        self.current = (self.current + 1) % self.count;
        self.failed_in_round += 1;
        if self.failed_in_round < self.count {
            return Duration::ZERO;
        }
        self.failed_in_round = 0;
        self.backoff.next_delay()
    }

    /// The current endpoint served flags: its failure will start a new round, and the
    /// backoff starts from its minimum again.
    pub(crate) fn served(&mut self) {
        self.failed_in_round = 0;
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(count: usize) -> Rotation {
        Rotation::new(count, Backoff::new(Duration::from_millis(100), Duration::from_secs(1)))
    }

    #[test]
    fn the_next_endpoint_is_tried_at_once_and_the_backoff_comes_after_a_whole_round() {
        let mut rotation = rotation(3);
        // Following the first; it goes away: the other two at once, then a pause.
        rotation.served();
        let tries: Vec<(usize, bool)> = (0..6)
            .map(|_| {
                let waited = rotation.failed() > Duration::ZERO;
                (rotation.current(), waited)
            })
            .collect();
        assert_eq!(tries, [(1, false), (2, false), (0, true), (1, false), (2, false), (0, true)]);

        // The third serves, then fails: its round starts with the next, at once.
        rotation.failed();
        rotation.failed();
        assert_eq!(rotation.current(), 2);
        rotation.served();
        assert_eq!(rotation.failed(), Duration::ZERO);
        assert_eq!(rotation.current(), 0);
    }

    #[test]
    fn one_endpoint_waits_before_every_retry() {
        let mut rotation = rotation(1);
        rotation.served();
        for _ in 0..3 {
            assert!(rotation.failed() > Duration::ZERO);
            assert_eq!(rotation.current(), 0);
        }
    }

    #[test]
    fn the_backoff_grows_over_rounds_and_restarts_once_an_endpoint_served() {
        let mut rotation = rotation(2);
        let mut round_delays = Vec::new();
        for _ in 0..4 {
            assert_eq!(rotation.failed(), Duration::ZERO);
            round_delays.push(rotation.failed());
        }
        // Jittered within the upper half of 100, 200, 400, 800 ms.
        for (delay, ceiling) in round_delays.iter().zip([100, 200, 400, 800].map(Duration::from_millis)) {
            assert!(*delay >= ceiling / 2 && *delay <= ceiling, "{delay:?} within half of {ceiling:?}");
        }
        rotation.served();
        assert_eq!(rotation.failed(), Duration::ZERO);
        assert!(rotation.failed() <= Duration::from_millis(100));
    }
}
