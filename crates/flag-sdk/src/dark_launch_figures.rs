//! What the dark-launch helper counts per flag — shadow runs, mismatches, candidate errors
//! and panics, skipped runs by reason, control vs candidate time, shadow work in flight —
//! for [`Client::dark_launch_stats`](crate::Client::dark_launch_stats) and the `metrics` crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How a candidate's result compared with the control's.
pub(crate) enum Verdict {
    Same,
    Different,
    CandidateError,
}

impl Verdict {
    pub(crate) fn of(same: bool) -> Verdict {
        if same { Verdict::Same } else { Verdict::Different }
    }

    /// For `Result` paths: a candidate `Err` is a candidate error, not a mismatch; `Ok`
    /// values are compared (`control` is `None` when the control failed).
    pub(crate) fn of_results<T: PartialEq, E>(control: Option<&T>, candidate: &Result<T, E>) -> Verdict {
        match (control, candidate) {
            (_, Err(_)) => Verdict::CandidateError,
            (Some(a), Ok(b)) => Verdict::of(a == b),
            (None, Ok(_)) => Verdict::Different,
        }
    }
}

/// Why a shadow run was not compared.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Skip {
    /// No room to run it: the shadow queue was full (or no tokio runtime to spawn on).
    Overloaded,
    /// Closures: not started within the budget; futures: not done within it.
    OverBudget,
    /// The flag changed (a kill, a new split) between the call and the candidate's start.
    FlagChanged,
}

impl Skip {
    fn label(self) -> &'static str {
        match self {
            Skip::Overloaded => "overloaded",
            Skip::OverBudget => "over_budget",
            Skip::FlagChanged => "flag_changed",
        }
    }
}

/// How a shadow run ended.
pub(crate) enum Outcome<T> {
    /// Returned (or panicked), after this long.
    Finished(std::thread::Result<T>, Duration),
    Skipped(Skip),
}

/// What a process has seen of one flag's dark launch, from
/// [`Client::dark_launch_stats`](crate::Client::dark_launch_stats).
///
/// Shadow runs of [`run`](crate::DarkLaunch::run) finish after the call returned: wait for
/// `pending` to reach 0 before reading the other figures as final.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DarkLaunchStats {
    /// Candidates that finished in the shadow and were judged (compared, errored or panicked).
    pub shadow_runs: u64,
    /// Of those, results that differed from the control's.
    pub mismatches: u64,
    /// Candidates that returned an error (`try_run`, `try_run_async`).
    pub candidate_errors: u64,
    /// Candidates that panicked.
    pub candidate_panics: u64,
    /// Candidates dropped for the budget: closures not started within it (the shadow threads
    /// were behind), futures not done within it (aborted).
    pub over_budget: u64,
    /// Shadow runs skipped because there was no room: the shadow queue was full (or, for
    /// futures, no tokio runtime to spawn on).
    pub overloaded: u64,
    /// Shadow runs dropped before they started because the flag had changed since the call
    /// (e.g. it was killed).
    pub flag_changed: u64,
    /// Shadow runs queued or running now.
    pub pending: u64,
    /// Total time of the controls of the `shadow_runs`, in microseconds.
    pub control_micros: u64,
    /// Total time of the candidates of the `shadow_runs`, in microseconds: the two totals
    /// cover the same calls, so their means compare like for like.
    pub candidate_micros: u64,
}

impl DarkLaunchStats {
    /// Mismatches per finished shadow run (0 when none ran).
    pub fn mismatch_rate(&self) -> f64 {
        if self.shadow_runs == 0 { 0.0 } else { self.mismatches as f64 / self.shadow_runs as f64 }
    }
}

/// Per-flag figures. Atomics: any thread may finish a shadow run; this is not the evaluation
/// path, and each update accompanies a whole code path's run.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    shadow_runs: AtomicU64,
    mismatches: AtomicU64,
    candidate_errors: AtomicU64,
    candidate_panics: AtomicU64,
    over_budget: AtomicU64,
    overloaded: AtomicU64,
    flag_changed: AtomicU64,
    /// Decremented (`Release`) only after the run's other figures are written, so a reader
    /// that sees it drop (`Acquire`) sees them.
    pending: AtomicU64,
    /// Nanoseconds, not microseconds: sub-microsecond paths would otherwise sum to 0.
    control_nanos: AtomicU64,
    candidate_nanos: AtomicU64,
}

/// One shadow run in flight: counted in `pending` until dropped, whether the run finished,
/// was skipped, or was dropped unrun (a refused job, an aborted task).
#[derive(Debug)]
pub(crate) struct Pending(Arc<Figures>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Release);
    }
}

impl Figures {
    pub(crate) fn start(self: &Arc<Self>) -> Pending {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Pending(Arc::clone(self))
    }

    pub(crate) fn skipped(&self, key: &str, skip: Skip) {
        let counter = match skip {
            Skip::Overloaded => &self.overloaded,
            Skip::OverBudget => &self.over_budget,
            Skip::FlagChanged => &self.flag_changed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("flag_sdk_dark_launch_skipped_total", "flag" => key.to_owned(), "reason" => skip.label())
            .increment(1);
    }

    /// Counts a shadow run's end; `control` is what the judge compares the candidate with.
    /// Answers how the candidate did for the cohort's health figures — an error if it
    /// panicked, failed or disagreed with the control — and how long it took; `None` when
    /// it did not run.
    pub(crate) fn record<T, V>(
        &self,
        key: &str,
        outcome: Outcome<T>,
        control_took: Duration,
        control: &V,
        judge: impl FnOnce(&V, &T) -> Verdict,
    ) -> Option<(flag_core::Outcome, Duration)> {
        let (result, took) = match outcome {
            Outcome::Skipped(skip) => {
                self.skipped(key, skip);
                return None;
            }
            Outcome::Finished(result, took) => (result, took),
        };
        let count = |counter: &AtomicU64, name: &'static str| {
            counter.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(name, "flag" => key.to_owned()).increment(1);
        };
        count(&self.shadow_runs, "flag_sdk_dark_launch_shadow_runs_total");
        for (total, took, path) in
            [(&self.control_nanos, control_took, "control"), (&self.candidate_nanos, took, "candidate")]
        {
            total.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
            metrics::histogram!("flag_sdk_dark_launch_seconds", "flag" => key.to_owned(), "path" => path)
                .record(took.as_secs_f64());
        }
        match result {
            Err(_panic) => count(&self.candidate_panics, "flag_sdk_dark_launch_candidate_panics_total"),
            Ok(candidate) => match judge(control, &candidate) {
                Verdict::Same => return Some((flag_core::Outcome::Success, took)),
                Verdict::Different => count(&self.mismatches, "flag_sdk_dark_launch_mismatches_total"),
                Verdict::CandidateError => {
                    count(&self.candidate_errors, "flag_sdk_dark_launch_candidate_errors_total")
                }
            },
        }
        Some((flag_core::Outcome::Error, took))
    }

    fn stats(&self) -> DarkLaunchStats {
        // `pending` first: when it reads 0, the finished runs' figures below are complete.
        let pending = self.pending.load(Ordering::Acquire);
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DarkLaunchStats {
            shadow_runs: read(&self.shadow_runs),
            mismatches: read(&self.mismatches),
            candidate_errors: read(&self.candidate_errors),
            candidate_panics: read(&self.candidate_panics),
            over_budget: read(&self.over_budget),
            overloaded: read(&self.overloaded),
            flag_changed: read(&self.flag_changed),
            pending,
            control_micros: read(&self.control_nanos) / 1000,
            candidate_micros: read(&self.candidate_nanos) / 1000,
        }
    }
}

/// Figures for every dark-launched flag of a client.
#[derive(Debug, Default)]
pub(crate) struct DarkLaunches {
    /// `RwLock`: a flag's entry is created once and read by every later call.
    by_flag: RwLock<HashMap<String, Arc<Figures>>>,
}

impl DarkLaunches {
    pub(crate) fn get(&self, key: &str) -> Arc<Figures> {
        if let Some(figures) = self.by_flag.read().ok().and_then(|flags| flags.get(key).cloned()) {
            return figures;
        }
        match self.by_flag.write() {
            Ok(mut flags) => Arc::clone(flags.entry(key.to_owned()).or_default()),
            // Poisoned: count into a detached entry rather than fail the caller's request.
            Err(_) => Arc::default(),
        }
    }

    pub(crate) fn stats(&self, key: &str) -> DarkLaunchStats {
        self.by_flag.read().ok().and_then(|flags| flags.get(key).map(|f| f.stats())).unwrap_or_default()
    }
}
