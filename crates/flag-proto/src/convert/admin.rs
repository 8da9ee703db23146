//! `Admin` answers from domain values, and the domain values of its requests: flagd's
//! service fills these in, flagctl reads them back.

use flag_core as core;

use super::records::{applied_change_from_proto, history_entry_from_proto};
use super::{InvalidMessage, Path, flag_from_proto};
use crate::v1;

/// Who asks for a write, and why; recorded in history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorship {
    /// The person or system writing.
    pub actor: String,
    /// Why, in their words.
    pub reason: String,
}

impl From<Option<v1::Change>> for Authorship {
    fn from(change: Option<v1::Change>) -> Self {
        let v1::Change { actor, reason } = change.unwrap_or_default();
        Authorship { actor, reason }
    }
}

impl From<Authorship> for v1::Change {
    fn from(authorship: Authorship) -> Self {
        let Authorship { actor, reason } = authorship;
        v1::Change { actor, reason }
    }
}

/// The answer to a write: the environment's `revision` after it and the entry it appended.
pub fn write_response(revision: u64, entry: &core::HistoryEntry) -> v1::WriteResponse {
    v1::WriteResponse { revision, entry: Some(v1::HistoryEntry::from(entry)) }
}

/// A write's answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The environment's revision after the write.
    pub revision: u64,
    /// The entry the write appended (or, for a write that changed nothing, the one in force).
    pub entry: core::HistoryEntry,
}

impl TryFrom<v1::WriteResponse> for Written {
    type Error = InvalidMessage;

    fn try_from(response: v1::WriteResponse) -> Result<Self, Self::Error> {
        let v1::WriteResponse { revision, entry } = response;
        let path = Path::Root("entry");
        let entry = entry.ok_or_else(|| path.invalid("the history entry of the write"))?;
        Ok(Written { revision, entry: history_entry_from_proto(entry, &path)? })
    }
}

/// The answer to a kill: the write, the acknowledgements, and whether it was killed before.
pub fn kill_response(
    revision: u64,
    entry: &core::HistoryEntry,
    acks: &core::AckReport,
    already_killed: bool,
) -> v1::KillResponse {
    v1::KillResponse {
        write: Some(write_response(revision, entry)),
        acks: Some(v1::AckReport::from(acks)),
        already_killed,
    }
}

/// A kill's answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Killed {
    /// The write (or the kill in force, when `already_killed`).
    pub written: Written,
    /// Who acknowledged it.
    pub acks: core::AckReport,
    /// The flag was killed before: nothing was written.
    pub already_killed: bool,
}

impl TryFrom<v1::KillResponse> for Killed {
    type Error = InvalidMessage;

    fn try_from(response: v1::KillResponse) -> Result<Self, Self::Error> {
        let v1::KillResponse { write, acks, already_killed } = response;
        let written = Written::try_from(write.unwrap_or_default())?;
        Ok(Killed { written, acks: acks.unwrap_or_default().into(), already_killed })
    }
}

/// The answer to `GetFlag`.
pub fn get_flag_response(
    flag: &core::Flag,
    last_change: &core::HistoryEntry,
    revision: u64,
) -> v1::GetFlagResponse {
    v1::GetFlagResponse {
        flag: Some(v1::Flag::from(flag)),
        last_change: Some(v1::HistoryEntry::from(last_change)),
        revision,
    }
}

/// `GetFlag`'s answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagState {
    /// The live flag.
    pub flag: core::Flag,
    /// The write that made it what it is.
    pub last_change: Option<core::HistoryEntry>,
    /// The environment's revision.
    pub revision: u64,
}

impl TryFrom<v1::GetFlagResponse> for FlagState {
    type Error = InvalidMessage;

    fn try_from(response: v1::GetFlagResponse) -> Result<Self, Self::Error> {
        let v1::GetFlagResponse { flag, last_change, revision } = response;
        let flag = flag_from_proto(flag.unwrap_or_default(), &Path::Root("flag"))?;
        let last_change = last_change
            .map(|entry| history_entry_from_proto(entry, &Path::Root("last_change")))
            .transpose()?;
        Ok(FlagState { flag, last_change, revision })
    }
}

/// The answer to `ListFlags`.
pub fn list_flags_response(flags: &[core::Flag], revision: u64) -> v1::ListFlagsResponse {
    v1::ListFlagsResponse { flags: flags.iter().map(v1::Flag::from).collect(), revision }
}

/// The answer to `ListSegments`.
pub fn list_segments_response(segments: &[core::Segment], revision: u64) -> v1::ListSegmentsResponse {
    v1::ListSegmentsResponse { segments: segments.iter().map(v1::Segment::from).collect(), revision }
}

/// A list of flags or segments at one revision, as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed<T> {
    /// The flags or segments.
    pub items: Vec<T>,
    /// The environment's revision.
    pub revision: u64,
}

impl TryFrom<v1::ListFlagsResponse> for Listed<core::Flag> {
    type Error = InvalidMessage;

    fn try_from(response: v1::ListFlagsResponse) -> Result<Self, Self::Error> {
        let v1::ListFlagsResponse { flags, revision } = response;
        let set = super::flag_set_from_proto(flags, Vec::new())?;
        Ok(Listed { items: set.flags, revision })
    }
}

impl TryFrom<v1::ListSegmentsResponse> for Listed<core::Segment> {
    type Error = InvalidMessage;

    fn try_from(response: v1::ListSegmentsResponse) -> Result<Self, Self::Error> {
        let v1::ListSegmentsResponse { segments, revision } = response;
        let set = super::flag_set_from_proto(Vec::new(), segments)?;
        Ok(Listed { items: set.segments, revision })
    }
}

/// A page of history, newest first; `next_before` continues it (0: no more).
pub fn history_response(entries: &[core::HistoryEntry], next_before: u64) -> v1::HistoryResponse {
    v1::HistoryResponse { entries: entries.iter().map(v1::HistoryEntry::from).collect(), next_before }
}

/// A page of history as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPage {
    /// Newest first.
    pub entries: Vec<core::HistoryEntry>,
    /// Pass as `before` for the next page; 0 when there is none.
    pub next_before: u64,
}

impl TryFrom<v1::HistoryResponse> for HistoryPage {
    type Error = InvalidMessage;

    fn try_from(response: v1::HistoryResponse) -> Result<Self, Self::Error> {
        let v1::HistoryResponse { entries, next_before } = response;
        let root = Path::Root("entries");
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| history_entry_from_proto(entry, &root.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(HistoryPage { entries, next_before })
    }
}

/// The answer to `Apply`.
pub fn apply_response(
    revision: u64,
    changes: &[core::AppliedChange],
    kept_killed: Vec<String>,
) -> v1::ApplyResponse {
    v1::ApplyResponse {
        revision,
        changes: changes.iter().map(v1::AppliedChange::from).collect(),
        kept_killed,
    }
}

/// `Apply`'s answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    /// The environment's revision after the apply.
    pub revision: u64,
    /// Segments first, then flags, each by key.
    pub changes: Vec<core::AppliedChange>,
    /// Killed flags the file has enabled, which stay killed.
    pub kept_killed: Vec<String>,
}

impl TryFrom<v1::ApplyResponse> for ApplyOutcome {
    type Error = InvalidMessage;

    fn try_from(response: v1::ApplyResponse) -> Result<Self, Self::Error> {
        let v1::ApplyResponse { revision, changes, kept_killed } = response;
        let root = Path::Root("changes");
        let changes = changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| applied_change_from_proto(change, &root.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(ApplyOutcome { revision, changes, kept_killed })
    }
}

/// What a backup copy holds, as flagd checked it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupTotals {
    /// The file's size in bytes.
    pub total_bytes: u64,
    /// Environments in the copy.
    pub environments: u64,
    /// History entries in the copy.
    pub changes: u64,
    /// Live flags in the copy.
    pub flags: u64,
}

/// A piece of a backup: the first carries `totals`, the rest only their bytes.
pub fn backup_chunk(data: Vec<u8>, totals: Option<BackupTotals>) -> v1::BackupChunk {
    let BackupTotals { total_bytes, environments, changes, flags } = totals.unwrap_or_default();
    v1::BackupChunk { data, total_bytes, environments, changes, flags }
}

/// The answer to `PointInTimeRestore`.
pub fn restore_response(
    restored_revision: u64,
    restored_at_ms: Option<i64>,
    applied: v1::ApplyResponse,
) -> v1::PointInTimeRestoreResponse {
    v1::PointInTimeRestoreResponse {
        restored_revision,
        restored_at_unix_ms: restored_at_ms.unwrap_or(0),
        applied: Some(applied),
    }
}

/// `PointInTimeRestore`'s answer as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreOutcome {
    /// The revision whose state was restored.
    pub restored_revision: u64,
    /// When it was committed (ms since the Unix epoch); `None` for revision 0.
    pub restored_at_ms: Option<i64>,
    /// The changes; `kept_killed` names the flags left killed.
    pub applied: ApplyOutcome,
}

impl TryFrom<v1::PointInTimeRestoreResponse> for RestoreOutcome {
    type Error = InvalidMessage;

    fn try_from(response: v1::PointInTimeRestoreResponse) -> Result<Self, Self::Error> {
        let v1::PointInTimeRestoreResponse { restored_revision, restored_at_unix_ms, applied } = response;
        let applied = applied.ok_or_else(|| Path::Root("applied").invalid("the changes"))?;
        Ok(RestoreOutcome {
            restored_revision,
            restored_at_ms: (restored_revision > 0).then_some(restored_at_unix_ms),
            applied: ApplyOutcome::try_from(applied)?,
        })
    }
}

/// A bookmark: a revision an operator named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookmarkInfo {
    /// The environment.
    pub environment: String,
    /// Its name.
    pub name: String,
    /// The revision it names.
    pub revision: u64,
    /// Who made it, and why.
    pub by: Authorship,
    /// When (ms since the Unix epoch).
    pub created_ms: i64,
}

impl From<&BookmarkInfo> for v1::Bookmark {
    fn from(bookmark: &BookmarkInfo) -> Self {
        let BookmarkInfo { environment, name, revision, by, created_ms } = bookmark;
        v1::Bookmark {
            environment: environment.clone(),
            name: name.clone(),
            revision: *revision,
            actor: by.actor.clone(),
            reason: by.reason.clone(),
            created_unix_ms: *created_ms,
        }
    }
}

impl From<v1::Bookmark> for BookmarkInfo {
    fn from(bookmark: v1::Bookmark) -> Self {
        let v1::Bookmark { environment, name, revision, actor, reason, created_unix_ms } = bookmark;
        BookmarkInfo {
            environment,
            name,
            revision,
            by: Authorship { actor, reason },
            created_ms: created_unix_ms,
        }
    }
}
