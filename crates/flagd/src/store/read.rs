//! Reads: each in one redb read transaction, so it sees one committed state, and none of them
//! waits for writers (redb's MVCC).

use std::collections::BTreeMap;

use super::backend::{Database, ReadTransaction, ReadableTable};
use flag_core::{ChangeBatch, Flag, FlagSet, HistoryEntry, Segment, SubjectKind};

use super::environments;
use super::error::StoreError;
use super::history;
use super::records::{ChangeRecord, FlagRecord, StoredVersion, decode};
use super::subject::Versioned;
use super::tables::{CHANGES, ENVIRONMENTS};

/// What a client at some revision needs to catch up; see [`changes_since`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ChangesSince {
    /// Everything changed after the batch's `from_revision` up to its `revision`,
    /// coalesced: each changed key once, with its current content, or listed as deleted
    /// (deleted keys sorted). A key created and deleted within the range is not listed at
    /// all: the client never had it.
    Delta(ChangeBatch),
    /// The revision is 0, in the future (another store, or a reset one), or further behind
    /// than the resume window: the client needs a full snapshot.
    TooOld,
}

impl ChangesSince {
    /// The delta a follower applies; `None` when it needs a snapshot.
    pub(crate) fn into_batch(self) -> Option<ChangeBatch> {
        match self {
            ChangesSince::Delta(batch) => Some(batch),
            ChangesSince::TooOld => None,
        }
    }
}

/// See [`Store::revision`](super::Store::revision).
pub(super) fn revision(db: &Database, environment: &str) -> Result<u64, StoreError> {
    environments::known(&db.begin_read()?, environment)
}

/// See [`Store::environments`](super::Store::environments).
pub(super) fn environments(db: &Database) -> Result<Vec<String>, StoreError> {
    let table = db.begin_read()?.open_table(ENVIRONMENTS)?;
    table.iter()?.map(|row| Ok(row?.0.value().to_owned())).collect()
}

/// See [`Store::revisions`](super::Store::revisions).
pub(super) fn revisions(db: &Database) -> Result<Vec<(String, u64)>, StoreError> {
    let table = db.begin_read()?.open_table(ENVIRONMENTS)?;
    table
        .iter()?
        .map(|row| {
            let (name, revision) = row?;
            Ok((name.value().to_owned(), revision.value()))
        })
        .collect()
}

/// See [`Store::flag`](super::Store::flag).
pub(super) fn flag(db: &Database, environment: &str, key: &str) -> Result<Option<FlagRecord>, StoreError> {
    let txn = db.begin_read()?;
    // The newest version's content is the live flag: both are written by the same transaction.
    let newest = history::<Flag>(&txn, environment, key, None, 1)?.pop();
    Ok(newest.and_then(|entry| Some(FlagRecord { flag: entry.flag.clone()?, last_change: entry })))
}

/// See [`Store::list_flags`](super::Store::list_flags).
pub(super) fn list_flags(
    db: &Database,
    environment: &str,
    prefix: &str,
    tag: Option<&str>,
) -> Result<Vec<Flag>, StoreError> {
    let txn = db.begin_read()?;
    environments::known(&txn, environment)?;
    let mut flags: Vec<Flag> = live::<Flag>(&txn, environment, prefix)?;
    if let Some(tag) = tag {
        flags.retain(|flag| flag.metadata.tags.iter().any(|t| t == tag));
    }
    Ok(flags)
}

/// See [`Store::flag_records`](super::Store::flag_records).
pub(super) fn flag_records(db: &Database, environment: &str) -> Result<(u64, Vec<FlagRecord>), StoreError> {
    let txn = db.begin_read()?;
    let revision = environments::known(&txn, environment)?;
    let mut records = Vec::new();
    for flag in live::<Flag>(&txn, environment, "")? {
        let last_change = history::<Flag>(&txn, environment, &flag.key, None, 1)?.pop();
        if let Some(last_change) = last_change {
            records.push(FlagRecord { flag, last_change });
        }
    }
    Ok((revision, records))
}

/// See [`Store::segments`](super::Store::segments).
pub(super) fn segments(db: &Database, environment: &str) -> Result<Vec<Segment>, StoreError> {
    let txn = db.begin_read()?;
    environments::known(&txn, environment)?;
    live::<Segment>(&txn, environment, "")
}

/// See [`Store::snapshot`](super::Store::snapshot).
pub(super) fn snapshot(db: &Database, environment: &str) -> Result<(u64, FlagSet), StoreError> {
    let txn = db.begin_read()?;
    let revision = environments::known(&txn, environment)?;
    let set = FlagSet { flags: live(&txn, environment, "")?, segments: live(&txn, environment, "")? };
    Ok((revision, set))
}

/// See [`Store::flag_history`](super::Store::flag_history).
pub(super) fn flag_history(
    db: &Database,
    environment: &str,
    key: &str,
    before_version: Option<u64>,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let txn = db.begin_read()?;
    environments::readable(&txn, environment)?;
    history::<Flag>(&txn, environment, key, before_version, limit)
}

/// See [`Store::environment_history`](super::Store::environment_history).
pub(super) fn environment_history(
    db: &Database,
    environment: &str,
    before_revision: Option<u64>,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let txn = db.begin_read()?;
    environments::readable(&txn, environment)?;
    let changes = txn.open_table(CHANGES)?;
    let rows = changes.range((environment, 0)..(environment, before_revision.unwrap_or(u64::MAX)))?;
    let mut entries = Vec::new();
    for row in rows.rev().take(limit) {
        let (key, value) = row?;
        let revision = key.value().1;
        let change: ChangeRecord =
            decode(value.value(), "changes", format_args!("({environment}, {revision})"))?;
        let (entry, _) = match change.kind {
            SubjectKind::Flag => written::<Flag>(&txn, environment, revision, &change)?,
            SubjectKind::Segment => written::<Segment>(&txn, environment, revision, &change)?,
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// See [`Store::changes_since`](super::Store::changes_since).
pub(super) fn changes_since(
    db: &Database,
    environment: &str,
    since: u64,
    resume_window: u64,
) -> Result<ChangesSince, StoreError> {
    let txn = db.begin_read()?;
    let revision = environments::known(&txn, environment)?;
    if since == 0 || since > revision || revision - since > resume_window {
        return Ok(ChangesSince::TooOld);
    }
    // Each changed key once, remembering whether the client (at `since`) had it: that is
    // what its first change in the range found.
    let mut changed: BTreeMap<(SubjectKind, String), bool> = BTreeMap::new();
    for row in txn.open_table(CHANGES)?.range((environment, since + 1)..=(environment, revision))? {
        let (key, value) = row?;
        let at = key.value().1;
        let change: ChangeRecord = decode(value.value(), "changes", format_args!("({environment}, {at})"))?;
        changed.entry((change.kind, change.key)).or_insert(change.existed_before);
    }
    let (flags, segments) = (txn.open_table(Flag::CURRENT)?, txn.open_table(Segment::CURRENT)?);
    let (mut upserted_flags, mut deleted_flags, mut upserted_segments, mut deleted_segments) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((kind, key), client_had_it) in changed {
        let table = match kind {
            SubjectKind::Flag => &flags,
            SubjectKind::Segment => &segments,
        };
        let current = table.get((environment, key.as_str()))?;
        match (current, kind) {
            (Some(row), SubjectKind::Flag) => {
                upserted_flags.push(decode_live(row.value(), Flag::CURRENT_NAME, environment, &key)?);
            }
            (Some(row), SubjectKind::Segment) => {
                upserted_segments.push(decode_live(row.value(), Segment::CURRENT_NAME, environment, &key)?);
            }
            (None, _) if !client_had_it => {}
            (None, SubjectKind::Flag) => deleted_flags.push(key),
            (None, SubjectKind::Segment) => deleted_segments.push(key),
        }
    }
    Ok(ChangesSince::Delta(ChangeBatch {
        from_revision: since,
        revision,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
    }))
}

/// A live row of `table`.
fn decode_live<T: Versioned>(
    bytes: &[u8],
    table: &'static str,
    environment: &str,
    key: &str,
) -> Result<T, StoreError> {
    decode(bytes, table, format_args!("({environment}, {key})"))
}

/// The environment's live items whose key starts with `prefix`, sorted by key.
pub(super) fn live<T: Versioned>(
    txn: &ReadTransaction,
    environment: &str,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    let table = txn.open_table(T::CURRENT)?;
    let mut items = Vec::new();
    for row in table.range((environment, prefix)..)? {
        let (key, value) = row?;
        let (row_environment, key) = key.value();
        if row_environment != environment || !key.starts_with(prefix) {
            // Keys with the prefix are contiguous, so the first one without it ends the range.
            break;
        }
        items.push(decode_live(value.value(), T::CURRENT_NAME, environment, key)?);
    }
    Ok(items)
}

/// Versions of `key` older than `before` (all when `None`), newest first, at most `limit`.
fn history<T: Versioned>(
    txn: &ReadTransaction,
    environment: &str,
    key: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let from = match before {
        Some(0 | 1) => return Ok(Vec::new()),
        Some(before) => Some(before - 1),
        None => None,
    };
    let history = history::read::<T>(txn)?;
    let mut entries = Vec::new();
    for row in history.newest_first(environment, key, from)?.take(limit) {
        let row = row?;
        entries.push(stored::<T>(&row.bytes, environment, key, row.version, row.revision)?.0);
    }
    Ok(entries)
}

/// The version `change` (of `environment`, at `revision`) wrote, which the change log says
/// exists, and the revision of the subject's version before it.
pub(super) fn written<T: Versioned>(
    txn: &ReadTransaction,
    environment: &str,
    revision: u64,
    change: &ChangeRecord,
) -> Result<(HistoryEntry, Option<u64>), StoreError> {
    match history::read::<T>(txn)?.at_revision(environment, revision)? {
        Some(bytes) => stored::<T>(&bytes, environment, &change.key, change.version, revision),
        None => Err(StoreError::Missing {
            table: T::VERSIONS_NAME,
            key: format!("({environment}, {revision}) for version {} of {}", change.version, change.key),
        }),
    }
}

/// The version before the one `change` wrote, if there is one; `previous` is what
/// [`written`] said of it.
pub(super) fn version_before<T: Versioned>(
    txn: &ReadTransaction,
    environment: &str,
    change: &ChangeRecord,
    previous: Option<u64>,
) -> Result<Option<HistoryEntry>, StoreError> {
    match (change.version, previous) {
        (0 | 1, _) => Ok(None),
        (version, Some(previous)) => {
            let earlier = ChangeRecord { version: version - 1, ..change.clone() };
            Ok(Some(written::<T>(txn, environment, previous, &earlier)?.0))
        }
        (version, None) => Err(StoreError::Missing {
            table: T::VERSIONS_NAME,
            key: format!("({environment}, ?) for version {} of {}", version - 1, change.key),
        }),
    }
}

/// A version row as a history entry, with its `previous`.
fn stored<T: Versioned>(
    bytes: &[u8],
    environment: &str,
    key: &str,
    version: u64,
    revision: u64,
) -> Result<(HistoryEntry, Option<u64>), StoreError> {
    let stored: StoredVersion<T> =
        decode(bytes, T::VERSIONS_NAME, format_args!("({environment}, {revision})"))?;
    let previous = stored.previous;
    Ok((stored.into_entry(environment, key, version), previous))
}
