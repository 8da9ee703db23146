//! Environments as things an operator creates and deletes, rather than names that spring
//! into being on first write.
//!
//! An environment **exists** while it has a row in `environments` (its revision). Every
//! read and write names an existing one, or is refused with [`StoreError::UnknownEnvironment`]
//! and the nearest existing name — nothing is created by a typo. Files from before explicit
//! environments open unchanged: every environment that has data has that row.
//!
//! The `environment_info` row says who created it, from what, and — once deleted — who
//! deleted it and at which revision. Deleting removes the `environments` row after deleting
//! every live flag and segment as ordinary history versions, so the history stays readable
//! (`readable`), and an environment created again under the same name continues its
//! revision numbering (`counter`): a revision never names two states.

use super::backend::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::records::{decode, encode};
use super::tables::{ENVIRONMENT_INFO, ENVIRONMENTS};

/// The `environment_info` row of one environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvironmentRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) created: Option<StampRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) copied_from: Option<CopiedRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deleted: Option<DeletedRecord>,
}

/// Who, why, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StampRecord {
    pub(super) actor: String,
    pub(super) reason: String,
    pub(super) timestamp_ms: i64,
}

/// The source of a copy and its revision then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CopiedRecord {
    pub(super) environment: String,
    pub(super) revision: u64,
}

/// A deletion, and the revision the environment had reached: a re-created environment
/// numbers on from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeletedRecord {
    pub(super) stamp: StampRecord,
    pub(super) revision: u64,
}

/// How an apply changes whether its environment exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// The apply creates the environment (refused when it exists); its flags, if any, are
    /// a copy of `copied_from` at the revision given.
    Create { copied_from: Option<(String, u64)> },
    /// The apply deletes every live flag and segment, then the environment.
    Delete,
}

/// The environment's revision, when it exists; refused with the nearest name when not.
pub(super) fn known(txn: &ReadTransaction, environment: &str) -> Result<u64, StoreError> {
    let environments = txn.open_table(ENVIRONMENTS)?;
    match environments.get(environment)? {
        Some(revision) => Ok(revision.value()),
        None => Err(unknown(&environments, environment)?),
    }
}

/// The refusal of `environment`, which is not in `environments`.
pub(super) fn unknown(
    environments: &impl ReadableTable<&'static str, u64>,
    environment: &str,
) -> Result<StoreError, StoreError> {
    let mut names = Vec::new();
    for row in environments.iter()? {
        names.push(row?.0.value().to_owned());
    }
    Ok(StoreError::UnknownEnvironment { environment: environment.to_owned(), known: names })
}

/// Refuses `environment` unless it exists or existed: its history can be read either way.
pub(super) fn readable(txn: &ReadTransaction, environment: &str) -> Result<(), StoreError> {
    if txn.open_table(ENVIRONMENTS)?.get(environment)?.is_some() {
        return Ok(());
    }
    match record(&txn.open_table(ENVIRONMENT_INFO)?, environment)? {
        Some(EnvironmentRecord { deleted: Some(_), .. }) => Ok(()),
        _ => Err(unknown(&txn.open_table(ENVIRONMENTS)?, environment)?),
    }
}

/// The environments that exist and (with `deleted`) those deleted, sorted by name.
pub(super) fn names(txn: &ReadTransaction, deleted: bool) -> Result<Vec<String>, StoreError> {
    let mut names: Vec<String> = Vec::new();
    for row in txn.open_table(ENVIRONMENTS)?.iter()? {
        names.push(row?.0.value().to_owned());
    }
    if deleted {
        let info = txn.open_table(ENVIRONMENT_INFO)?;
        for row in info.iter()? {
            let name = row?.0.value().to_owned();
            if record(&info, &name)?.is_some_and(|record| record.deleted.is_some()) {
                names.push(name);
            }
        }
        names.sort();
    }
    Ok(names)
}

/// The revision the environment's next write follows: its revision, the revision it was
/// deleted at, or 0 for a name never used.
pub(super) fn counter(
    environments: &impl ReadableTable<&'static str, u64>,
    info: &impl ReadableTable<&'static str, &'static [u8]>,
    environment: &str,
) -> Result<u64, StoreError> {
    if let Some(revision) = environments.get(environment)? {
        return Ok(revision.value());
    }
    Ok(record(info, environment)?.and_then(|record| record.deleted).map_or(0, |deleted| deleted.revision))
}

pub(super) fn record(
    info: &impl ReadableTable<&'static str, &'static [u8]>,
    environment: &str,
) -> Result<Option<EnvironmentRecord>, StoreError> {
    info.get(environment)?
        .map(|row| decode(row.value(), "environment_info", format_args!("{environment}")))
        .transpose()
}

/// Makes a new file's first environment (revision 0, nothing in it).
pub(super) fn start_with(txn: &WriteTransaction, environment: &str) -> Result<(), StoreError> {
    txn.open_table(ENVIRONMENTS)?.insert(environment, 0)?;
    let stamp = StampRecord {
        actor: "flagd".into(),
        reason: "a new store starts with this environment".into(),
        timestamp_ms: super::records::Now::new().millis,
    };
    mark_created(txn, environment, stamp, None)
}

/// Records, in the apply's transaction, who created `environment` (whose `environments`
/// row the apply writes) and from what.
pub(super) fn mark_created(
    txn: &WriteTransaction,
    environment: &str,
    stamp: StampRecord,
    copied_from: Option<&(String, u64)>,
) -> Result<(), StoreError> {
    let record = EnvironmentRecord {
        created: Some(stamp),
        copied_from: copied_from.map(|(environment, revision)| CopiedRecord {
            environment: environment.clone(),
            revision: *revision,
        }),
        deleted: None,
    };
    txn.open_table(ENVIRONMENT_INFO)?.insert(environment, encode(&record)?.as_slice())?;
    Ok(())
}

/// Records, in the apply's transaction, that `environment` is deleted at `revision`.
pub(super) fn mark_deleted(
    txn: &WriteTransaction,
    environment: &str,
    stamp: StampRecord,
    revision: u64,
) -> Result<(), StoreError> {
    txn.open_table(ENVIRONMENTS)?.remove(environment)?;
    let mut info = txn.open_table(ENVIRONMENT_INFO)?;
    let mut record = record(&info, environment)?.unwrap_or_default();
    record.deleted = Some(DeletedRecord { stamp, revision });
    info.insert(environment, encode(&record)?.as_slice())?;
    Ok(())
}
