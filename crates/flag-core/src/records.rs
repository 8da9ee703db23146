//! What the server reports about changes, as plain data: history entries, what an apply
//! changed, the batch of changes a follower applies, and who acknowledged a revision.
//!
//! flagd produces these, flagctl shows them and the SDK applies change batches; flag-proto
//! converts them to and from the wire. They live here, beside the model they carry, so that
//! none of those crates has to name a protobuf message to talk about a change.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Flag, Segment};

/// Which kind of thing a change is about. Serialized as `flag` / `segment`: the store
/// keeps it in its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A flag.
    Flag,
    /// A segment.
    Segment,
}

impl SubjectKind {
    /// The noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            SubjectKind::Flag => "flag",
            SubjectKind::Segment => "segment",
        }
    }
}

/// What a write did to its subject, as recorded in history. Serialized in snake case
/// (`set_rollout`): the store keeps it in its history rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// The subject did not exist (or had been deleted) and now does.
    Create,
    /// The subject was replaced by new content.
    Update,
    /// The subject was deleted; its history is kept.
    Delete,
    /// The flag was switched off (`enabled = false`).
    Kill,
    /// A killed flag was switched back on.
    Revive,
    /// An earlier version's content was restored.
    Rollback,
    /// The flag's default serve became a dark-launch split.
    SetRollout,
    /// The flag's default serve became a single variant.
    ServeVariant,
}

impl Operation {
    /// Every operation with its name as serialized (`set_rollout`): what the audit log's
    /// filters and lines call it.
    pub const NAMED: [(Operation, &'static str); 8] = [
        (Operation::Create, "create"),
        (Operation::Update, "update"),
        (Operation::Delete, "delete"),
        (Operation::Kill, "kill"),
        (Operation::Revive, "revive"),
        (Operation::Rollback, "rollback"),
        (Operation::SetRollout, "set_rollout"),
        (Operation::ServeVariant, "serve_variant"),
    ];

    /// Its serialized name.
    pub fn name(self) -> &'static str {
        Operation::NAMED.iter().find(|(operation, _)| *operation == self).map_or("unknown", |(_, name)| name)
    }

    /// The operation serialized as `name`.
    pub fn named(name: &str) -> Option<Operation> {
        Operation::NAMED.iter().find(|(_, known)| *known == name).map(|(operation, _)| *operation)
    }
}

/// One version of a flag or segment: who wrote it, when, why, and what it then was.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The environment written.
    pub environment: String,
    /// Whether `key` names a flag or a segment.
    pub kind: SubjectKind,
    /// The flag or segment key.
    pub key: String,
    /// The subject's version after the write: 1, 2, 3… per key, continuing across deletes.
    pub version: u64,
    /// The environment's revision after the write.
    pub revision: u64,
    /// What the write did.
    pub operation: Operation,
    /// Who made it: the name of the principal whose token the server accepted, or (on a
    /// server without tokens) whoever the client said it was.
    pub actor: String,
    /// Whom `actor` says it acted for (`flagctl --actor`), when that is someone else: the
    /// client's claim, kept beside the principal's name and never instead of it.
    pub on_behalf_of: Option<String>,
    /// Why, in their words.
    pub reason: String,
    /// Wall-clock time of the write, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The flag after the write; `None` for segments and deletes.
    pub flag: Option<Flag>,
    /// The segment after the write; `None` for flags and deletes.
    pub segment: Option<Segment>,
}

/// One change of the log with the content its subject had before it: the previous
/// version's (`None` for a first version, or after a delete). The content after it is the
/// entry's own.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedChange {
    /// The change: who, when, why, and the content after it.
    pub entry: HistoryEntry,
    /// The subject before the change.
    pub before: Option<Subject>,
}

impl LoggedChange {
    /// The subject after the change; `None` for a delete.
    pub fn after(&self) -> Option<Subject> {
        match (&self.entry.flag, &self.entry.segment) {
            (Some(flag), _) => Some(Subject::Flag(flag.clone())),
            (None, Some(segment)) => Some(Subject::Segment(segment.clone())),
            (None, None) => None,
        }
    }
}

/// A flag or a segment, as one side of an [`AppliedChange`] or a [`LoggedChange`].
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per apply, as in the store
pub enum Subject {
    /// A flag.
    Flag(Flag),
    /// A segment.
    Segment(Segment),
}

/// One flag or segment that an apply creates, updates or deletes.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedChange {
    /// Flag or segment.
    pub kind: SubjectKind,
    /// Its key.
    pub key: String,
    /// `Create`, `Update` or `Delete`.
    pub operation: Operation,
    /// Its version after the apply.
    pub version: u64,
    /// Live content before the apply; `None` on create.
    pub before: Option<Subject>,
    /// Content after it; `None` on delete.
    pub after: Option<Subject>,
}

/// Everything that changed after `from_revision` up to `revision`, each key once with its
/// current content: a follower holding `from_revision` applies it and holds `revision`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeBatch {
    /// The revision the batch applies to.
    pub from_revision: u64,
    /// The revision it brings the follower to.
    pub revision: u64,
    /// Flags created or changed.
    pub upserted_flags: Vec<Flag>,
    /// Keys of flags that no longer exist.
    pub deleted_flags: Vec<String>,
    /// Segments created or changed.
    pub upserted_segments: Vec<Segment>,
    /// Keys of segments that no longer exist.
    pub deleted_segments: Vec<String>,
}

impl ChangeBatch {
    /// The batch of the one write that `entry` records: from the revision before it to its own.
    pub fn of_entry(entry: HistoryEntry) -> ChangeBatch {
        let HistoryEntry { kind, key, revision, flag, segment, .. } = entry;
        let mut batch =
            ChangeBatch { from_revision: revision.saturating_sub(1), revision, ..Default::default() };
        match (flag, segment) {
            (Some(flag), _) => batch.upserted_flags.push(flag),
            (None, Some(segment)) => batch.upserted_segments.push(segment),
            (None, None) if kind == SubjectKind::Segment => batch.deleted_segments.push(key),
            (None, None) => batch.deleted_flags.push(key),
        }
        batch
    }
}

/// How many of the followers connected when a wait began hold a revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckReport {
    /// The revision waited for.
    pub revision: u64,
    /// Followers connected when the wait began.
    pub connected: u32,
    /// Of those, how many acknowledged the revision (or a later one) in time.
    pub acknowledged: u32,
    /// From the start of the wait to the slowest acknowledgement.
    pub slowest: Duration,
    /// Names of the followers that had not acknowledged when the wait ended.
    pub missing: Vec<String>,
    /// OpenFeature providers' streams (`EventStream`, `SyncFlags`) of the environment when
    /// the wait began: counted apart, since a provider cannot acknowledge.
    pub open_feature_streams: u32,
    /// Of those, how many had been sent the revision (or a later one) when the wait ended.
    pub open_feature_sent: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_their_serialized_form() {
        for (operation, name) in Operation::NAMED {
            assert_eq!(serde_json::to_value(operation).unwrap(), serde_json::json!(name));
            assert_eq!((operation.name(), Operation::named(name)), (name, Some(operation)));
        }
        assert_eq!(Operation::named("set-rollout"), None);
    }
}
