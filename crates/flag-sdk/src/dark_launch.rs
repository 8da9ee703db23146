//! The dark-launch helper: serve the old path, exercise the new one in the shadow for the
//! `dark` cohort, compare, and count.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use flag_core::{Context, LaunchStage};

use crate::client::Client;
use crate::shadow::{CatchUnwind, Outcome, spawn_shadow};

/// How long a `dark` response may wait for the candidate after the control has answered,
/// unless [`DarkLaunch::budget`] says otherwise.
pub const DEFAULT_SHADOW_BUDGET: Duration = Duration::from_millis(50);

/// One dark-launched call, from [`Client::dark_launch`]: the context's cohort is read once,
/// when it is made.
///
/// - `on`: the candidate runs and its result is returned (its panics are the caller's, as
///   on any code path).
/// - `off` (also a missing or killed flag): only the control runs.
/// - `dark`: the control's result is returned; the candidate runs beside it, its panics and
///   errors are contained, and the results are compared. The response waits for the
///   candidate at most the [budget](Self::budget) after the control answered; a later
///   candidate is counted as over budget and its result dropped.
///
/// Killing the flag moves everyone to `off`: the next call runs no shadow.
///
/// Figures ([`Client::dark_launch_stats`] and the `metrics` crate, labelled by `flag`):
/// `flag_sdk_dark_launch_shadow_runs_total`, `_mismatches_total`, `_candidate_errors_total`,
/// `_candidate_panics_total`, `_skipped_total` (`reason` = `over_budget` or `overloaded`), and
/// the histogram `flag_sdk_dark_launch_seconds` (`path` = `control` or `candidate`).
#[derive(Debug)]
#[must_use]
pub struct DarkLaunch<'a> {
    client: &'a Client,
    key: &'a str,
    stage: LaunchStage,
    budget: Duration,
}

/// How a shadow run compared with the control.
enum Verdict {
    Same,
    Different,
    CandidateError,
}

impl<'a> DarkLaunch<'a> {
    pub(crate) fn new(client: &'a Client, key: &'a str, ctx: &Context<'_>) -> DarkLaunch<'a> {
        let stage = client.launch_stage(key, ctx);
        DarkLaunch { client, key, stage, budget: DEFAULT_SHADOW_BUDGET }
    }

    /// The context's cohort.
    pub fn stage(&self) -> LaunchStage {
        self.stage
    }

    /// How long a `dark` response may wait for the candidate after the control answered.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Runs closures; results compared with `PartialEq`. The candidate runs on a shadow
    /// thread for `dark` users, hence `Send + 'static` (move what it needs into it).
    pub fn run<T, C, N>(self, control: C, candidate: N) -> T
    where
        T: PartialEq + Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
    {
        self.run_with(control, candidate, |a, b| a == b)
    }

    /// [`run`](Self::run) with a custom comparison (`same(control, candidate)`).
    pub fn run_with<T, C, N>(self, control: C, candidate: N, same: impl FnOnce(&T, &T) -> bool) -> T
    where
        T: Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
    {
        self.run_judged(
            control,
            candidate,
            |c, n| if same(c, n) { Verdict::Same } else { Verdict::Different },
        )
    }

    /// [`run`](Self::run) for fallible paths: a candidate `Err` counts as a candidate error
    /// (not a mismatch); `Ok` results are compared with `PartialEq`.
    pub fn try_run<T, E, C, N>(self, control: C, candidate: N) -> Result<T, E>
    where
        T: PartialEq + Send + 'static,
        E: Send + 'static,
        C: FnOnce() -> Result<T, E>,
        N: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.run_judged(control, candidate, judge_results)
    }

    fn run_judged<T, C, N>(self, control: C, candidate: N, judge: impl FnOnce(&T, &T) -> Verdict) -> T
    where
        T: Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
    {
        match self.stage {
            LaunchStage::On => candidate(),
            LaunchStage::Off => control(),
            LaunchStage::Dark => {
                let figures = self.client.shared.dark_launches.get(self.key);
                let Some(shadow) = spawn_shadow(candidate) else {
                    figures.skipped(self.key, "overloaded");
                    return control();
                };
                let started = Instant::now();
                let control_result = control();
                figures.control_took(self.key, started.elapsed());
                let outcome = shadow.wait(self.budget);
                figures.judge(self.key, outcome, &control_result, judge);
                control_result
            }
        }
    }

    /// Runs futures; results compared with `PartialEq`. For `dark` users both are polled
    /// in this task, side by side; the candidate is dropped if it is not done within the
    /// budget after the control.
    pub async fn run_async<T: PartialEq>(
        self,
        control: impl Future<Output = T>,
        candidate: impl Future<Output = T>,
    ) -> T {
        self.run_async_with(control, candidate, |a, b| a == b).await
    }

    /// [`run_async`](Self::run_async) with a custom comparison.
    pub async fn run_async_with<T>(
        self,
        control: impl Future<Output = T>,
        candidate: impl Future<Output = T>,
        same: impl FnOnce(&T, &T) -> bool,
    ) -> T {
        self.run_async_judged(
            control,
            candidate,
            |c, n| if same(c, n) { Verdict::Same } else { Verdict::Different },
        )
        .await
    }

    /// [`try_run`](Self::try_run) for futures.
    pub async fn try_run_async<T: PartialEq, E>(
        self,
        control: impl Future<Output = Result<T, E>>,
        candidate: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.run_async_judged(control, candidate, judge_results).await
    }

    async fn run_async_judged<T>(
        self,
        control: impl Future<Output = T>,
        candidate: impl Future<Output = T>,
        judge: impl FnOnce(&T, &T) -> Verdict,
    ) -> T {
        match self.stage {
            LaunchStage::On => candidate.await,
            LaunchStage::Off => control.await,
            LaunchStage::Dark => {
                let figures = self.client.shared.dark_launches.get(self.key);
                let started = Instant::now();
                let mut control = std::pin::pin!(control);
                let mut candidate = std::pin::pin!(CatchUnwind::new(candidate));
                let mut finished: Option<(std::thread::Result<T>, Duration)> = None;
                let control_result = loop {
                    tokio::select! {
                        biased;
                        result = &mut control => break result,
                        result = &mut candidate, if finished.is_none() => finished = Some((result, started.elapsed())),
                    }
                };
                figures.control_took(self.key, started.elapsed());
                let outcome = match finished {
                    Some((result, took)) => Outcome::Finished(result, took),
                    None => match tokio::time::timeout(self.budget, &mut candidate).await {
                        Ok(result) => Outcome::Finished(result, started.elapsed()),
                        Err(_) => Outcome::OverBudget,
                    },
                };
                figures.judge(self.key, outcome, &control_result, judge);
                control_result
            }
        }
    }
}

fn judge_results<T: PartialEq, E>(control: &Result<T, E>, candidate: &Result<T, E>) -> Verdict {
    match (control, candidate) {
        (_, Err(_)) => Verdict::CandidateError,
        (Ok(a), Ok(b)) if a == b => Verdict::Same,
        _ => Verdict::Different,
    }
}

/// What a process has seen of one flag's dark launch, from [`Client::dark_launch_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DarkLaunchStats {
    /// Candidates that finished in the shadow (compared, errored or panicked).
    pub shadow_runs: u64,
    /// Of those, results that differed from the control's.
    pub mismatches: u64,
    /// Candidates that returned an error (`try_run`).
    pub candidate_errors: u64,
    /// Candidates that panicked.
    pub candidate_panics: u64,
    /// Candidates not done within the budget (their results are dropped).
    pub over_budget: u64,
    /// Shadow runs skipped because the shadow threads were all busy.
    pub overloaded: u64,
    /// Total time of the controls that had a shadow run, in microseconds.
    pub control_micros: u64,
    /// Total time of the candidates that finished in the shadow, in microseconds.
    pub candidate_micros: u64,
}

impl DarkLaunchStats {
    /// Mismatches per finished shadow run (0 when none ran).
    pub fn mismatch_rate(&self) -> f64 {
        if self.shadow_runs == 0 { 0.0 } else { self.mismatches as f64 / self.shadow_runs as f64 }
    }
}

/// Per-flag figures. Atomics: any thread may finish a dark-launched call; this is not the
/// evaluation path, and each update accompanies a whole code path's run.
#[derive(Debug, Default)]
struct Figures {
    shadow_runs: AtomicU64,
    mismatches: AtomicU64,
    candidate_errors: AtomicU64,
    candidate_panics: AtomicU64,
    over_budget: AtomicU64,
    overloaded: AtomicU64,
    control_micros: AtomicU64,
    candidate_micros: AtomicU64,
}

impl Figures {
    fn control_took(&self, key: &str, took: Duration) {
        self.control_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        metrics::histogram!("flag_sdk_dark_launch_seconds", "flag" => key.to_owned(), "path" => "control")
            .record(took.as_secs_f64());
    }

    fn skipped(&self, key: &str, reason: &'static str) {
        let counter = if reason == "overloaded" { &self.overloaded } else { &self.over_budget };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("flag_sdk_dark_launch_skipped_total", "flag" => key.to_owned(), "reason" => reason)
            .increment(1);
    }

    fn judge<T>(&self, key: &str, outcome: Outcome<T>, control: &T, judge: impl FnOnce(&T, &T) -> Verdict) {
        let (result, took) = match outcome {
            Outcome::OverBudget => return self.skipped(key, "over_budget"),
            Outcome::Finished(result, took) => (result, took),
        };
        let count = |counter: &AtomicU64, name: &'static str| {
            counter.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(name, "flag" => key.to_owned()).increment(1);
        };
        count(&self.shadow_runs, "flag_sdk_dark_launch_shadow_runs_total");
        self.candidate_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        metrics::histogram!("flag_sdk_dark_launch_seconds", "flag" => key.to_owned(), "path" => "candidate")
            .record(took.as_secs_f64());
        match result {
            Err(_panic) => count(&self.candidate_panics, "flag_sdk_dark_launch_candidate_panics_total"),
            Ok(candidate) => match judge(control, &candidate) {
                Verdict::Same => {}
                Verdict::Different => count(&self.mismatches, "flag_sdk_dark_launch_mismatches_total"),
                Verdict::CandidateError => {
                    count(&self.candidate_errors, "flag_sdk_dark_launch_candidate_errors_total")
                }
            },
        }
    }

    fn stats(&self) -> DarkLaunchStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DarkLaunchStats {
            shadow_runs: read(&self.shadow_runs),
            mismatches: read(&self.mismatches),
            candidate_errors: read(&self.candidate_errors),
            candidate_panics: read(&self.candidate_panics),
            over_budget: read(&self.over_budget),
            overloaded: read(&self.overloaded),
            control_micros: read(&self.control_micros),
            candidate_micros: read(&self.candidate_micros),
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
    fn get(&self, key: &str) -> Arc<Figures> {
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
