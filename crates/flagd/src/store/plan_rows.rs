//! The rows of the `rollouts` table, and the one rule every flag write keeps with them: a
//! change to a flag that its running plan did not make pauses the plan, in the same
//! transaction, saying who changed it and why.
//!
//! The write path (`write`, `apply`) calls [`pause_for_change`] for each flag it writes
//! without a plan's rows of its own; the plan's own writes (`rollouts`) replace the row
//! themselves. Doing it in the transaction rather than when the engine next looks means a
//! kill, a set or a restore is never undone by an advance that was already on its way: the
//! advance finds its plan paused and is refused (see `rollouts::transition`).

use super::backend::{ReadableTable, Table, WriteTransaction};
use flag_core::{Rollout, RolloutState};

use super::error::StoreError;
use super::records::{WriteMeta, decode, encode};
use super::tables::ROLLOUTS;

/// Decodes a row (for the store's check too).
pub(super) fn decode_row(bytes: &[u8], environment: &str, key: &str) -> Result<Rollout, StoreError> {
    decode(bytes, "rollouts", format_args!("({environment}, {key})"))
}

/// The plan of `key`, if it ever had one.
pub(super) fn read_row(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    environment: &str,
    key: &str,
) -> Result<Option<Rollout>, StoreError> {
    match table.get((environment, key))? {
        Some(row) => decode_row(row.value(), environment, key).map(Some),
        None => Ok(None),
    }
}

/// Writes `rollout` as the plan of `key`.
pub(super) fn write_row(
    txn: &WriteTransaction,
    environment: &str,
    key: &str,
    rollout: &Rollout,
) -> Result<(), StoreError> {
    txn.open_table(ROLLOUTS)?.insert((environment, key), encode(rollout)?.as_slice())?;
    Ok(())
}

/// The `rollouts` table opened in a write transaction.
pub(super) type PlanTable<'txn> = Table<'txn, (&'static str, &'static str), &'static [u8]>;

/// Pauses the running plan of `key`, if it has one, because version `version` of the flag
/// was written by `meta` outside the plan. A paused or finished plan is left as it is. The
/// table is the caller's, opened once however many flags a write touches.
pub(super) fn pause_for_change(
    plans: &mut PlanTable<'_>,
    environment: &str,
    key: &str,
    version: u64,
    meta: &WriteMeta,
) -> Result<(), StoreError> {
    let Some(mut rollout) = read_row(plans, environment, key)? else {
        return Ok(());
    };
    if rollout.state != RolloutState::Running {
        return Ok(());
    }
    rollout.state = RolloutState::Paused { why: manual_change(version, meta) };
    tracing::info!(environment, key, version, actor = meta.actor, "rollout plan paused by a manual change");
    plans.insert((environment, key), encode(&rollout)?.as_slice())?;
    Ok(())
}

/// Why a manual change paused a plan.
fn manual_change(version: u64, meta: &WriteMeta) -> String {
    let mut why = format!("the flag was changed outside the plan by {} (version {version})", meta.actor);
    if let Some(whom) = &meta.on_behalf_of {
        why.push_str(&format!(" for {whom}"));
    }
    if !meta.reason.is_empty() {
        why.push_str(": ");
        why.push_str(&meta.reason);
    }
    why
}
