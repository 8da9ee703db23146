//! The dark-launch helper: serve the old path, exercise the new one in the shadow for the
//! `dark` cohort, compare, and count — without ever holding a response for the new path.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use flag_core::{Context, Evaluate, LaunchStage};
use tokio::task::JoinHandle;

pub use crate::dark_launch_figures::DarkLaunchStats;
pub(crate) use crate::dark_launch_figures::DarkLaunches;
use crate::dark_launch_figures::{Figures, Outcome, Pending, Skip, Verdict};
use crate::shadow::{CatchUnwind, submit};
use crate::shared::Live;

/// The shadow budget unless [`DarkLaunch::budget`] says otherwise.
pub const DEFAULT_SHADOW_BUDGET: Duration = Duration::from_millis(50);

/// One dark-launched call, from [`Client::dark_launch`](crate::Client::dark_launch): the
/// context's cohort is read once, when it is made.
///
/// - `on`: the candidate runs and its result is returned (its panics are the caller's, as
///   on any code path).
/// - `off` (also a missing or killed flag): only the control runs.
/// - `dark`: the control's result is returned; the candidate runs in the shadow, its panics
///   and errors are contained, and the results are compared. The response never waits for
///   the candidate longer than the [budget](Self::budget) — [`run`](Self::run) does not
///   wait for it at all.
///
/// | | where the candidate runs | the response waits for it | past the budget |
/// |---|---|---|---|
/// | [`run`](Self::run) | a shadow thread, after the control | never | not started yet: dropped |
/// | [`run_async`](Self::run_async) | its own tokio task, beside the control | at most the budget after the control | aborted |
/// | [`run_async_in_task`](Self::run_async_in_task) | the caller's task, beside the control | at most the budget after the control, *between polls* | dropped |
///
/// Killing the flag moves everyone to `off` on the next call; a shadow run queued or spawned
/// before the kill is dropped unrun if its flag has changed by the time it would start.
///
/// Figures ([`Client::dark_launch_stats`](crate::Client::dark_launch_stats) and the `metrics` crate, labelled by `flag`):
/// `flag_sdk_dark_launch_shadow_runs_total`, `_mismatches_total`, `_candidate_errors_total`,
/// `_candidate_panics_total`, `_skipped_total` (`reason` = `over_budget`, `overloaded` or
/// `flag_changed`), and the histogram `flag_sdk_dark_launch_seconds` (`path` = `control` or
/// `candidate`, for the shadow runs).
#[derive(Debug)]
#[must_use]
pub struct DarkLaunch<'a> {
    /// The client's live state: the cohort is read from it, and a shadow run checks it.
    live: &'a Arc<ArcSwap<Live>>,
    /// The client's figures, which this call counts into.
    registry: &'a DarkLaunches,
    key: &'a str,
    stage: LaunchStage,
    /// The flag's change generation as the cohort was read: a shadow run starts only if it
    /// is still the same, so nothing queued before a kill runs after it.
    generation: Option<u64>,
    budget: Duration,
}

impl<'a> DarkLaunch<'a> {
    pub(crate) fn new(
        live: &'a Arc<ArcSwap<Live>>,
        registry: &'a DarkLaunches,
        key: &'a str,
        ctx: &Context<'_>,
    ) -> DarkLaunch<'a> {
        // The generation before the cohort: a change in between makes the run look stale
        // (dropped), never current.
        let generation = generation_of(live, key);
        let stage = live.load().launch_stage(key, ctx);
        DarkLaunch { live, registry, key, stage, generation, budget: DEFAULT_SHADOW_BUDGET }
    }

    /// The context's cohort.
    pub fn stage(&self) -> LaunchStage {
        self.stage
    }

    /// How long a shadow candidate may take, counted from when the control answered. For
    /// [`run`](Self::run), a candidate not started by then (the shadow threads are behind)
    /// is dropped; one that started runs to the end (a thread cannot be interrupted). For
    /// [`run_async`](Self::run_async), the response waits at most this long for the
    /// candidate, which is then aborted.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Runs closures; results compared with `PartialEq`.
    ///
    /// For `dark` users the control's result is returned as soon as the control is done: a
    /// clone of it goes with the candidate to a shadow thread, which runs and compares
    /// there. `run` never waits for the candidate, so it may be called from async code: it
    /// blocks the caller only as long as the control itself does. Hence the bounds: `Clone`
    /// for the comparison, `Send + 'static` for the shadow thread (move what it needs in).
    /// When the shadow threads are busy and their short queue is full, the shadow run is
    /// skipped (counted as `overloaded`), never waited for.
    pub fn run<T, C, N>(self, control: C, candidate: N) -> T
    where
        T: PartialEq + Clone + Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
    {
        self.run_judged(control, candidate, T::clone, |c: &T, n: &T| Verdict::of(c == n))
    }

    /// [`run`](Self::run) with a custom comparison (`same(control, candidate)`), which runs
    /// on the shadow thread.
    pub fn run_with<T, C, N, S>(self, control: C, candidate: N, same: S) -> T
    where
        T: Clone + Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
        S: FnOnce(&T, &T) -> bool + Send + 'static,
    {
        self.run_judged(control, candidate, T::clone, move |c: &T, n: &T| Verdict::of(same(c, n)))
    }

    /// [`run`](Self::run) for fallible paths: a candidate `Err` counts as a candidate error
    /// (not a mismatch); `Ok` results are compared with `PartialEq`. Only the control's `Ok`
    /// value is cloned, so `E` need not be `Clone`.
    pub fn try_run<T, E, C, N>(self, control: C, candidate: N) -> Result<T, E>
    where
        T: PartialEq + Clone + Send + 'static,
        E: Send + 'static,
        C: FnOnce() -> Result<T, E>,
        N: FnOnce() -> Result<T, E> + Send + 'static,
    {
        self.run_judged(
            control,
            candidate,
            |c: &Result<T, E>| c.as_ref().ok().cloned(),
            |c: &Option<T>, n: &Result<T, E>| Verdict::of_results(c.as_ref(), n),
        )
    }

    fn run_judged<T, V, C, N, J>(self, control: C, candidate: N, view: impl FnOnce(&T) -> V, judge: J) -> T
    where
        T: Send + 'static,
        V: Send + 'static,
        C: FnOnce() -> T,
        N: FnOnce() -> T + Send + 'static,
        J: FnOnce(&V, &T) -> Verdict + Send + 'static,
    {
        match self.stage {
            LaunchStage::On => candidate(),
            LaunchStage::Off => control(),
            LaunchStage::Dark => {
                let started = Instant::now();
                let control_result = control();
                let control_took = started.elapsed();
                // `None` (a budget too large to add): no deadline.
                let deadline = Instant::now().checked_add(self.budget);
                let (shadow, figures) = self.shadow();
                let control_view = view(&control_result);
                let job = Box::new(move || {
                    let outcome = if deadline.is_some_and(|deadline| Instant::now() > deadline) {
                        // Abandoned: the request it shadows is long answered.
                        Outcome::Skipped(Skip::OverBudget)
                    } else if shadow.flag_changed() {
                        Outcome::Skipped(Skip::FlagChanged)
                    } else {
                        let started = Instant::now();
                        let result = catch_unwind(AssertUnwindSafe(candidate));
                        Outcome::Finished(result, started.elapsed())
                    };
                    let judged =
                        shadow.figures.record(&shadow.key, outcome, control_took, &control_view, judge);
                    feed_health(&shadow.live, &shadow.key, judged);
                });
                if submit(job).is_err() {
                    figures.skipped(self.key, Skip::Overloaded);
                }
                control_result
            }
        }
    }

    /// Runs futures; results compared with `PartialEq`.
    ///
    /// For `dark` users the candidate is spawned on its own tokio task, beside the control,
    /// hence `Send + 'static` (move what it needs in). The response waits for it at most the
    /// budget after the control answered; then the candidate is aborted and counted as over
    /// budget. The candidate is also aborted if the caller's future is dropped. A candidate
    /// that blocks its thread cannot hold the response on a multi-thread runtime; on a
    /// current-thread runtime it shares the caller's only thread, so keep blocking work in
    /// [`run`](Self::run) there. Outside a tokio runtime only the control runs (counted as
    /// `overloaded`).
    pub async fn run_async<T, C, N>(self, control: C, candidate: N) -> T
    where
        T: PartialEq + Send + 'static,
        C: Future<Output = T>,
        N: Future<Output = T> + Send + 'static,
    {
        self.run_async_judged(control, candidate, |c: &T, n: &T| Verdict::of(c == n)).await
    }

    /// [`run_async`](Self::run_async) with a custom comparison.
    pub async fn run_async_with<T, C, N>(
        self,
        control: C,
        candidate: N,
        same: impl FnOnce(&T, &T) -> bool,
    ) -> T
    where
        T: Send + 'static,
        C: Future<Output = T>,
        N: Future<Output = T> + Send + 'static,
    {
        self.run_async_judged(control, candidate, |c: &T, n: &T| Verdict::of(same(c, n))).await
    }

    /// [`try_run`](Self::try_run) for futures, as [`run_async`](Self::run_async).
    pub async fn try_run_async<T, E, C, N>(self, control: C, candidate: N) -> Result<T, E>
    where
        T: PartialEq + Send + 'static,
        E: Send + 'static,
        C: Future<Output = Result<T, E>>,
        N: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.run_async_judged(control, candidate, |c: &Result<T, E>, n: &Result<T, E>| {
            Verdict::of_results(c.as_ref().ok(), n)
        })
        .await
    }

    async fn run_async_judged<T, C, N>(
        self,
        control: C,
        candidate: N,
        judge: impl FnOnce(&T, &T) -> Verdict,
    ) -> T
    where
        T: Send + 'static,
        C: Future<Output = T>,
        N: Future<Output = T> + Send + 'static,
    {
        match self.stage {
            LaunchStage::On => candidate.await,
            LaunchStage::Off => control.await,
            LaunchStage::Dark => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    self.registry.get(self.key).skipped(self.key, Skip::Overloaded);
                    return control.await;
                };
                let (shadow, figures) = self.shadow();
                // The task hands `shadow` back so the run counts as pending until it is
                // recorded; an aborted task drops it with its future.
                let mut task = AbortOnDrop(runtime.spawn(async move {
                    if shadow.flag_changed() {
                        return (shadow, None);
                    }
                    let started = Instant::now();
                    let result = CatchUnwind::new(candidate).await;
                    (shadow, Some((result, started.elapsed())))
                }));
                let started = Instant::now();
                let control_result = control.await;
                let control_took = started.elapsed();
                let (outcome, shadow) = match tokio::time::timeout(self.budget, &mut task.0).await {
                    Ok(Ok((shadow, Some((result, took))))) => (Outcome::Finished(result, took), Some(shadow)),
                    Ok(Ok((shadow, None))) => (Outcome::Skipped(Skip::FlagChanged), Some(shadow)),
                    // Cancelled by the runtime shutting down (its panics are caught inside).
                    Ok(Err(_)) | Err(_) => (Outcome::Skipped(Skip::OverBudget), None),
                };
                drop(task);
                let judged = figures.record(self.key, outcome, control_took, &control_result, judge);
                feed_health(self.live, self.key, judged);
                drop(shadow);
                control_result
            }
        }
    }

    /// Opt-in: [`run_async`](Self::run_async) with the candidate polled in the caller's task,
    /// beside the control, for candidates that cannot be `Send + 'static` (they borrow the
    /// request, or hold an `Rc`).
    ///
    /// The cost: every poll of the candidate runs on the response's path. A candidate that
    /// blocks or computes inside a poll delays the control's answer by that long, and the
    /// budget, checked between polls, cannot interrupt it. Use it only for candidates that
    /// await promptly; the candidate is dropped if not done within the budget after the
    /// control.
    pub async fn run_async_in_task<T: PartialEq>(
        self,
        control: impl Future<Output = T>,
        candidate: impl Future<Output = T>,
    ) -> T {
        self.run_async_in_task_with(control, candidate, |a, b| a == b).await
    }

    /// [`run_async_in_task`](Self::run_async_in_task) with a custom comparison.
    pub async fn run_async_in_task_with<T>(
        self,
        control: impl Future<Output = T>,
        candidate: impl Future<Output = T>,
        same: impl FnOnce(&T, &T) -> bool,
    ) -> T {
        match self.stage {
            LaunchStage::On => candidate.await,
            LaunchStage::Off => control.await,
            LaunchStage::Dark => {
                let figures = self.registry.get(self.key);
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
                let control_took = started.elapsed();
                let outcome = match finished {
                    Some((result, took)) => Outcome::Finished(result, took),
                    None => match tokio::time::timeout(self.budget, &mut candidate).await {
                        Ok(result) => Outcome::Finished(result, started.elapsed()),
                        Err(_) => Outcome::Skipped(Skip::OverBudget),
                    },
                };
                let judged =
                    figures.record(self.key, outcome, control_took, &control_result, |c: &T, n: &T| {
                        Verdict::of(same(c, n))
                    });
                feed_health(self.live, self.key, judged);
                control_result
            }
        }
    }

    /// What a shadow run carries to its thread or task, and the figures it counts into.
    fn shadow(&self) -> (Shadow, Arc<Figures>) {
        let figures = self.registry.get(self.key);
        let shadow = Shadow {
            _pending: figures.start(),
            figures: Arc::clone(&figures),
            live: Arc::clone(self.live),
            key: self.key.to_owned(),
            generation: self.generation,
        };
        (shadow, figures)
    }
}

/// A shadow run away from the caller: enough to check its flag just before it starts and to
/// count its end.
struct Shadow {
    /// Counts the run as in flight until this is dropped, however the run ends.
    _pending: Pending,
    figures: Arc<Figures>,
    /// The client's live state, not a snapshot of it: the check must see a kill that
    /// happened while the run waited.
    live: Arc<ArcSwap<Live>>,
    key: String,
    generation: Option<u64>,
}

impl Shadow {
    /// Whether the flag changed since the call (a kill, a new split, a segment it uses):
    /// then this context may no longer be `dark`, and the run is dropped.
    fn flag_changed(&self) -> bool {
        generation_of(&self.live, &self.key) != self.generation
    }
}

/// Counts a judged shadow run in the `dark` cohort's health figures (those of
/// [`Client::record_outcome`](crate::Client::record_outcome)): a panic, an error or a
/// mismatch is an error; the latency is the candidate's.
fn feed_health(live: &ArcSwap<Live>, key: &str, judged: Option<(flag_core::Outcome, Duration)>) {
    if let Some((outcome, took)) = judged {
        live.load().record_variant(key, flag_core::DARK, outcome, crate::evaluate::micros(took));
    }
}

/// The revision of the last change to `key` or a segment it uses (`None`: never seen).
fn generation_of(live: &ArcSwap<Live>, key: &str) -> Option<u64> {
    live.load().model.changed_at.get(key).copied()
}

/// A spawned candidate that stops when the caller stops waiting for it, including when the
/// caller's own future is dropped mid-control.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
