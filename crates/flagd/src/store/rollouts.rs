//! Rollout plans: one row per flag holding its latest plan and how far it got.
//!
//! A plan moves only by compare-and-set: each change is planned from the plan as it was
//! read and committed only if the row is still exactly that, so the engine's advance and an
//! operator's pause cannot both win (the loser is refused with [`PlanRefusal::Moved`]).
//! When a change also writes the flag (the first step, the next step, a kill or rollback on
//! breach, a resume), the flag's rows and the plan's row are one transaction (see
//! `write::Also`): a flag is never at a step its plan does not record, or the other way
//! round. Any other write of the flag pauses its running plan (see `plan_rows`).
//!
//! The flag writes' history reasons name the step (`step 3/5: 25 %; …`) followed by the
//! caller's reason, which for the engine carries the figures it judged.

use super::backend::{Database, WriteTransaction};
use flag_core::{OnBreach, Rollout, RolloutPlan, RolloutState};

use super::error::{PlanRefusal, StoreError, WriteError};
use super::lanes::Lane;
use super::patch::WriteOp;
use super::plan_rows::{decode_row, read_row, write_row};
use super::read;
use super::records::{Committed, Now, WriteMeta};
use super::tables::ROLLOUTS;
use super::write::Writer;

/// A stored plan with the flag it drives.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlannedFlag {
    /// The environment.
    pub(crate) environment: String,
    /// The flag.
    pub(crate) key: String,
    /// The plan and its progress.
    pub(crate) rollout: Rollout,
}

/// A change to a plan, asked by an operator or decided by the engine.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transition {
    /// The step held healthy: write the next one. The last step is the plan's destination
    /// (at 100 % there is no control cohort left to judge against), so writing it finishes
    /// the plan.
    Advance,
    /// A guard tripped (`why`: which, with the figures): the plan's `on_breach` is taken.
    Breach {
        /// The guard and the figures.
        why: String,
    },
    /// Stop where it is until resumed (an operator, or a hold that stayed inconclusive).
    Pause {
        /// Why.
        why: String,
    },
    /// Run a paused plan again: its current step is written again and held afresh.
    Resume,
    /// Stop for good, leaving the flag as it is.
    Abort {
        /// Why.
        why: String,
    },
    /// Hold the current step afresh from now (after a restart lost the window's figures).
    Rehold,
}

/// See [`Store::start_rollout`](super::Store::start_rollout).
pub(super) fn start(
    writer: &Writer,
    db: &Database,
    environment: &str,
    key: &str,
    plan: RolloutPlan,
    meta: &WriteMeta,
) -> Result<(Rollout, Committed), WriteError> {
    plan.validate().map_err(PlanRefusal::from)?;
    // Checked before the write, so a flag without `off` is told so rather than what the
    // rollout write misses; checked again inside it against a concurrent kill or start.
    if let Some(record) = read::flag(db, environment, key)? {
        check_flag(&record.flag)?;
        let txn = db.begin_read()?;
        refuse_live(read_row(&txn.open_table(ROLLOUTS)?, environment, key)?, key)?;
    }
    let op = WriteOp::SetRollout {
        key: key.to_owned(),
        percent: plan.steps[0],
        dark_percent: dark_reach(&plan, plan.steps[0]),
        expected_version: None,
        create_if_missing: false,
    };
    let meta = step_meta(meta, &plan, 0);
    let mut started = None;
    let committed = writer.write_with(db, environment, op, &meta, &mut |txn, committed| {
        let flag =
            committed.entry.flag.as_ref().ok_or_else(|| PlanRefusal::NoPlan { key: key.to_owned() })?;
        check_flag(flag)?;
        refuse_live(read_row(&txn.open_table(ROLLOUTS)?, environment, key)?, key)?;
        let now = Now::new().millis;
        // A plan of one step has nothing left to judge once it is written (see `Advance`).
        let state = if plan.steps.len() == 1 { RolloutState::Done } else { RolloutState::Running };
        let rollout = Rollout {
            plan: plan.clone(),
            step: 0,
            holding_since_ms: now,
            state,
            flag_version: committed.entry.version,
            started_by: meta.actor.clone(),
            started_ms: now,
        };
        write_row(txn, environment, key, &rollout)?;
        started = Some(rollout);
        Ok(())
    })?;
    let rollout = started.ok_or_else(|| PlanRefusal::NoPlan { key: key.to_owned() })?;
    Ok((rollout, committed))
}

/// A plan's flag must have the control cohort and be live.
fn check_flag(flag: &flag_core::Flag) -> Result<(), PlanRefusal> {
    if !flag.variants.iter().any(|variant| variant.name == flag_core::OFF) {
        let variants: Vec<&str> = flag.variants.iter().map(|variant| variant.name.as_str()).collect();
        return Err(PlanRefusal::NoControl { key: flag.key.clone(), variants: variants.join(", ") });
    }
    if !flag.enabled {
        return Err(PlanRefusal::Killed { key: flag.key.clone() });
    }
    Ok(())
}

/// A flag has one live plan at most.
fn refuse_live(existing: Option<Rollout>, key: &str) -> Result<(), PlanRefusal> {
    match existing {
        Some(existing) if existing.state.is_live() => Err(PlanRefusal::AlreadyPlanned {
            key: key.to_owned(),
            state: state_name(&existing.state),
            step: existing.step + 1,
            steps: existing.plan.steps.len(),
        }),
        _ => Ok(()),
    }
}

/// See [`Store::move_rollout`](super::Store::move_rollout).
pub(super) fn transition(
    writer: &Writer,
    db: &Database,
    environment: &str,
    key: &str,
    expected: Option<&Rollout>,
    change: Transition,
    meta: &WriteMeta,
) -> Result<(Rollout, Option<Committed>), WriteError> {
    let current = get(db, environment, key)?.ok_or_else(|| PlanRefusal::NoPlan { key: key.to_owned() })?;
    if let Some(expected) = expected
        && *expected != current
    {
        return Err(moved(key, &current).into());
    }
    // A resumed plan writes its step again, which keeps a kill: a plan would then run on a
    // flag nobody is served the new path of, and only ever find too few evaluations.
    if change == Transition::Resume
        && read::flag(db, environment, key)?.is_some_and(|record| !record.flag.enabled)
    {
        return Err(PlanRefusal::Killed { key: key.to_owned() }.into());
    }
    let (next, write) = plan_move(&current, key, change, meta, Now::new().millis)?;
    match write {
        None => {
            let _turn = writer.turn(Lane::Normal);
            let txn = db.begin_write()?;
            let next = replace(&txn, environment, key, &current, next, None)?;
            txn.commit()?;
            Ok((next, None))
        }
        Some((op, meta)) => {
            let mut moved = None;
            let committed = writer.write_with(db, environment, op, &meta, &mut |txn, committed| {
                moved = Some(replace(txn, environment, key, &current, next.clone(), Some(committed))?);
                Ok(())
            })?;
            let next = moved.ok_or_else(|| PlanRefusal::NoPlan { key: key.to_owned() })?;
            Ok((next, Some(committed)))
        }
    }
}

/// What `change` makes of `current` at `now`, and the flag write that goes with it (with
/// the history's who and why), if any; refused when the plan's state does not allow it.
fn plan_move(
    current: &Rollout,
    key: &str,
    change: Transition,
    meta: &WriteMeta,
    now: i64,
) -> Result<(Rollout, Option<(WriteOp, WriteMeta)>), PlanRefusal> {
    let mut next = current.clone();
    let plan = &current.plan;
    let needs = |action: &'static str, allowed: bool, needs: &'static str| {
        if allowed {
            Ok(())
        } else {
            Err(PlanRefusal::NotAllowed {
                key: key.to_owned(),
                action,
                state: state_name(&current.state),
                needs,
            })
        }
    };
    let running = current.state == RolloutState::Running;
    let set_rollout = |percent: f64, expected_version: Option<u64>| WriteOp::SetRollout {
        key: key.to_owned(),
        percent,
        dark_percent: dark_reach(plan, percent),
        expected_version,
        create_if_missing: false,
    };
    let write = match change {
        Transition::Advance => {
            needs("advance", running, "running")?;
            let step = (current.step + 1).min(plan.steps.len() - 1);
            next.step = step;
            next.holding_since_ms = now;
            if step + 1 == plan.steps.len() {
                next.state = RolloutState::Done;
            }
            Some((set_rollout(plan.steps[step], Some(current.flag_version)), step_meta(meta, plan, step)))
        }
        Transition::Breach { why } => {
            needs("act on a breach of", running, "running")?;
            let (op, done) = match plan.on_breach {
                OnBreach::Kill => (Some(WriteOp::Kill { key: key.to_owned() }), "killed"),
                OnBreach::Rollback => {
                    let previous = current.step.checked_sub(1).map_or(0.0, |step| plan.steps[step]);
                    // The dark cohort runs the new path too: a rollback empties it, so the
                    // new path runs for the previous step's `on` share alone.
                    let op = WriteOp::SetRollout {
                        key: key.to_owned(),
                        percent: previous,
                        dark_percent: plan.dark_percent.map(|_| previous),
                        expected_version: Some(current.flag_version),
                        create_if_missing: false,
                    };
                    (Some(op), "rolled back")
                }
                OnBreach::Pause => (None, "paused"),
            };
            let at = format!(
                "rollout breach at step {}/{} ({} %), {done}: {why}",
                current.step + 1,
                plan.steps.len(),
                plan.steps[current.step]
            );
            next.state = match plan.on_breach {
                OnBreach::Pause => RolloutState::Paused { why: at.clone() },
                OnBreach::Kill | OnBreach::Rollback => RolloutState::RolledBack { why: at.clone() },
            };
            op.map(|op| (op, WriteMeta { reason: at, ..meta.clone() }))
        }
        Transition::Pause { why } => {
            needs("pause", running, "running")?;
            next.state = RolloutState::Paused { why };
            None
        }
        Transition::Resume => {
            needs("resume", matches!(current.state, RolloutState::Paused { .. }), "paused")?;
            next.state = RolloutState::Running;
            next.holding_since_ms = now;
            let meta = WriteMeta { reason: prefixed("resumed", &meta.reason), ..meta.clone() };
            Some((set_rollout(plan.steps[current.step], None), step_meta(&meta, plan, current.step)))
        }
        Transition::Abort { why } => {
            needs("abort", current.state.is_live(), "running or paused")?;
            next.state = RolloutState::Aborted { why };
            None
        }
        Transition::Rehold => {
            needs("hold again", running, "running")?;
            next.holding_since_ms = now;
            None
        }
    };
    Ok((next, write))
}

/// `meta` with its reason prefixed by the step it writes: `step 3/5: 25 %; …`.
fn step_meta(meta: &WriteMeta, plan: &RolloutPlan, step: usize) -> WriteMeta {
    let at = format!("step {}/{}: {} %", step + 1, plan.steps.len(), plan.steps[step]);
    WriteMeta { reason: prefixed(&at, &meta.reason), ..meta.clone() }
}

fn prefixed(prefix: &str, reason: &str) -> String {
    if reason.is_empty() { prefix.to_owned() } else { format!("{prefix}; {reason}") }
}

/// Writes `next` over the plan row if it is still `expected`; records the flag version a
/// flag write made, so a later change by anyone else is told apart.
fn replace(
    txn: &WriteTransaction,
    environment: &str,
    key: &str,
    expected: &Rollout,
    mut next: Rollout,
    committed: Option<&Committed>,
) -> Result<Rollout, WriteError> {
    let current = read_row(&txn.open_table(ROLLOUTS)?, environment, key)?;
    let Some(current) = current else {
        return Err(PlanRefusal::NoPlan { key: key.to_owned() }.into());
    };
    if current != *expected {
        return Err(moved(key, &current).into());
    }
    if let Some(committed) = committed {
        next.flag_version = committed.entry.version;
    }
    write_row(txn, environment, key, &next)?;
    Ok(next)
}

fn moved(key: &str, current: &Rollout) -> PlanRefusal {
    PlanRefusal::Moved { key: key.to_owned(), state: state_name(&current.state), step: current.step + 1 }
}

/// See [`Store::rollout`](super::Store::rollout).
pub(super) fn get(db: &Database, environment: &str, key: &str) -> Result<Option<Rollout>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(ROLLOUTS)?;
    read_row(&table, environment, key)
}

/// See [`Store::rollouts`](super::Store::rollouts): one environment's, or every one's.
pub(super) fn list(db: &Database, environment: Option<&str>) -> Result<Vec<PlannedFlag>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(ROLLOUTS)?;
    let rows = match environment {
        Some(environment) => table.range((environment, "")..)?,
        None => table.range::<(&str, &str)>(..)?,
    };
    let mut plans = Vec::new();
    for row in rows {
        let (row_key, value) = row?;
        let (row_environment, key) = row_key.value();
        if environment.is_some_and(|environment| environment != row_environment) {
            break;
        }
        let rollout = decode_row(value.value(), row_environment, key)?;
        plans.push(PlannedFlag { environment: row_environment.to_owned(), key: key.to_owned(), rollout });
    }
    Ok(plans)
}

/// A state's name, as `rollout status` prints it.
pub(crate) fn state_name(state: &RolloutState) -> &'static str {
    match state {
        RolloutState::Running => "running",
        RolloutState::Paused { .. } => "paused",
        RolloutState::RolledBack { .. } => "rolled back",
        RolloutState::Aborted { .. } => "aborted",
        RolloutState::Done => "done",
    }
}

/// The dark reach (on + dark) a plan writes at a step of `percent`: its `--dark` while the
/// step is below it, the step itself from there (no one is dark once `on` reaches it).
fn dark_reach(plan: &RolloutPlan, percent: f64) -> Option<f64> {
    plan.dark_percent.map(|dark| dark.max(percent))
}
