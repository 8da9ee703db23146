//! What the store and the reference answer, in the one form the test compares: refusals by
//! kind, history without times and actor (checked on their own), contents without what the
//! store stamps.

use flag_core::{Flag, Operation, Segment, SubjectKind};

/// How a write was refused, as the test compares refusals: by kind, never by message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// An expected version or revision that is not the current one.
    Conflict,
    /// No such flag, segment or version.
    NotFound,
    /// The content, or the environment after the write, is not valid.
    Invalid,
    /// The flag is not in the state the operation needs (revive of a live flag, rollback
    /// to a deletion or before the first version).
    Precondition,
}

/// One version of a flag or segment as history shows it, without times and actor.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Entry {
    pub(super) kind: SubjectKind,
    pub(super) key: String,
    pub(super) version: u64,
    pub(super) revision: u64,
    pub(super) operation: Operation,
    pub(super) reason: String,
    /// The flag after the write, `version` set; `None` for segments and deletes.
    pub(super) flag: Option<Flag>,
    pub(super) segment: Option<Segment>,
}

/// What a single write answers.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Written {
    pub(super) revision: u64,
    pub(super) entry: Entry,
    pub(super) unchanged: bool,
}

/// What an apply answers.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ApplyAnswer {
    pub(super) revision: u64,
    pub(super) changes: Vec<Change>,
    /// The last change committed, as (revision, kind, key, version).
    pub(super) last: Option<(u64, SubjectKind, String, u64)>,
    /// Sorted.
    pub(super) kept_killed: Vec<String>,
}

/// One change of an apply; contents without version and times.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Change {
    pub(super) kind: SubjectKind,
    pub(super) key: String,
    pub(super) operation: Operation,
    pub(super) version: u64,
    pub(super) before: Option<Content>,
    pub(super) after: Option<Content>,
}

/// A flag or a segment's content.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // a few per step of a test
pub(super) enum Content {
    Flag(Flag),
    Segment(Segment),
}

/// What a client at some revision is sent (a snapshot is `None` of it).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Delta {
    pub(super) revision: u64,
    pub(super) upserted_flags: Vec<Flag>,
    pub(super) deleted_flags: Vec<String>,
    pub(super) upserted_segments: Vec<Segment>,
    pub(super) deleted_segments: Vec<String>,
}
