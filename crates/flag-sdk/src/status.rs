//! How current the flags a client serves are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether a client's flags are current. Observe it with
/// [`Client::status`](crate::Client::status) and
/// [`Client::status_changes`](crate::Client::status_changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Following flagd: every change is applied as it commits.
    Ready,
    /// Not following flagd since `since`: the client serves the last flags it had (from
    /// the stream or the cache file, or none: callers' defaults) and keeps reconnecting.
    Stale {
        /// When the client last knew its flags to be current (or when it started).
        since: Instant,
    },
    /// Not following any server by design: flags from an offline file or [`TestFlags`](crate::TestFlags).
    Offline,
}

impl Status {
    /// A number for the `flag_sdk_stream_status` gauge: 0 ready, 1 stale, 2 offline.
    pub(crate) fn gauge(self) -> f64 {
        match self {
            Status::Ready => 0.0,
            Status::Stale { .. } => 1.0,
            Status::Offline => 2.0,
        }
    }
}

/// For people: `ready (following flagd)`, `stale for 12 s (since the last update from
/// flagd)`, `offline (flags from a file or test flags)`.
impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ready => f.write_str("ready (following flagd)"),
            Status::Stale { since } => {
                write!(f, "stale for {} (since the last update from flagd)", Seconds(since.elapsed()))
            }
            Status::Offline => f.write_str("offline (flags from a file or test flags)"),
        }
    }
}

/// A duration in whole seconds, or minutes and seconds from a minute on.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.0.as_secs();
        match seconds {
            0..60 => write!(f, "{seconds} s"),
            60..3600 => write!(f, "{} min {} s", seconds / 60, seconds % 60),
            _ => write!(f, "{} h {} min", seconds / 3600, seconds / 60 % 60),
        }
    }
}

/// What a client's follower has done since it started, from
/// [`Client::sync_stats`](crate::Client::sync_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncStats {
    /// Full snapshots applied (a new client, or one too far behind to resume).
    pub full_snapshots: u64,
    /// Change frames applied (resumed catch-ups and live changes).
    pub changes: u64,
    /// Streams lost and reconnected.
    pub reconnects: u64,
    /// How long applying the last snapshot or change took (converting, validating and
    /// compiling the environment, off the async runtime).
    pub last_apply: Duration,
    /// The total time spent applying snapshots and changes.
    pub apply_time: Duration,
}

/// The counts behind [`SyncStats`]. Atomics: written by the follower, read by anyone; once
/// per frame, never on the evaluation path.
#[derive(Debug, Default)]
pub(crate) struct SyncCounters {
    pub(crate) full_snapshots: AtomicU64,
    pub(crate) changes: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Microseconds, like the other figures read by anyone at any time.
    pub(crate) last_apply_micros: AtomicU64,
    pub(crate) apply_micros: AtomicU64,
}

impl SyncCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> SyncStats {
        SyncStats {
            full_snapshots: self.full_snapshots.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            last_apply: Duration::from_micros(self.last_apply_micros.load(Ordering::Relaxed)),
            apply_time: Duration::from_micros(self.apply_micros.load(Ordering::Relaxed)),
        }
    }

    /// Records one frame's apply time, in the figures and the `flag_sdk_apply_seconds` histogram.
    pub(crate) fn record_apply(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.last_apply_micros.store(micros, Ordering::Relaxed);
        self.apply_micros.fetch_add(micros, Ordering::Relaxed);
        metrics::histogram!("flag_sdk_apply_seconds").record(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_sentences_with_the_time_stale() {
        assert_eq!(Status::Ready.to_string(), "ready (following flagd)");
        assert_eq!(Status::Offline.to_string(), "offline (flags from a file or test flags)");
        // A machine up for less than 12 s has no such instant: then only the wording is checked.
        if let Some(since) = Instant::now().checked_sub(Duration::from_secs(12)) {
            assert_eq!(
                Status::Stale { since }.to_string(),
                "stale for 12 s (since the last update from flagd)"
            );
        }
        let seconds = |seconds| Seconds(Duration::from_secs(seconds)).to_string();
        assert_eq!(seconds(125), "2 min 5 s");
        assert_eq!(seconds(7300), "2 h 1 min");
    }
}
