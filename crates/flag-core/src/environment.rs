//! What a server says of one of its environments: how big it is, where it stands, and the
//! lifecycle events (created, copied, deleted) that made it so.

use crate::records::HistoryEntry;

/// Who did something to an environment, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Who asked.
    pub actor: String,
    /// Why, in their words.
    pub reason: String,
    /// Wall-clock time, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// The environment another was created as a copy of, and the revision copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopiedFrom {
    /// The source environment.
    pub environment: String,
    /// Its revision when copied.
    pub revision: u64,
}

/// One environment of a store.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentSummary {
    /// Its name.
    pub name: String,
    /// How many writes it has had (a deleted environment keeps its count).
    pub revision: u64,
    /// Live flags.
    pub flags: u64,
    /// Live segments.
    pub segments: u64,
    /// The newest write to a flag or segment; `None` before the first.
    pub last_change: Option<HistoryEntry>,
    /// When it was created; `None` for one that came into being before environments were
    /// created explicitly (its first write made it).
    pub created: Option<Stamp>,
    /// What it was copied from, when created as a copy.
    pub copied_from: Option<CopiedFrom>,
    /// When it was deleted; its history is kept. `None` while it exists.
    pub deleted: Option<Stamp>,
}
