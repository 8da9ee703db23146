//! Reports what the hot path counted, and the client's health, to the `metrics` crate.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `flag_sdk_evaluations_total` | counter | `flag`, `variant`; both `""` for evaluations that served no variant (missing flag, evaluation error) |
//! | `flag_sdk_stream_status` | gauge | `environment`; 0 ready, 1 stale, 2 offline |
//! | `flag_sdk_snapshot_revision` | gauge | `environment` |
//! | `flag_sdk_snapshot_age_seconds` | gauge | `environment`; since the flags were last known current |
//! | `flag_sdk_apply_seconds` | histogram | none; time to apply one snapshot or change (see [`SyncStats`](crate::SyncStats)) |
//! | `flag_sdk_dark_launch_*` | see [`DarkLaunch`](crate::DarkLaunch) | `flag` |

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::shared::{Live, Shared};
use crate::status::Status;

/// Remembers what was already reported, so each flush reports only the difference.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    /// A `Mutex`: the timer task and [`Client::flush_metrics`](crate::Client::flush_metrics)
    /// may flush at once; neither is on the evaluation path.
    counted: Mutex<Vec<Counted>>,
}

/// A state whose counts are being reported.
#[derive(Debug)]
struct Counted {
    live: Arc<Live>,
    /// Its totals at the last flush.
    last: Vec<u64>,
    /// Flushes since it was replaced (`None` while live). A replaced state is reported at two
    /// more flushes: evaluations that loaded it just before the swap may still be counting.
    retired_flushes: Option<u8>,
}

impl Counted {
    fn new(live: Arc<Live>) -> Counted {
        let last = vec![0; live.counters.labels().len()];
        Counted { live, last, retired_flushes: None }
    }
}

impl Flusher {
    /// Reports counts and gauges for `shared` now.
    pub(crate) fn flush(&self, shared: &Shared) {
        let Ok(mut counted) = self.counted.lock() else { return };
        let retired = std::mem::take(&mut *shared.retired.lock().unwrap_or_else(PoisonError::into_inner));
        for state in retired {
            match counted.iter_mut().find(|c| Arc::ptr_eq(&c.live, &state)) {
                Some(known) => known.retired_flushes = Some(0),
                None => counted.push(Counted { retired_flushes: Some(0), ..Counted::new(state) }),
            }
        }
        let live = shared.live.load_full();
        if !counted.iter().any(|c| Arc::ptr_eq(&c.live, &live)) {
            counted.push(Counted::new(Arc::clone(&live)));
        }
        for state in counted.iter_mut() {
            state.last = report(&state.live, &state.last);
            if let Some(flushes) = state.retired_flushes.as_mut() {
                *flushes += 1;
            }
        }
        counted.retain(|state| state.retired_flushes.is_none_or(|flushes| flushes < 2));
        drop(counted);

        let status = *shared.status.borrow();
        let environment = shared.environment.clone();
        metrics::gauge!("flag_sdk_stream_status", "environment" => environment.clone()).set(status.gauge());
        metrics::gauge!("flag_sdk_snapshot_revision", "environment" => environment.clone())
            .set(live.revision as f64);
        let fresh_at = match status {
            Status::Ready | Status::Offline => Instant::now(),
            Status::Stale { since } => since,
        };
        let age = fresh_at.elapsed();
        metrics::gauge!("flag_sdk_snapshot_age_seconds", "environment" => environment).set(age.as_secs_f64());
    }
}

/// Reports the growth of each slot since `last`; returns the new totals.
fn report(live: &Live, last: &[u64]) -> Vec<u64> {
    let totals = live.counters.totals();
    for ((flag, variant), (total, before)) in live.counters.labels().iter().zip(totals.iter().zip(last)) {
        let grown = total.wrapping_sub(*before);
        if grown > 0 {
            metrics::counter!(
                "flag_sdk_evaluations_total",
                "flag" => flag.to_string(),
                "variant" => variant.to_string()
            )
            .increment(grown);
        }
    }
    totals
}

/// Flushes every `interval` while the client exists.
pub(crate) async fn flush_every(shared: Weak<Shared>, flusher: Arc<Flusher>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        flusher.flush(&shared);
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Context, Evaluate, Flag, FlagSet};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;
    use crate::model::Model;

    fn evaluations(
        snapshot: &[(
            metrics_util::CompositeKey,
            Option<metrics::Unit>,
            Option<metrics::SharedString>,
            DebugValue,
        )],
        flag: &str,
        variant: &str,
    ) -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == "flag_sdk_evaluations_total")
            .filter(|(key, ..)| {
                let labels: Vec<_> =
                    key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
                labels.contains(&("flag".into(), flag.into()))
                    && labels.contains(&("variant".into(), variant.into()))
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn each_flush_reports_the_evaluations_since_the_last_including_a_replaced_snapshot() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let shared = Shared::new("production".into(), Status::Offline);
            let flusher = Flusher::default();
            let set = FlagSet { flags: vec![Flag::rollout("all", 100.0).unwrap()], segments: vec![] };
            shared.install(Model::from_set(set.clone(), 1, &Model::default()), 1).unwrap();
            for _ in 0..3 {
                shared.live.load().is_enabled("all", &Context::new("u"));
            }
            flusher.flush(&shared);
            assert_eq!(evaluations(&snapshotter.snapshot().into_vec(), "all", "on"), 3);

            // Counted on the old snapshot after the last flush, then the snapshot is replaced.
            let old = shared.live.load_full();
            old.is_enabled("all", &Context::new("u"));
            shared.install(Model::from_set(set, 2, &Model::default()), 2).unwrap();
            shared.live.load().is_enabled("all", &Context::new("u"));
            flusher.flush(&shared);
            // A late evaluation on the replaced snapshot is still reported one flush later.
            old.is_enabled("all", &Context::new("u"));
            flusher.flush(&shared);
            // The snapshotter reports what was added since its previous snapshot.
            assert_eq!(evaluations(&snapshotter.snapshot().into_vec(), "all", "on"), 3);
        });
    }

    #[test]
    fn states_that_come_and_go_between_two_flushes_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let shared = Shared::new("production".into(), Status::Offline);
            let flusher = Flusher::default();
            let set = FlagSet { flags: vec![Flag::rollout("all", 100.0).unwrap()], segments: vec![] };
            // Five changes between two flushes, three evaluations on each state.
            for revision in 1..=5 {
                shared.install(Model::from_set(set.clone(), revision, &Model::default()), revision).unwrap();
                for _ in 0..3 {
                    shared.live.load().is_enabled("all", &Context::new("u"));
                }
            }
            flusher.flush(&shared);
            flusher.flush(&shared);
            flusher.flush(&shared);
            assert_eq!(evaluations(&snapshotter.snapshot().into_vec(), "all", "on"), 15);
            assert!(flusher.counted.lock().unwrap().len() == 1, "replaced states are let go");
        });
    }
}
