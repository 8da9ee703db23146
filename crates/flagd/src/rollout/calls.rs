//! `Admin`'s rollout calls: start a plan, read one or all, pause, resume, abort — each a
//! store call in a blocking task, its flag write (if any) published like any other write.
//!
//! The engine (`engine`) runs the plans; these calls only change what it finds in the
//! store, and it is woken by the publication of every flag write (a start, a resume), and
//! finds a pause or an abort when it next looks.

use std::sync::Arc;

use flag_core::{Rollout, RolloutState};
use flag_proto::{Authorship, CohortNow, RolloutInfo, environment_or_default, rollout_response, v1};
use tonic::Request;
use tracing::info;

use crate::state::State;
use crate::status::RequestError;
use crate::store::{Committed, PlanRefusal, Transition, WriteError, state_name};
use crate::write_client::Author;

/// What `PauseRollout`, `ResumeRollout` and `AbortRollout` ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    /// `PauseRollout`.
    Pause,
    /// `ResumeRollout`.
    Resume,
    /// `AbortRollout`.
    Abort,
}

// The refusal of a longer max hold names the hour.
const _: () = assert!(crate::health::RETENTION.as_secs() == 3600);

/// `StartRollout`: the plan, its first step and a history entry in one transaction.
pub(crate) async fn start(
    state: &Arc<State>,
    request: Request<v1::StartRolloutRequest>,
) -> Result<v1::RolloutResponse, RequestError> {
    let author = Author::of(&request);
    let (environment, key, plan, change) =
        flag_proto::start_rollout_request_from_proto(request.into_inner())?;
    let environment = environment_or_default(&environment).to_owned();
    // A window longer than the figures flagd keeps would be judged on part of itself.
    let kept = u64::try_from(crate::health::RETENTION.as_millis()).unwrap_or(u64::MAX);
    if plan.max_hold_ms > kept {
        let expected = "at most 3600000 ms (flagd keeps an hour of the SDKs' figures)";
        let terms =
            flag_core::PlanError::Bound { argument: "max_hold", expected, found: plan.max_hold_ms as f64 };
        return Err(WriteError::Plan(PlanRefusal::Terms(terms)).into());
    }
    let meta = author.meta(change);
    let shared = Arc::clone(state);
    let (target, flag) = (environment.clone(), key.clone());
    let (rollout, committed) = tokio::task::spawn_blocking(move || {
        let started = shared.store.start_rollout(&target, &flag, plan, &meta)?;
        shared.hub.publish(&target, &started.1);
        Ok::<_, WriteError>(started)
    })
    .await??;
    info!(%environment, %key, steps = ?rollout.plan.steps, revision = committed.revision, "rollout plan started");
    Ok(answer(state, environment, key, rollout, Some(committed)))
}

/// `PauseRollout`, `ResumeRollout` or `AbortRollout`.
pub(crate) async fn change(
    state: &Arc<State>,
    request: Request<v1::ChangeRolloutRequest>,
    asked: Asked,
) -> Result<v1::RolloutResponse, RequestError> {
    let author = Author::of(&request);
    let v1::ChangeRolloutRequest { environment, key, change } = request.into_inner();
    let environment = environment_or_default(&environment).to_owned();
    let meta = author.meta(Authorship::from(change));
    let said = |verb: &str| {
        let by = match &meta.on_behalf_of {
            Some(whom) => format!("{verb} by {} for {whom}", meta.actor),
            None => format!("{verb} by {}", meta.actor),
        };
        if meta.reason.is_empty() { by } else { format!("{by}: {}", meta.reason) }
    };
    let transition = match asked {
        Asked::Pause => Transition::Pause { why: said("paused") },
        Asked::Resume => Transition::Resume,
        Asked::Abort => Transition::Abort { why: said("aborted") },
    };
    let shared = Arc::clone(state);
    let (target, flag) = (environment.clone(), key.clone());
    let (rollout, committed) = tokio::task::spawn_blocking(move || {
        let moved = shared.store.move_rollout(&target, &flag, None, transition, &meta)?;
        if let Some(committed) = &moved.1 {
            shared.hub.publish(&target, committed);
        }
        Ok::<_, WriteError>(moved)
    })
    .await??;
    info!(%environment, %key, state = state_name(&rollout.state), step = rollout.step + 1, "rollout plan changed");
    Ok(answer(state, environment, key, rollout, committed))
}

/// `GetRollout`: the flag's latest plan, with its cohorts now.
pub(crate) async fn get(
    state: &Arc<State>,
    request: v1::GetRolloutRequest,
) -> Result<v1::RolloutStatus, RequestError> {
    let v1::GetRolloutRequest { environment, key } = request;
    let environment = environment_or_default(&environment).to_owned();
    let store = state.store.clone();
    let (target, flag) = (environment.clone(), key.clone());
    let rollout = tokio::task::spawn_blocking(move || store.rollout(&target, &flag)).await??;
    let rollout = rollout
        .ok_or_else(|| RequestError::NoRollout { key: key.clone(), environment: environment.clone() })?;
    Ok(v1::RolloutStatus::from(&status(state, environment, key, rollout)))
}

/// `ListRollouts`: the environment's plans, by flag.
pub(crate) async fn list(
    state: &Arc<State>,
    request: v1::ListRolloutsRequest,
) -> Result<v1::ListRolloutsResponse, RequestError> {
    let v1::ListRolloutsRequest { environment } = request;
    let environment = environment_or_default(&environment).to_owned();
    let store = state.store.clone();
    let plans = tokio::task::spawn_blocking(move || store.rollouts(Some(&environment))).await??;
    let rollouts = plans
        .into_iter()
        .map(|planned| {
            v1::RolloutStatus::from(&status(state, planned.environment, planned.key, planned.rollout))
        })
        .collect();
    Ok(v1::ListRolloutsResponse { rollouts })
}

fn answer(
    state: &State,
    environment: String,
    key: String,
    rollout: Rollout,
    committed: Option<Committed>,
) -> v1::RolloutResponse {
    let info = status(state, environment, key, rollout);
    rollout_response(&info, committed.as_ref().map(|committed| (committed.revision, &committed.entry)))
}

/// A plan as the calls answer it, with its cohorts' figures over the window the engine is
/// judging (none when the plan is not running or the engine has not opened one yet).
fn status(state: &State, environment: String, key: String, rollout: Rollout) -> RolloutInfo {
    let window = (rollout.state == RolloutState::Running)
        .then(|| state.rollout_windows.of(&environment, &key))
        .flatten();
    let Some((since, since_ms, from_revision)) = window else {
        return RolloutInfo { environment, key, rollout, cohorts: Vec::new(), window_since_ms: 0 };
    };
    let figures = state.health.figures(&environment, &key, from_revision, since, tokio::time::Instant::now());
    let cohorts = figures
        .variants
        .into_iter()
        .map(|(variant, figures)| CohortNow {
            variant,
            evaluations: figures.evaluations,
            successes: figures.successes,
            errors: figures.errors,
            latency_p99_us: figures.latency.quantile_bound_us(0.99),
        })
        .collect();
    RolloutInfo { environment, key, rollout, cohorts, window_since_ms: since_ms }
}
