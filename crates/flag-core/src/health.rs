//! How a cohort is doing: the figures an SDK counts per (flag, variant) and flagd compares
//! between a rollout's new path and its control.
//!
//! Latency is kept as counts in fixed buckets, not samples: adding two histograms is adding
//! their counts, so SDK deltas and server windows merge without loss, and a percentile is
//! read to the precision of a bucket (each bound is about 1.5× the previous one).

/// Upper bounds of the latency buckets, in microseconds; a last, unbounded bucket holds
/// everything slower than the last bound.
pub const LATENCY_BOUNDS_US: [u64; 31] = [
    50, 75, 100, 150, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000,
    30_000, 50_000, 75_000, 100_000, 150_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000,
    2_000_000, 5_000_000, 10_000_000,
];

/// How many buckets a histogram has: one per bound and one above the last.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// Latencies counted in the buckets of [`LATENCY_BOUNDS_US`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `counts[i]`: latencies at or below `LATENCY_BOUNDS_US[i]` and above the bound before;
    /// the last: above every bound.
    pub counts: [u64; LATENCY_BUCKETS],
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { counts: [0; LATENCY_BUCKETS] }
    }
}

impl LatencyHistogram {
    /// The bucket a latency of `micros` falls in.
    pub fn bucket_of(micros: u64) -> usize {
        LATENCY_BOUNDS_US.partition_point(|bound| *bound < micros)
    }

    /// Counts one latency.
    pub fn record(&mut self, micros: u64) {
        self.counts[Self::bucket_of(micros)] += 1;
    }

    /// Adds `other`'s counts to these (saturating: counts come from clients).
    pub fn add(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// How many latencies are counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |total, count| total.saturating_add(*count))
    }

    /// The upper bound (µs) of the bucket holding the `quantile` (0 to 1) latency: `None`
    /// when nothing is counted, `u64::MAX` when it is above the last bound.
    pub fn quantile_bound_us(&self, quantile: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest count reaching it.
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen: u64 = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                return Some(LATENCY_BOUNDS_US.get(bucket).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

/// One cohort's figures over some span: how many units of work it ran, how they went, and
/// how long they took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CohortFigures {
    /// Evaluations that served this cohort's variant.
    pub evaluations: u64,
    /// Units of work reported as succeeded.
    pub successes: u64,
    /// Units of work reported as failed.
    pub errors: u64,
    /// Latencies reported.
    pub latency: LatencyHistogram,
}

impl CohortFigures {
    /// Adds `other` to these (a delta, or another client's figures).
    pub fn add(&mut self, other: &CohortFigures) {
        // Saturating: the figures come from clients, and a bad one must not wrap a total.
        self.evaluations = self.evaluations.saturating_add(other.evaluations);
        self.successes = self.successes.saturating_add(other.successes);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.add(&other.latency);
    }

    /// Outcomes reported: successes and errors.
    pub fn outcomes(&self) -> u64 {
        self.successes.saturating_add(self.errors)
    }
}

/// How one unit of work went, as the application tells the SDK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did what it should.
    Success,
    /// It failed (an error answered, an exception, a wrong result).
    Error,
}

/// One (flag, variant, revision)'s figures in a report: what a client counted on its
/// snapshot at `revision` since its previous report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CohortReport {
    /// The flag key.
    pub flag: String,
    /// The variant the cohort was served.
    pub variant: String,
    /// The client's snapshot revision the figures were counted on.
    pub revision: u64,
    /// What was counted.
    pub figures: CohortFigures,
}

/// What one client instance counted since its previous report, numbered so that flagd
/// counts each report once however often it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// Names the client process for as long as it runs.
    pub instance: String,
    /// 1 for the instance's first report, one more for each next.
    pub sequence: u64,
    /// The figures, one entry per (flag, variant, revision) that counted anything.
    pub cohorts: Vec<CohortReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_bucket_whose_bound_reaches_them() {
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(50), 0);
        assert_eq!(LatencyHistogram::bucket_of(51), 1);
        assert_eq!(LatencyHistogram::bucket_of(10_000_000), LATENCY_BUCKETS - 2);
        assert_eq!(LatencyHistogram::bucket_of(10_000_001), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn a_quantile_is_the_bound_of_the_bucket_that_reaches_its_rank() {
        let mut histogram = LatencyHistogram::default();
        assert_eq!(histogram.quantile_bound_us(0.99), None);
        for _ in 0..98 {
            histogram.record(1_000);
        }
        histogram.record(40_000);
        histogram.record(40_000);
        assert_eq!(histogram.quantile_bound_us(0.5), Some(1_000));
        assert_eq!(histogram.quantile_bound_us(0.98), Some(1_000));
        assert_eq!(histogram.quantile_bound_us(0.99), Some(50_000));
        histogram.record(60_000_000);
        assert_eq!(histogram.quantile_bound_us(1.0), Some(u64::MAX));
        let mut sum = CohortFigures { evaluations: 3, successes: 2, errors: 1, latency: histogram };
        sum.add(&CohortFigures { evaluations: 1, errors: 1, ..CohortFigures::default() });
        assert_eq!((sum.evaluations, sum.outcomes(), sum.latency.total()), (4, 4, 101));
    }
}
