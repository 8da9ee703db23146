// HOT PATH (`EvalCounters::record`): runs inside every evaluation. No allocation, no lock,
// no write to memory another thread writes — except on the overflow row, which `record`
// justifies.
//! Evaluation counts per flag and variant, without contention.
//!
//! Each snapshot carries its own table of counters: one slot per (flag, variant), one row
//! of slots per shard. A thread owns a shard exclusively (its row is written by nobody
//! else, so an increment is a plain load and store, not a locked read-modify-write on a
//! shared cache line); the background flusher sums the rows and reports the differences to
//! the `metrics` crate. Threads beyond the exclusive shards (the cores plus a few, see
//! `shards::exclusive`) share one overflow row and pay for an atomic add.
//!
//! flag-core numbers every (flag, variant) pair of a snapshot densely
//! ([`VariantIndex`]) and an evaluation answers the number of the variant it served, so
//! the slots are laid out in that order: a variant's slot is its index plus one (slot 0
//! counts evaluations that served none), found without a lookup of any kind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use flag_core::{Snapshot, VariantIndex};

use crate::health_counters::HealthCounters;

/// Slot counting evaluations that served no variant (missing flag, evaluation error).
pub(crate) const NO_VARIANT: u32 = 0;

/// A flag's first slot and its variant names in slot order.
type FlagSlots = (u32, Vec<Box<str>>);

/// Per-snapshot evaluation counters; see the module docs.
#[derive(Debug)]
pub(crate) struct EvalCounters {
    /// `(flag key, variant)` of each slot; slot 0 is [`NO_VARIANT`], slot `i + 1` the
    /// snapshot's variant of index `i`.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// Flag key → (first slot, variant names in order): for variants known by name (a dark
    /// launch's cohorts), off the evaluation path.
    by_key: HashMap<Box<str>, FlagSlots>,
    /// `rows × stride` counts from `base`; row `r` is written only by the thread owning shard
    /// `r`, except the last (overflow) row. Atomics so the flusher can read while owners
    /// write.
    counts: Box<[AtomicU64]>,
    /// Where row 0 starts: the first count on a 64-byte boundary, so that rows of whole
    /// cache lines never share one (the allocation itself is only 8-byte aligned).
    base: usize,
    /// Slots per row, rounded up to a whole cache line.
    stride: usize,
    /// Rows owned by one thread each ([`shards::exclusive`]); row `exclusive` is the overflow.
    exclusive: usize,
    /// Outcomes and latencies per slot, made on the first recording (or, see
    /// [`prepare_health`](Self::prepare_health), with the snapshot): applications that never
    /// record pay nothing for them. A `OnceLock`: made once, then read without writes.
    health: OnceLock<HealthCounters>,
}

/// Counts per cache line.
const PER_LINE: usize = 8;

impl EvalCounters {
    /// Counters for every (flag, variant) of `snapshot`, in its [`VariantIndex`] order.
    pub(crate) fn new(snapshot: &Snapshot) -> EvalCounters {
        let mut labels: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(1 + snapshot.variant_count());
        labels.push(("".into(), "".into()));
        labels.extend(snapshot.variants().map(|(key, variant)| (Box::from(key), Box::from(variant))));
        let mut by_key: HashMap<Box<str>, FlagSlots> = HashMap::with_capacity(snapshot.len());
        for (slot, (key, variant)) in labels.iter().enumerate().skip(1) {
            let (_, names) = by_key.entry(key.clone()).or_insert_with(|| (slot as u32, Vec::new()));
            names.push(variant.clone());
        }
        let stride = labels.len().div_ceil(PER_LINE) * PER_LINE;
        let exclusive = shards::exclusive();
        let counts: Box<[AtomicU64]> =
            (0..(exclusive + 1) * stride + PER_LINE - 1).map(|_| AtomicU64::new(0)).collect();
        let misalignment = counts.as_ptr().addr() % 64 / 8;
        let base = (PER_LINE - misalignment) % PER_LINE;
        EvalCounters {
            labels: labels.into_boxed_slice(),
            by_key,
            counts,
            base,
            stride,
            exclusive,
            health: OnceLock::new(),
        }
    }

    /// The slot of the variant an evaluation served (its [`VariantIndex`]); `None` when it
    /// served none.
    #[inline]
    pub(crate) fn variant_slot(&self, served: Option<VariantIndex>) -> Option<u32> {
        served.map(slot_of)
    }

    /// The slot of `key`'s variant named `variant`, by name (off the evaluation path).
    pub(crate) fn slot_by_name(&self, key: &str, variant: &str) -> Option<u32> {
        let (first, names) = self.by_key.get(key)?;
        names.iter().position(|name| **name == *variant).map(|position| first + position as u32)
    }

    /// The outcome and latency counters, made now if this is the first recording.
    #[inline]
    pub(crate) fn health(&self) -> &HealthCounters {
        self.health.get_or_init(|| HealthCounters::new(self.labels.len(), self.exclusive))
    }

    /// The outcome and latency counters if anything was recorded on this state.
    pub(crate) fn health_if_used(&self) -> Option<&HealthCounters> {
        self.health.get()
    }

    /// Makes the outcome counters ahead of the first recording, with the rows `previous`
    /// (the replaced snapshot's) has: a snapshot that replaces one whose outcomes were
    /// recorded gets them at install, so recording on it never allocates.
    pub(crate) fn prepare_health(&self, previous: &HealthCounters) {
        self.health().prepare_like(previous);
    }

    /// Counts one evaluation that served the variant `served` (`None`: no variant).
    #[inline]
    pub(crate) fn record(&self, served: Option<VariantIndex>) {
        let slot = served.map_or(NO_VARIANT, slot_of);
        // Rows are claimed up to `exclusive` (the overflow row), never beyond; the slot is
        // below `labels.len()` for the snapshot these counters were made for, so this finds
        // a count unless a caller passed another snapshot's index.
        let shard = current_shard();
        let Some(count) = self.counts.get(self.base + shard * self.stride + slot as usize) else {
            return;
        };
        bump(count, shard < self.exclusive);
    }

    /// The total count of each slot, summed over the shards.
    pub(crate) fn totals(&self) -> Vec<u64> {
        let mut totals = vec![0u64; self.labels.len()];
        for row in self.counts[self.base..].chunks_exact(self.stride) {
            for (total, count) in totals.iter_mut().zip(row) {
                *total = total.wrapping_add(count.load(Ordering::Relaxed));
            }
        }
        totals
    }

    /// `(flag key, variant)` of each slot, in slot order.
    pub(crate) fn labels(&self) -> &[(Box<str>, Box<str>)] {
        &self.labels
    }
}

/// The slot counting a variant: its index, after [`NO_VARIANT`].
#[inline]
fn slot_of(served: VariantIndex) -> u32 {
    // Below the snapshot's variant count, itself held in a `u32` by flag-core.
    served.get() as u32 + 1
}

/// Adds one to `count` of a row: `exclusive` when the calling thread is its only writer.
#[inline]
pub(crate) fn bump(count: &AtomicU64, exclusive: bool) {
    if exclusive {
        // This thread is the only writer of its row: no read-modify-write is needed.
        count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    } else {
        // The overflow row, shared by every thread beyond the exclusive rows: an atomic
        // add, the one shared write on the hot path. Kept, not removed, because such
        // threads are rare by design — the rows are the cores plus four (8 to 64), and an
        // application evaluates on its runtime's workers, one per core — and dropping their
        // counts instead would make the metrics lie exactly when the process is busiest.
        // Its cost: bench `eval/ours/rollout_key_overflow_row` against
        // `eval/ours/rollout_key` (benches/benches/eval.rs).
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The calling thread's counter row (shared with the outcome counters).
#[inline]
pub(crate) fn current_shard() -> usize {
    shards::current()
}

/// Which counter row each thread writes.
mod shards {
    use std::cell::Cell;

    use super::*;

    /// Rows owned by one thread each: the machine's cores plus a few (a runtime's workers and
    /// some blocking threads), at least 8 and at most 64 — each row costs 8 bytes per
    /// (flag, variant) in every snapshot. Threads beyond share the overflow row.
    pub(super) fn exclusive() -> usize {
        static EXCLUSIVE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *EXCLUSIVE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(8, std::num::NonZero::get);
            (cores + 4).clamp(8, 64)
        })
    }

    /// Rows released by threads that ended, for the next thread to take.
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// Owns a row for as long as its thread lives.
    struct Claim(usize);

    impl Claim {
        fn take() -> Claim {
            let reused = FREE.lock().ok().and_then(|mut free| free.pop());
            Claim(reused.unwrap_or_else(|| {
                let next = NEXT.fetch_add(1, Ordering::Relaxed);
                next.min(exclusive())
            }))
        }
    }

    impl Drop for Claim {
        fn drop(&mut self) {
            if self.0 < exclusive()
                && let Ok(mut free) = FREE.lock()
            {
                free.push(self.0);
            }
        }
    }

    thread_local! {
        /// The row, read on every evaluation: a const-initialised `Cell` without a
        /// destructor is a plain thread-local load.
        static ROW: Cell<usize> = const { Cell::new(UNCLAIMED) };
        /// Gives the row back when the thread ends; touched only when claiming.
        static CLAIM: Claim = Claim::take();
    }

    const UNCLAIMED: usize = usize::MAX;

    /// The calling thread's row; the overflow row while the thread is being torn down.
    #[inline]
    pub(super) fn current() -> usize {
        let row = ROW.get();
        if row != UNCLAIMED { row } else { claim() }
    }

    #[cold]
    fn claim() -> usize {
        let row = CLAIM.try_with(|claim| claim.0).unwrap_or_else(|_| exclusive());
        ROW.set(row);
        row
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Context, Evaluate, Flag, FlagSet};

    use super::*;
    use crate::model::Model;

    #[test]
    fn counts_each_flag_and_variant_across_threads() {
        let model = Model::from_set(
            FlagSet {
                flags: vec![Flag::rollout("half", 50.0).unwrap(), Flag::rollout("all", 100.0).unwrap()],
                segments: vec![],
            },
            1,
            &Model::default(),
        );
        let snapshot = model.compile(&flag_core::Snapshot::empty()).unwrap();
        let counters = EvalCounters::new(&snapshot);
        let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
        let mut expected_on = 0;
        for user in &users {
            expected_on += u64::from(snapshot.is_enabled("half", &Context::new(user)));
        }
        // More threads than the exclusive rows, on any machine, each holding its row until
        // every one has claimed one: at least four of them count on the overflow row.
        let threads = shards::exclusive() + 4;
        let all_claimed = std::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    counters.record(snapshot.evaluate_indexed("missing", &Context::new("claim")).1);
                    all_claimed.wait();
                    for user in &users {
                        for key in ["half", "all", "missing"] {
                            counters.record(snapshot.evaluate_indexed(key, &Context::new(user)).1);
                        }
                    }
                });
            }
        });
        let totals = counters.totals();
        let count = |key: &str, variant: &str| {
            let slot = counters.labels().iter().position(|(k, v)| &**k == key && &**v == variant).unwrap();
            totals[slot]
        };
        let threads = threads as u64;
        assert_eq!(count("half", "on"), threads * expected_on);
        assert_eq!(count("half", "off"), threads * (1000 - expected_on));
        assert_eq!(count("all", "on"), threads * 1000);
        // 1000 evaluations of "missing" per thread, and the one that claimed its row.
        assert_eq!(totals[NO_VARIANT as usize], threads * 1001);
        let overflow = counters.base + counters.exclusive * counters.stride;
        let overflow_row = &counters.counts[overflow..overflow + counters.stride];
        assert!(
            overflow_row.iter().any(|count| count.load(Ordering::Relaxed) > 0),
            "the overflow row counted"
        );
    }
}
