//! Reconnection delays: exponential, capped, with jitter so that a fleet of clients cut off
//! together does not reconnect together.

use std::time::Duration;

/// Delays of `min · 2^n` capped at `max`, each drawn uniformly from its upper half.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), attempt: 0, rng: fastrand::Rng::new() }
    }

    #[cfg(test)]
    fn seeded(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { rng: fastrand::Rng::with_seed(seed), ..Backoff::new(min, max) }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.min.saturating_mul(1u32 << self.attempt.min(31)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // Half fixed, half random ("equal jitter"): never a thundering herd, never a tight
        // loop.
        let half = ceiling / 2;
        half + half.mul_f64(self.rng.f64())
    }

    /// After a success: the next failure starts from `min` again.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset_after_success() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut backoff = Backoff::seeded(min, max, 7);
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let ceilings = [100, 200, 400, 800, 1600, 2000, 2000, 2000].map(Duration::from_millis);
        for (delay, ceiling) in delays.iter().zip(ceilings) {
            assert!(*delay >= ceiling / 2 && *delay <= ceiling, "{delay:?} within half of {ceiling:?}");
        }
        // Jitter: capped delays are not all equal.
        assert!(delays[5..].windows(2).any(|w| w[0] != w[1]), "{delays:?}");
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn two_clients_failing_together_spread_their_retries() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(30));
        let mut a = Backoff::seeded(min, max, 1);
        let mut b = Backoff::seeded(min, max, 2);
        let differ = (0..6).filter(|_| a.next_delay() != b.next_delay()).count();
        assert!(differ >= 5);
    }
}
