//! An environment as it was at an earlier revision, or at an earlier time: what a diff
//! against the past and a point-in-time restore start from.
//!
//! The state at revision `r` is the live state with every change after `r` undone. The
//! first change of a key after `r` wrote version `v` and records whether the key existed
//! just before (`existed_before`); if it did, its state at `r` is version `v - 1` — so a
//! read costs the live set plus the changes since `r`, however long the history before it.
//! One read transaction: the live set and the history it is rolled back with agree.
//!
//! A revision's time is the time its history entry records. Those times follow revision
//! order: a write takes its time when it has the writer's turn, and an apply takes its time
//! after planning and plans again when any write commits before its own (see `apply`), so
//! only a clock stepped back can break the order.

use std::collections::{BTreeMap, HashSet};

use super::backend::{Database, ReadTransaction};
use flag_core::{Flag, FlagSet, HistoryEntry, Segment, SubjectKind};

use super::environments;
use super::error::{PastError, StoreError};
use super::read::{live, version_before, written};
use super::records::{ChangeRecord, decode};
use super::subject::Versioned;
use super::tables::CHANGES;

/// An environment at an earlier revision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Past {
    /// The revision asked for.
    pub(crate) revision: u64,
    /// When that revision was committed (ms since the Unix epoch); `None` for revision 0.
    pub(crate) committed_ms: Option<i64>,
    /// The environment's revision now.
    pub(crate) current: u64,
    /// Its flags and segments at `revision`, each list sorted by key.
    pub(crate) set: FlagSet,
}

/// See [`Store::environment_at`](super::Store::environment_at).
pub(super) fn environment_at(db: &Database, environment: &str, revision: u64) -> Result<Past, PastError> {
    at(&db.begin_read()?, environment, Some(revision))
}

/// See [`Store::sides`](super::Store::sides).
pub(super) fn sides(db: &Database, from: Side<'_>, to: Side<'_>) -> Result<(Past, Past), PastError> {
    let txn = db.begin_read()?;
    Ok((at(&txn, from.0, from.1)?, at(&txn, to.0, to.1)?))
}

/// An environment, at a revision or (`None`) as it is now.
pub(crate) type Side<'a> = (&'a str, Option<u64>);

/// The environment at `revision` (now, for `None`) as `txn` sees it.
fn at(txn: &ReadTransaction, environment: &str, revision: Option<u64>) -> Result<Past, PastError> {
    let current = environments::known(txn, environment)?;
    let revision = revision.unwrap_or(current);
    if revision > current {
        return Err(PastError::FutureRevision { environment: environment.to_owned(), revision, current });
    }
    // The first change of each key after `revision`: its revision and the change.
    let mut first_after: BTreeMap<(SubjectKind, String), (u64, ChangeRecord)> = BTreeMap::new();
    for row in txn.open_table(CHANGES)?.range((environment, revision + 1)..=(environment, current))? {
        let (key, value) = row?;
        let at = key.value().1;
        let change: ChangeRecord = decode(value.value(), "changes", format_args!("({environment}, {at})"))?;
        first_after.entry((change.kind, change.key.clone())).or_insert((at, change));
    }
    let mut flags = rolled_back::<Flag>(txn, environment, &first_after)?;
    let mut segments = rolled_back::<Segment>(txn, environment, &first_after)?;
    flags.sort_by(|a, b| a.key.cmp(&b.key));
    segments.sort_by(|a, b| a.key.cmp(&b.key));
    let committed_ms = committed_ms(txn, environment, revision)?;
    Ok(Past { revision, committed_ms, current, set: FlagSet { flags, segments } })
}

/// See [`Store::revision_at`](super::Store::revision_at).
pub(super) fn revision_at(db: &Database, environment: &str, time_ms: i64) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let current = environments::known(&txn, environment)?;
    // The last revision committed at or before `time_ms`: times follow revisions (see the
    // module docs), so a binary search over 1..=current finds it.
    let (mut low, mut high) = (0, current);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        let at = committed_ms(&txn, environment, middle)?.unwrap_or(i64::MIN);
        if at <= time_ms {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}

/// The live items of kind `T` with the changes in `first_after` undone.
fn rolled_back<T: Versioned + Keyed>(
    txn: &ReadTransaction,
    environment: &str,
    first_after: &BTreeMap<(SubjectKind, String), (u64, ChangeRecord)>,
) -> Result<Vec<T>, StoreError> {
    let changed: HashSet<&str> =
        first_after.keys().filter(|(kind, _)| *kind == T::KIND).map(|(_, key)| key.as_str()).collect();
    let mut items: Vec<T> = live::<T>(txn, environment, "")?;
    items.retain(|item| !changed.contains(item.key()));
    for ((kind, _), (revision, change)) in first_after {
        if *kind != T::KIND || !change.existed_before {
            continue;
        }
        let (_, previous) = written::<T>(txn, environment, *revision, change)?;
        let before = version_before::<T>(txn, environment, change, previous)?;
        if let Some(content) = before.and_then(T::from_entry) {
            items.push(content);
        }
    }
    Ok(items)
}

/// When `revision` was committed; `None` for revision 0, which no write made.
fn committed_ms(txn: &ReadTransaction, environment: &str, revision: u64) -> Result<Option<i64>, StoreError> {
    if revision == 0 {
        return Ok(None);
    }
    let changes = txn.open_table(CHANGES)?;
    let Some(row) = changes.get((environment, revision))? else {
        return Err(StoreError::Missing { table: "changes", key: format!("({environment}, {revision})") });
    };
    let change: ChangeRecord = decode(row.value(), "changes", format_args!("({environment}, {revision})"))?;
    let (entry, _) = match change.kind {
        SubjectKind::Flag => written::<Flag>(txn, environment, revision, &change)?,
        SubjectKind::Segment => written::<Segment>(txn, environment, revision, &change)?,
    };
    Ok(Some(entry.timestamp_ms))
}

/// What rolling back needs of flags and segments.
trait Keyed: Sized {
    fn key(&self) -> &str;
    /// The content a history entry holds.
    fn from_entry(entry: HistoryEntry) -> Option<Self>;
}

impl Keyed for Flag {
    fn key(&self) -> &str {
        &self.key
    }

    fn from_entry(entry: HistoryEntry) -> Option<Self> {
        entry.flag
    }
}

impl Keyed for Segment {
    fn key(&self) -> &str {
        &self.key
    }

    fn from_entry(entry: HistoryEntry) -> Option<Self> {
        entry.segment
    }
}
