//! An apply's rows, made ready before its turn to write: numbered, stamped and encoded, over
//! a flag set that has been validated once.
//!
//! Everything here runs without the write lock, against a shared copy of the live set and a
//! read transaction of the same state (`Writer::peek`), so a kill never waits for it. The
//! turn is then only as long as inserting the bytes and the commit (see `apply`).

use std::collections::HashMap;

use super::backend::ReadTransaction;
use flag_core::{ChangeBatch, Flag, FlagSet, Operation, Segment, SubjectKind};

use super::error::WriteError;
use super::history;
use super::records::{ChangeRecord, Committed, Now, StoredVersion, WriteMeta, encode};
use super::subject::Versioned;

/// One change's rows, encoded.
pub(super) struct Row {
    pub(super) kind: SubjectKind,
    pub(super) key: String,
    pub(super) revision: u64,
    pub(super) version: u64,
    /// The live row; `None` deletes it.
    pub(super) current: Option<Vec<u8>>,
    pub(super) change: Vec<u8>,
    pub(super) history: Vec<u8>,
}

/// The changes of one kind, numbered, stamped and encoded.
pub(super) struct Staged<T> {
    pub(super) rows: Vec<Row>,
    /// The changes as planned, with the new content stamped as it is stored.
    pub(super) stamped: Vec<(String, Option<T>, Option<T>)>,
    /// What a single write of the last change would have answered.
    pub(super) last: Option<Committed>,
}

/// Numbers, stamps and encodes the changes of one kind (`T`), continuing the revisions
/// after `revision`. `changes` is (key, live content, new content).
pub(super) fn stage<T: Versioned>(
    read: &ReadTransaction,
    environment: &str,
    changes: &[(String, Option<T>, Option<T>)],
    operation_of: impl Fn(bool, bool) -> Operation,
    revision: &mut u64,
    meta: &WriteMeta,
    now: &Now,
) -> Result<Staged<T>, WriteError> {
    let history = history::read::<T>(read)?;
    let mut rows = Vec::with_capacity(changes.len());
    let mut stamped = Vec::with_capacity(changes.len());
    let mut last = None;
    for (key, before, after) in changes {
        let head = history.head(environment, key)?;
        let version = head.map_or(0, |head| head.version) + 1;
        *revision += 1;
        let content = after.clone().map(|mut content| {
            content.stamp(version, &now.text, before.as_ref());
            content
        });
        let change =
            ChangeRecord { kind: T::KIND, key: key.clone(), version, existed_before: before.is_some() };
        let stored = StoredVersion {
            revision: *revision,
            operation: operation_of(before.is_some(), after.is_some()),
            actor: meta.actor.clone(),
            on_behalf_of: meta.on_behalf_of.clone(),
            reason: meta.reason.clone(),
            timestamp_ms: now.millis,
            content,
            previous: head.map(|head| head.revision),
        };
        rows.push(Row {
            kind: T::KIND,
            key: key.clone(),
            revision: *revision,
            version,
            current: stored.content.as_ref().map(encode).transpose()?,
            change: encode(&change)?,
            history: encode(&stored)?,
        });
        stamped.push((key.clone(), before.clone(), stored.content.clone()));
        last = Some(stored);
    }
    let last = last.map(|stored| {
        let revision = stored.revision;
        let (key, version) = rows.last().map_or((String::new(), 0), |row| (row.key.clone(), row.version));
        Committed { revision, entry: stored.into_entry(environment, &key, version), unchanged: false }
    });
    Ok(Staged { rows, stamped, last })
}

/// The changes of `segments` and `flags`, numbered after `from_revision` up to `revision`,
/// as one batch: what a stream at `from_revision` needs, built from the content in hand
/// rather than read back from the store after the commit. A key is planned at most once,
/// so each appears once; a deletion of a key that did not exist is no change to send.
pub(super) fn delta(
    from_revision: u64,
    revision: u64,
    segments: &Staged<Segment>,
    flags: &Staged<Flag>,
) -> ChangeBatch {
    fn split<T: Clone>(stamped: &[(String, Option<T>, Option<T>)]) -> (Vec<T>, Vec<String>) {
        let upserted = stamped.iter().filter_map(|(_, _, after)| after.clone()).collect();
        let deleted = stamped
            .iter()
            .filter(|(_, before, after)| before.is_some() && after.is_none())
            .map(|(key, _, _)| key.clone())
            .collect();
        (upserted, deleted)
    }
    let (upserted_segments, deleted_segments) = split(&segments.stamped);
    let (upserted_flags, deleted_flags) = split(&flags.stamped);
    ChangeBatch {
        from_revision,
        revision,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
    }
}

/// `live` with the planned changes made, each list sorted by key: one pass over each list
/// rather than a copy of the set per change.
pub(super) fn merged(
    live: &FlagSet,
    segments: &[(String, Option<Segment>, Option<Segment>)],
    flags: &[(String, Option<Flag>, Option<Flag>)],
) -> FlagSet {
    FlagSet {
        flags: merge(&live.flags, flags, |flag| &flag.key),
        segments: merge(&live.segments, segments, |segment| &segment.key),
    }
}

fn merge<T: Clone>(
    live: &[T],
    changes: &[(String, Option<T>, Option<T>)],
    key_of: impl Fn(&T) -> &String,
) -> Vec<T> {
    let changed: HashMap<&str, Option<&T>> =
        changes.iter().map(|(key, _, after)| (key.as_str(), after.as_ref())).collect();
    let mut list: Vec<T> =
        live.iter().filter(|item| !changed.contains_key(key_of(item).as_str())).cloned().collect();
    list.extend(changes.iter().filter_map(|(_, _, after)| after.clone()));
    list.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    list
}
