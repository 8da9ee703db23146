//! SDK health reports aggregated in memory per environment, flag, variant and time window,
//! for the rollout guard to compare cohorts and for `/metrics`.
//!
//! - `windows` — one series' figures per window of [`WINDOW`], kept for [`RETENTION`].
//! - `catalog` — the flags and variants an environment has, so reports naming others are
//!   ignored (and counted) instead of growing memory.
//! - `intake` — a report from a stream, checked against the environment's flags.
//! - `render` — the bounded `/metrics` text.
//! - `timeline` — the figures as the console draws them.
//!
//! Reports are applied under one plain mutex held for microseconds per report; nothing on
//! the write path takes it, so reports never delay a write.

mod catalog;
mod intake;
mod render;
mod timeline;
mod windows;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use flag_core::{CohortFigures, HealthReport};
use tokio::time::Instant;

pub(crate) use catalog::Catalog;
pub(crate) use intake::count_report;
pub(crate) use timeline::WindowFigures;
use windows::Windows;

/// Length of one aggregation window.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);
/// How long windows are kept: the longest span the rollout guard may ask about.
pub(crate) const RETENTION: Duration = Duration::from_secs(3600);
/// The longest instance name kept (longer ones are cut).
const MAX_INSTANCE_CHARS: usize = 64;
/// Most (environment, flag, variant) series kept; reports for more are counted as dropped.
pub(crate) const MAX_SERIES: usize = 2000;

/// One environment's cohorts of one flag over a span, from [`HealthFigures::figures`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FlagFigures {
    /// Figures per variant that reported anything in the span.
    pub(crate) variants: BTreeMap<String, CohortFigures>,
    /// Distinct SDK instances that reported this flag in the span.
    pub(crate) clients: usize,
}

/// What became of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Counted.
    Counted,
    /// Its sequence was already counted for its instance (a resend after a reconnect).
    Duplicate,
}

/// Every environment's aggregated reports; see the module docs.
#[derive(Debug)]
pub(crate) struct HealthFigures {
    /// Windows are numbered from here.
    epoch: Instant,
    inner: Mutex<Inner>,
    /// Known flags per environment, replaced whole when stale. A `Mutex` of `Arc`s: read
    /// once per report, replaced once per revision the reports reach.
    catalogs: Mutex<HashMap<String, Arc<Catalog>>>,
    /// One catalog refresh at a time (for all environments), whatever the number of
    /// streams reporting: a tokio mutex because the refresh awaits a store read.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Inner {
    series: HashMap<SeriesKey, Series>,
    /// Per (environment, instance): the last sequence applied and the window it came in.
    instances: HashMap<(String, String), (u64, u64)>,
    /// Per (environment, flag): each reporting instance's first and last window.
    reporters: HashMap<(String, String), HashMap<String, (u64, u64)>>,
    /// The window of the last let-go: older figures go once per window, not per report.
    let_go_at: u64,
    pub(super) counts: Counts,
}

/// What the aggregation did, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) reports_counted: u64,
    pub(crate) reports_duplicate: u64,
    pub(crate) cohorts_unknown_flag: u64,
    pub(crate) cohorts_unknown_variant: u64,
    /// Cohorts not kept because [`MAX_SERIES`] series exist.
    pub(crate) cohorts_series_dropped: u64,
}

type SeriesKey = (String, String, String);

#[derive(Debug, Default)]
struct Series {
    /// Since flagd started: what `/metrics` reports as counters.
    total: CohortFigures,
    windows: Windows,
}

impl Default for HealthFigures {
    fn default() -> Self {
        HealthFigures {
            epoch: Instant::now(),
            inner: Mutex::default(),
            catalogs: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }
}

impl HealthFigures {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        (since.as_nanos() / WINDOW.as_nanos()) as u64
    }

    /// The figures of `flag`'s variants in `environment` over the windows that overlap
    /// `since..=until`, counted by clients whose flags were at `from_revision` or later, and
    /// how many SDK instances reported them. Spans older than [`RETENTION`] have been let go.
    pub(crate) fn figures(
        &self,
        environment: &str,
        flag: &str,
        from_revision: u64,
        since: Instant,
        until: Instant,
    ) -> FlagFigures {
        let (first, last) = (self.window_of(since), self.window_of(until));
        let inner = self.inner();
        let mut figures = FlagFigures::default();
        for ((env, key, variant), series) in &inner.series {
            if env == environment && key == flag {
                let sum = series.windows.sum(first, last, from_revision);
                if sum != CohortFigures::default() {
                    figures.variants.insert(variant.clone(), sum);
                }
            }
        }
        let key = (environment.to_owned(), flag.to_owned());
        figures.clients = inner.reporters.get(&key).map_or(0, |reporters| {
            reporters
                .values()
                .filter(|(seen_first, seen_last)| *seen_first <= last && *seen_last >= first)
                .count()
        });
        figures
    }

    /// The environment's catalog if it knows `revision` (or later).
    pub(crate) fn catalog(&self, environment: &str, revision: u64) -> Option<Arc<Catalog>> {
        let catalogs = self.catalogs.lock().unwrap_or_else(PoisonError::into_inner);
        catalogs.get(environment).filter(|catalog| catalog.revision >= revision).cloned()
    }

    /// Replaces the environment's catalog unless a newer one is there.
    pub(crate) fn set_catalog(&self, environment: &str, catalog: Arc<Catalog>) {
        let mut catalogs = self.catalogs.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = catalogs.get(environment).is_none_or(|current| current.revision < catalog.revision);
        if newer {
            catalogs.insert(environment.to_owned(), catalog);
        }
    }

    /// Held while one stream refreshes a catalog; the others wait and find it fresh.
    pub(crate) async fn refreshing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refreshing.lock().await
    }

    /// Counts `report` from `environment` in the current window, unless its sequence was
    /// already counted for its instance. Cohorts of flags or variants `catalog` does not
    /// have are ignored and counted.
    pub(crate) fn apply(&self, environment: &str, report: HealthReport, catalog: &Catalog) -> Applied {
        let HealthReport { mut instance, sequence, cohorts } = report;
        // A client names itself; a bounded name keeps one from growing server memory.
        instance
            .truncate(instance.char_indices().nth(MAX_INSTANCE_CHARS).map_or(instance.len(), |(at, _)| at));
        let mut inner = self.inner();
        let inner = &mut *inner;
        // Under the lock: windows are then added in order, as `Windows` needs.
        let window = self.window_of(Instant::now());
        let instance_key = (environment.to_owned(), instance);
        if inner.instances.get(&instance_key).is_some_and(|(last, _)| *last >= sequence) {
            inner.counts.reports_duplicate += 1;
            return Applied::Duplicate;
        }
        inner.counts.reports_counted += 1;
        for cohort in cohorts {
            let flag_core::CohortReport { flag, variant, revision, figures } = cohort;
            match catalog.knows(&flag, &variant) {
                catalog::Known::Flag => {}
                catalog::Known::NoFlag => {
                    inner.counts.cohorts_unknown_flag += 1;
                    continue;
                }
                catalog::Known::NoVariant => {
                    inner.counts.cohorts_unknown_variant += 1;
                    continue;
                }
            }
            let key = (environment.to_owned(), flag, variant);
            if !inner.series.contains_key(&key) && inner.series.len() >= MAX_SERIES {
                inner.counts.cohorts_series_dropped += 1;
                continue;
            }
            let reporters = inner.reporters.entry((key.0.clone(), key.1.clone())).or_default();
            let seen = reporters.entry(instance_key.1.clone()).or_insert((window, window));
            seen.1 = window;
            let series = inner.series.entry(key).or_default();
            series.total.add(&figures);
            series.windows.add(window, revision, &figures);
        }
        inner.instances.insert(instance_key, (sequence, window));
        if window > inner.let_go_at {
            inner.let_go_at = window;
            self.let_go(inner, window);
        }
        Applied::Counted
    }

    /// Drops what is older than [`RETENTION`]: windows, and instances and reporters not
    /// heard from since (a restarted client is a new instance; its old one would
    /// otherwise stay forever).
    fn let_go(&self, inner: &mut Inner, now: u64) {
        let kept = (RETENTION.as_nanos() / WINDOW.as_nanos()) as u64;
        // The current window and the `kept - 1` before it: `RETENTION` in all.
        let oldest = (now + 1).saturating_sub(kept);
        for series in inner.series.values_mut() {
            series.windows.let_go_before(oldest);
        }
        // A series not reported for that long (a deleted or renamed flag) gives its place
        // under `MAX_SERIES` to others.
        inner.series.retain(|_, series| !series.windows.is_empty());
        inner.instances.retain(|_, (_, seen)| *seen >= oldest);
        for reporters in inner.reporters.values_mut() {
            reporters.retain(|_, (_, last)| *last >= oldest);
        }
    }

    /// The `/metrics` text of the aggregated figures.
    pub(crate) fn render(&self) -> String {
        let inner = self.inner();
        render::render(inner.series.iter().map(|(key, series)| (key, &series.total)), inner.counts)
    }
}

#[cfg(test)]
mod tests;
