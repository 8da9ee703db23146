//! The engine: one task per server that runs every running plan. It sleeps until the
//! earliest hold ends, or until something commits (a plan started or resumed, any flag
//! write), then reads the plans from the store, judges each step whose hold is over on the
//! cohorts' figures of its window (`decide`), and writes what it decided through the store:
//! the next step, the breach's action, or a pause. The store's compare-and-set means a
//! plan an operator paused, or whose flag someone else wrote, in the meantime is left alone.
//!
//! Windows live in memory, as the figures do: each starts when the engine first sees the
//! step it judges. After a restart every running plan's hold starts again from the
//! engine's start (and is stored so, for `rollout status`), so a hold that elapsed while
//! flagd was down is judged on fresh figures, never on none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flag_core::{Rollout, RolloutState};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::decide::{self, Decision};
use crate::state::State;
use crate::store::{PlanRefusal, PlannedFlag, Transition, WriteError, WriteMeta};

/// The actor of every change the engine makes.
pub(crate) const ACTOR: &str = "flagd/rollout";

/// The longest a kill on breach waits for the SDKs' acknowledgements, as a manual kill may.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// The window each running plan is judging, shared with the status calls so they show the
/// same figures the engine will judge.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    /// A plain mutex: taken once per plan per engine pass and once per status call.
    inner: Mutex<HashMap<(String, String), Window>>,
}

/// One plan's window.
#[derive(Clone, Debug)]
struct Window {
    /// The plan as it was when the window began: when it changes (a new step, a resume), a
    /// new window begins.
    seen: Rollout,
    /// When the window began.
    since: Instant,
    /// The same, as wall time (ms since the Unix epoch), for `rollout status`.
    since_ms: i64,
    /// The environment's revision when the window began (at or after the step's write):
    /// only figures counted on flags that recent are the step's.
    from_revision: u64,
}

impl Windows {
    /// The window of `key`'s plan: when it began, as an instant and as wall time, and the
    /// revision its figures count from.
    pub(crate) fn of(&self, environment: &str, key: &str) -> Option<(Instant, i64, u64)> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .get(&(environment.to_owned(), key.to_owned()))
            .map(|window| (window.since, window.since_ms, window.from_revision))
    }

    /// The window of `planned`, begun now (counting from `revision`, the environment's now)
    /// if it has none or its plan moved since.
    fn current(&self, planned: &PlannedFlag, now: Instant, revision: u64) -> Window {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (planned.environment.clone(), planned.key.clone());
        let window = inner.entry(key).or_insert_with(|| Window::new(&planned.rollout, now, revision));
        if window.seen != planned.rollout {
            *window = Window::new(&planned.rollout, now, revision);
        }
        window.clone()
    }

    /// Forgets the windows of plans that no longer run.
    fn keep(&self, running: &[(String, String)]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.retain(|key, _| running.contains(key));
    }
}

impl Window {
    fn new(seen: &Rollout, since: Instant, from_revision: u64) -> Window {
        Window { seen: seen.clone(), since, since_ms: unix_ms(), from_revision }
    }
}

/// How often a flagd that does not lead the store's flagds asks whether it does now.
const FOLLOWER_LOOKS_EVERY: Duration = Duration::from_secs(1);

/// Starts the engine; it ends when `stopped` turns true. Of several flagds on one store,
/// only the one that leads runs the plans (`Store::leads`).
pub(crate) fn start(state: &Arc<State>, stopped: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let state = Arc::clone(state);
    tokio::spawn(run(state, stopped))
}

async fn run(state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let mut commits = state.hub.commits();
    let mut first = true;
    loop {
        let store = state.store.clone();
        let leads = tokio::task::spawn_blocking(move || store.leads()).await.unwrap_or(false);
        let next = if !leads {
            // Another flagd on the store runs the plans; this one looks again for when it
            // stops, and then starts their holds afresh, as at a start.
            first = true;
            Some(Instant::now() + FOLLOWER_LOOKS_EVERY)
        } else {
            match pass(&state, first).await {
                Ok(next) => {
                    // Only a pass that read the plans has started their holds afresh.
                    first = false;
                    next
                }
                Err(error) => {
                    warn!(%error, "rollout engine: reading the plans failed; trying again in a second");
                    Some(Instant::now() + Duration::from_secs(1))
                }
            }
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            changed = commits.changed() => if changed.is_err() { return },
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// One look at every plan: judges those whose hold is over; returns when to look next.
async fn pass(state: &Arc<State>, first: bool) -> Result<Option<Instant>, String> {
    let store = state.store.clone();
    // The plans, and each of their environments' revision: a window opened in this pass
    // counts figures from there.
    let (plans, revisions) = tokio::task::spawn_blocking(move || {
        let plans = store.rollouts(None)?;
        let mut revisions = HashMap::new();
        for planned in &plans {
            if !revisions.contains_key(&planned.environment) {
                revisions.insert(planned.environment.clone(), store.revision(&planned.environment)?);
            }
        }
        Ok::<_, crate::store::StoreError>((plans, revisions))
    })
    .await
    .map_err(|error| error.to_string())?
    .map_err(|error| error.to_string())?;
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let mut running = Vec::new();
    for mut planned in plans.into_iter().filter(|planned| planned.rollout.state == RolloutState::Running) {
        if first {
            // The figures of a hold that was under way are gone with the old process.
            match moved(state, &planned, Transition::Rehold, String::new()).await {
                Move::Done(rollout, _) => planned.rollout = rollout,
                Move::Gone => continue,
                Move::Retry | Move::Refused(_) => {
                    next = earliest(next, now + RETRY);
                    continue;
                }
            }
        }
        running.push((planned.environment.clone(), planned.key.clone()));
        let revision = revisions.get(&planned.environment).copied().unwrap_or(0);
        let window = state.rollout_windows.current(&planned, now, revision);
        let plan = &planned.rollout.plan;
        let due = window.since + Duration::from_millis(plan.hold_ms);
        let last = window.since + Duration::from_millis(plan.max_hold_ms);
        if now < due {
            next = earliest(next, due);
            continue;
        }
        let figures = state
            .health
            .figures(&planned.environment, &planned.key, window.from_revision, window.since, now)
            .variants;
        let held = u64::try_from(now.duration_since(window.since).as_millis()).unwrap_or(u64::MAX);
        let decision = decide::decide(plan, planned.rollout.step, &figures, now >= last, held);
        metrics::counter!("flagd_rollout_decisions_total", "decision" => decision.metric()).increment(1);
        match &decision {
            Decision::Extend { shortfall } => {
                let recheck = (Duration::from_millis(plan.hold_ms) / 10)
                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                info!(
                    environment = %planned.environment,
                    key = %planned.key,
                    variant = %shortfall.variant,
                    evaluations = shortfall.evaluations,
                    needed = shortfall.needed,
                    "rollout step inconclusive: hold extended"
                );
                next = earliest(next, (now + recheck).min(last));
                continue;
            }
            Decision::Breach { why, guard } => {
                warn!(environment = %planned.environment, key = %planned.key, ?guard, %why, "rollout guard tripped");
            }
            Decision::Advance { reason } => {
                info!(environment = %planned.environment, key = %planned.key, %reason, "rollout step healthy");
            }
            Decision::GiveUp { why } => {
                info!(environment = %planned.environment, key = %planned.key, %why, "rollout plan paused");
            }
        }
        let kills = matches!(decision, Decision::Breach { .. })
            && planned.rollout.plan.on_breach == flag_core::OnBreach::Kill;
        let Some((transition, reason)) = decision.transition() else { continue };
        match moved(state, &planned, transition, reason).await {
            Move::Done(after, revision) => {
                if let (true, Some(revision)) = (kills, revision) {
                    report_acks(state, &planned, revision);
                }
                // A new step's window begins now; the next pass sees it.
                if after.state == RolloutState::Running {
                    next = earliest(next, now);
                }
            }
            Move::Gone => {}
            // The store could not commit (a full disk, an I/O error): the same decision is
            // made again shortly, so a breach is acted on as soon as the store takes it.
            Move::Retry => next = earliest(next, now + RETRY),
            // A write that will not succeed as it is (the environment's size cap, a flag
            // the step cannot be written to): the plan pauses, saying why.
            Move::Refused(error) => {
                let why = format!("the step could not be written: {error}; resume to try again");
                if !matches!(
                    moved(state, &planned, Transition::Pause { why }, String::new()).await,
                    Move::Done(..)
                ) {
                    next = earliest(next, now + RETRY);
                }
            }
        }
    }
    state.rollout_windows.keep(&running);
    Ok(next)
}

/// What became of a move of a plan.
enum Move {
    /// Moved: the plan now, and the revision of the flag write it made.
    Done(Rollout, Option<u64>),
    /// The plan had moved on (an operator or a manual change got there first): left alone.
    Gone,
    /// The store could not commit now: try again.
    Retry,
    /// Refused for a reason trying again will not change.
    Refused(String),
}

/// How soon a move the store could not commit is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Moves `planned`'s plan by `transition` through the store, publishing its flag write;
/// every outcome but `Done` is logged.
async fn moved(state: &Arc<State>, planned: &PlannedFlag, transition: Transition, reason: String) -> Move {
    let meta = WriteMeta { actor: ACTOR.to_owned(), on_behalf_of: None, reason };
    let shared = Arc::clone(state);
    let (environment, key, expected) =
        (planned.environment.clone(), planned.key.clone(), planned.rollout.clone());
    let result = tokio::task::spawn_blocking(move || {
        let moved = shared.store.move_rollout(&environment, &key, Some(&expected), transition, &meta)?;
        if let Some(committed) = &moved.1 {
            shared.hub.publish(&environment, committed);
        }
        Ok::<_, WriteError>(moved)
    })
    .await;
    match result {
        Ok(Ok((rollout, committed))) => {
            info!(
                environment = %planned.environment,
                key = %planned.key,
                state = crate::store::state_name(&rollout.state),
                step = rollout.step + 1,
                revision = committed.as_ref().map(|committed| committed.revision),
                "rollout plan moved"
            );
            Move::Done(rollout, committed.map(|committed| committed.revision))
        }
        Ok(Err(WriteError::Plan(refusal @ (PlanRefusal::Moved { .. } | PlanRefusal::NotAllowed { .. })))) => {
            info!(environment = %planned.environment, key = %planned.key, %refusal, "rollout plan moved meanwhile; left as it is");
            Move::Gone
        }
        Ok(Err(WriteError::Store(error))) => {
            warn!(environment = %planned.environment, key = %planned.key, %error, "rollout plan could not be moved now; trying again");
            Move::Retry
        }
        Ok(Err(error)) => {
            warn!(environment = %planned.environment, key = %planned.key, %error, "rollout plan could not be moved");
            Move::Refused(error.to_string())
        }
        Err(error) => {
            warn!(environment = %planned.environment, key = %planned.key, %error, "rollout store task failed; trying again");
            Move::Retry
        }
    }
}

/// Waits for the SDKs to acknowledge a kill on breach, as `flagctl kill` does, and logs
/// the report; in a task of its own, so other plans are not held up by it.
fn report_acks(state: &Arc<State>, planned: &PlannedFlag, revision: u64) {
    let state = Arc::clone(state);
    let (environment, key) = (planned.environment.clone(), planned.key.clone());
    tokio::spawn(async move {
        let report = crate::fleet::wait_for(&state, &environment, revision, ACK_WAIT).await;
        metrics::histogram!("flagd_rollout_kill_ack_seconds").record(report.slowest);
        info!(
            %environment,
            %key,
            revision,
            connected = report.connected,
            acknowledged = report.acknowledged,
            slowest_ms = u64::try_from(report.slowest.as_millis()).unwrap_or(u64::MAX),
            missing = ?report.missing,
            "rollout breach: kill acknowledged"
        );
    });
}

fn earliest(next: Option<Instant>, at: Instant) -> Option<Instant> {
    Some(next.map_or(at, |next| next.min(at)))
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
