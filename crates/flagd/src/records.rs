//! The store's records as flag-core's, for flag-proto to put on the wire.
//!
//! The store keeps its own record types (they carry its table encoding); this is the one
//! place they become the shared domain values of `flag_core::records`. Each conversion
//! destructures the store's record, so a new field there breaks the build here.

use flag_core::{AppliedChange, ChangeBatch, HistoryEntry, Operation, Subject, SubjectKind};

use crate::store::{self, ChangesSince};

fn kind(kind: store::SubjectKind) -> SubjectKind {
    match kind {
        store::SubjectKind::Flag => SubjectKind::Flag,
        store::SubjectKind::Segment => SubjectKind::Segment,
    }
}

fn operation(operation: store::Operation) -> Operation {
    match operation {
        store::Operation::Create => Operation::Create,
        store::Operation::Update => Operation::Update,
        store::Operation::Delete => Operation::Delete,
        store::Operation::Kill => Operation::Kill,
        store::Operation::Revive => Operation::Revive,
        store::Operation::Rollback => Operation::Rollback,
        store::Operation::SetRollout => Operation::SetRollout,
        store::Operation::ServeVariant => Operation::ServeVariant,
    }
}

/// A history entry, moved.
pub(crate) fn history_entry(entry: store::HistoryEntry) -> HistoryEntry {
    let store::HistoryEntry {
        environment,
        kind: subject,
        key,
        version,
        revision,
        operation: op,
        actor,
        reason,
        timestamp_ms,
        flag,
        segment,
    } = entry;
    HistoryEntry {
        environment,
        kind: kind(subject),
        key,
        version,
        revision,
        operation: operation(op),
        actor,
        reason,
        timestamp_ms,
        flag,
        segment,
    }
}

/// The history entries of a page, moved.
pub(crate) fn history_entries(entries: Vec<store::HistoryEntry>) -> Vec<HistoryEntry> {
    entries.into_iter().map(history_entry).collect()
}

/// One subject an apply changed, moved.
pub(crate) fn applied_change(change: store::AppliedChange) -> AppliedChange {
    let store::AppliedChange { kind: subject, key, operation: op, version, before, after } = change;
    let side = |content: Option<store::Subject>| match content {
        Some(store::Subject::Flag(flag)) => Some(Subject::Flag(flag)),
        Some(store::Subject::Segment(segment)) => Some(Subject::Segment(segment)),
        None => None,
    };
    AppliedChange {
        kind: kind(subject),
        key,
        operation: operation(op),
        version,
        before: side(before),
        after: side(after),
    }
}

/// What a follower at `since` needs: a batch of changes, or `None` when it needs a snapshot.
pub(crate) fn change_batch(changes: ChangesSince) -> Option<ChangeBatch> {
    match changes {
        ChangesSince::Delta {
            from_revision,
            revision,
            upserted_flags,
            deleted_flags,
            upserted_segments,
            deleted_segments,
        } => Some(ChangeBatch {
            from_revision,
            revision,
            upserted_flags,
            deleted_flags,
            upserted_segments,
            deleted_segments,
        }),
        ChangesSince::TooOld => None,
    }
}
