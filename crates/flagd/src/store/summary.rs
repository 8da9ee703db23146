//! What the store says of its environments: size, revision, last change, lifecycle.

use super::backend::ReadTransaction;
use flag_core::{CopiedFrom, EnvironmentSummary, Flag, HistoryEntry, Segment, Stamp, SubjectKind};

use super::environments::{StampRecord, counter, names, readable, record};
use super::error::StoreError;
use super::read::written;
use super::records::{ChangeRecord, decode};
use super::subject::Versioned;
use super::tables::{CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS};

/// Every environment (and, with `deleted`, every deleted one), sorted by name.
pub(super) fn summaries(txn: &ReadTransaction, deleted: bool) -> Result<Vec<EnvironmentSummary>, StoreError> {
    names(txn, deleted)?.iter().map(|name| summary(txn, name)).collect()
}

/// One environment, existing or deleted; refused when the name was never used.
pub(super) fn summary(txn: &ReadTransaction, environment: &str) -> Result<EnvironmentSummary, StoreError> {
    readable(txn, environment)?;
    let environments = txn.open_table(ENVIRONMENTS)?;
    let info = txn.open_table(ENVIRONMENT_INFO)?;
    let revision = counter(&environments, &info, environment)?;
    let record = record(&info, environment)?.unwrap_or_default();
    let stamp = |stamp: StampRecord| Stamp {
        actor: stamp.actor,
        reason: stamp.reason,
        timestamp_ms: stamp.timestamp_ms,
    };
    Ok(EnvironmentSummary {
        name: environment.to_owned(),
        revision,
        flags: count::<Flag>(txn, environment)?,
        segments: count::<Segment>(txn, environment)?,
        last_change: last_change(txn, environment)?,
        created: record.created.map(stamp),
        copied_from: record
            .copied_from
            .map(|copied| CopiedFrom { environment: copied.environment, revision: copied.revision }),
        deleted: record.deleted.map(|deleted| stamp(deleted.stamp)),
    })
}

fn count<T: Versioned>(txn: &ReadTransaction, environment: &str) -> Result<u64, StoreError> {
    let table = txn.open_table(T::CURRENT)?;
    let mut count = 0;
    for row in table.range((environment, "")..)? {
        if row?.0.value().0 != environment {
            break;
        }
        count += 1;
    }
    Ok(count)
}

fn last_change(txn: &ReadTransaction, environment: &str) -> Result<Option<HistoryEntry>, StoreError> {
    let changes = txn.open_table(CHANGES)?;
    let Some(row) = changes.range((environment, 0)..=(environment, u64::MAX))?.next_back() else {
        return Ok(None);
    };
    let (key, value) = row?;
    let revision = key.value().1;
    let change: ChangeRecord = decode(value.value(), "changes", format_args!("({environment}, {revision})"))?;
    let (entry, _) = match change.kind {
        SubjectKind::Flag => written::<Flag>(txn, environment, revision, &change)?,
        SubjectKind::Segment => written::<Segment>(txn, environment, revision, &change)?,
    };
    Ok(Some(entry))
}
