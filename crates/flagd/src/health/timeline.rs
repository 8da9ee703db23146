//! The aggregated figures as the console shows them: evaluations per flag lately, and one
//! flag's cohorts window by window.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flag_core::CohortFigures;
use tokio::time::Instant;

use super::{HealthFigures, WINDOW};

/// One window of one flag's figures, per variant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowFigures {
    /// How long ago the window ended (0 for the current, still open one).
    pub(crate) ended_ago: Duration,
    pub(crate) variants: BTreeMap<String, CohortFigures>,
}

impl HealthFigures {
    /// Evaluations reported for each flag of `environment` (or only `only`) in the windows of
    /// the last `span`.
    pub(crate) fn evaluations_by_flag(
        &self,
        environment: &str,
        only: Option<&str>,
        span: Duration,
    ) -> HashMap<String, u64> {
        let now = Instant::now();
        let (first, last) =
            (self.window_of(now.checked_sub(span).unwrap_or(self.epoch)), self.window_of(now));
        let inner = self.inner();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for ((env, key, _variant), series) in &inner.series {
            if env == environment && only.is_none_or(|only| only == key) {
                let sum = series.windows.sum(first, last, 0);
                *counts.entry(key.clone()).or_default() += sum.evaluations;
            }
        }
        counts
    }

    /// `flag`'s figures per variant in each of the last `windows` windows, oldest first.
    pub(crate) fn timeline(&self, environment: &str, flag: &str, windows: u64) -> Vec<WindowFigures> {
        let now = Instant::now();
        let current = self.window_of(now);
        let first = current.saturating_sub(windows.saturating_sub(1));
        let mut timeline: Vec<WindowFigures> = (first..=current)
            .map(|window| {
                let end = self.epoch + WINDOW * (window as u32 + 1);
                WindowFigures { ended_ago: now.saturating_duration_since(end), variants: BTreeMap::new() }
            })
            .collect();
        let inner = self.inner();
        for ((env, key, variant), series) in &inner.series {
            if env == environment && key == flag {
                for (index, window) in (first..=current).enumerate() {
                    let sum = series.windows.sum(window, window, 0);
                    if sum != CohortFigures::default() {
                        timeline[index].variants.insert(variant.clone(), sum);
                    }
                }
            }
        }
        timeline
    }
}
