//! How long a delivery waits before its next attempt: exponential from a quarter second,
//! capped, with jitter so webhooks that failed together do not retry in lockstep. A
//! receiver's `Retry-After` is honoured up to the cap.

use std::time::Duration;

/// The first wait.
const FIRST: Duration = Duration::from_millis(250);

/// The wait before attempt `failures + 1`, after `failures` (≥ 1) failed attempts: `FIRST`
/// doubled per failure, at most `cap`, then scaled by `jitter` (in [0, 1)) into its upper
/// half — or the receiver's `retry_after`, when it asked for one, at most `cap`.
pub(crate) fn delay(failures: u32, cap: Duration, retry_after: Option<Duration>, jitter: f64) -> Duration {
    if let Some(asked) = retry_after {
        return asked.min(cap);
    }
    let doubled = FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    doubled.min(cap).mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_stays_in_its_upper_half() {
        let cap = Duration::from_secs(60);
        let top: Vec<_> = (1..=12).map(|n| delay(n, cap, None, 1.0).as_millis()).collect();
        assert_eq!(top[..5], [250, 500, 1000, 2000, 4000]);
        assert!(top[9..].iter().all(|&ms| ms == 60_000), "{top:?}");
        assert_eq!(delay(3, cap, None, 0.0), Duration::from_millis(500));
        assert_eq!(delay(u32::MAX, cap, None, 0.5), Duration::from_secs(45));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let cap = Duration::from_secs(10);
        assert_eq!(delay(1, cap, Some(Duration::from_secs(3)), 0.9), Duration::from_secs(3));
        assert_eq!(delay(1, cap, Some(Duration::from_secs(3600)), 0.9), cap);
    }
}
