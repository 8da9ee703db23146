// HOT PATH (`HealthCounters::record`): runs on every recorded outcome or latency. No
// allocation, no lock, no write to memory another thread writes — except on the overflow
// row, as for the evaluation counters.
//! Outcomes and latencies per flag and variant, counted like evaluations (see `counters`):
//! one row of figures per thread shard, each row written only by the thread owning it.
//!
//! Each slot of a row holds [`FIGURES`] counts: successes, errors and one per latency
//! bucket of flag-core's fixed histogram. A reporter sums the rows and sends the growth.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use flag_core::{CohortFigures, LATENCY_BUCKETS, LatencyHistogram, Outcome};

use crate::counters::{self, current_shard};

/// Counts per slot: successes, errors, then the latency buckets.
pub(crate) const FIGURES: usize = 2 + LATENCY_BUCKETS;
const SUCCESSES: usize = 0;
const ERRORS: usize = 1;
const LATENCY: usize = 2;

/// Counts per cache line.
const PER_LINE: usize = 8;

/// Per-snapshot outcome and latency counters; see the module docs.
#[derive(Debug)]
pub(crate) struct HealthCounters {
    /// One row per thread shard (the last shared by the overflow threads), each made the
    /// first time a thread of that shard records: a slot holds [`FIGURES`] counts, so rows
    /// for every possible shard of a large environment would be hundreds of megabytes, while
    /// only the threads that record need one. A `OnceLock`: made once, then read freely.
    rows: Box<[OnceLock<Row>]>,
    /// Counts per row: `slots × FIGURES`, rounded up to a whole cache line.
    stride: usize,
    /// Rows owned by one thread each; row `exclusive` is the shared overflow row.
    exclusive: usize,
}

/// One shard's counts.
#[derive(Debug)]
struct Row {
    /// `stride` counts from `base`; atomics so the reporter can read while the owner writes.
    counts: Box<[AtomicU64]>,
    /// Where the counts start: on a 64-byte boundary, so no other allocation shares their
    /// cache lines.
    base: usize,
}

impl Row {
    #[cold]
    fn new(stride: usize) -> Row {
        let counts: Box<[AtomicU64]> = (0..stride + PER_LINE - 1).map(|_| AtomicU64::new(0)).collect();
        let misalignment = counts.as_ptr().addr() % 64 / 8;
        Row { counts, base: (PER_LINE - misalignment) % PER_LINE }
    }
}

impl HealthCounters {
    pub(crate) fn new(slots: usize, exclusive: usize) -> HealthCounters {
        let stride = (slots * FIGURES).div_ceil(PER_LINE) * PER_LINE;
        HealthCounters { rows: (0..=exclusive).map(|_| OnceLock::new()).collect(), stride, exclusive }
    }

    /// Makes the rows `previous` has, so the threads that recorded on the snapshot this one
    /// replaces record on this one without allocating.
    pub(crate) fn prepare_like(&self, previous: &HealthCounters) {
        for (row, before) in self.rows.iter().zip(previous.rows.iter()) {
            if before.get().is_some() {
                row.get_or_init(|| Row::new(self.stride));
            }
        }
    }

    /// Counts an outcome and/or a latency (µs) for `slot`.
    #[inline]
    pub(crate) fn record(&self, slot: u32, outcome: Option<Outcome>, latency_us: Option<u64>) {
        let shard = current_shard().min(self.exclusive);
        let Some(row) = self.rows.get(shard) else { return };
        let row = row.get_or_init(|| Row::new(self.stride));
        let start = row.base + slot as usize * FIGURES;
        let exclusive = shard < self.exclusive;
        if let Some(outcome) = outcome {
            let figure = match outcome {
                Outcome::Success => SUCCESSES,
                Outcome::Error => ERRORS,
            };
            bump(row, start + figure, exclusive);
        }
        if let Some(micros) = latency_us {
            bump(row, start + LATENCY + LatencyHistogram::bucket_of(micros), exclusive);
        }
    }

    /// Each slot's figures summed over the rows (evaluations left at 0: those are the
    /// evaluation counters').
    pub(crate) fn totals(&self, slots: usize) -> Vec<CohortFigures> {
        let mut totals = vec![CohortFigures::default(); slots];
        for row in self.rows.iter().filter_map(OnceLock::get) {
            let counts = &row.counts[row.base..row.base + self.stride];
            for (total, counts) in totals.iter_mut().zip(counts.chunks_exact(FIGURES)) {
                let read = |index: usize| counts[index].load(Ordering::Relaxed);
                total.successes = total.successes.wrapping_add(read(SUCCESSES));
                total.errors = total.errors.wrapping_add(read(ERRORS));
                for (bucket, total) in total.latency.counts.iter_mut().enumerate() {
                    *total = total.wrapping_add(read(LATENCY + bucket));
                }
            }
        }
        totals
    }
}

#[inline]
fn bump(row: &Row, index: usize, exclusive: bool) {
    if let Some(count) = row.counts.get(index) {
        counters::bump(count, exclusive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_latencies_add_up_across_threads_and_the_overflow_row() {
        let exclusive = 2;
        let counters = HealthCounters::new(3, exclusive);
        // More threads than exclusive rows: some may share the overflow row, wherever the
        // process's shard numbering stands.
        std::thread::scope(|scope| {
            for _ in 0..exclusive + 3 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counters.record(2, Some(Outcome::Success), Some(120));
                        counters.record(2, Some(Outcome::Error), None);
                        counters.record(1, None, Some(20_000_000));
                    }
                });
            }
        });
        let totals = counters.totals(3);
        let threads = (exclusive + 3) as u64;
        assert_eq!((totals[2].successes, totals[2].errors), (threads * 1000, threads * 1000));
        assert_eq!(totals[2].latency.counts[LatencyHistogram::bucket_of(120)], threads * 1000);
        assert_eq!(totals[1].latency.counts[LATENCY_BUCKETS - 1], threads * 1000);
        assert_eq!(totals[0], CohortFigures::default());
    }
}
