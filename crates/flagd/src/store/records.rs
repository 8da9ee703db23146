//! What the store returns (history entries, committed writes) and the records it keeps in
//! its tables, with their JSON encoding.

use std::fmt::Display;
use std::time::{SystemTime, UNIX_EPOCH};

use flag_core::{Flag, HistoryEntry, Operation, SubjectKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::subject::Versioned;

/// A write that is durably committed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Committed {
    /// The environment's revision after the write.
    pub(crate) revision: u64,
    /// The history entry the write appended.
    pub(crate) entry: HistoryEntry,
    /// Nothing was written: the subject already was what the write asked (a kill of a
    /// killed flag). `entry` is then the write that made it so, and `revision` its revision.
    pub(crate) unchanged: bool,
}

impl Committed {
    /// The answer of a write that found nothing to do: `entry` made it so.
    pub(crate) fn unchanged(entry: HistoryEntry) -> Committed {
        Committed { revision: entry.revision, entry, unchanged: true }
    }
}

/// A live flag with the history entry that made it what it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FlagRecord {
    /// The flag as stored: `version` and `metadata.created_at/updated_at` set by the store.
    pub(crate) flag: Flag,
    /// The write that produced this version (who, when, why).
    pub(crate) last_change: HistoryEntry,
}

/// Who asked for a write, and why; recorded in history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WriteMeta {
    /// The person or system writing: the principal whose token was accepted, or, on a server
    /// without tokens, whoever the client said it was.
    pub(crate) actor: String,
    /// Whom the client said it wrote for, when that is not `actor` (and `actor` is a
    /// principal): recorded beside it, never instead of it.
    pub(crate) on_behalf_of: Option<String>,
    /// Why, in their words; shown in history and incident timelines.
    pub(crate) reason: String,
}

/// The value of a `flag_versions`/`segment_versions` row: the key already holds the
/// environment and revision, the head or the next version's `previous` the subject and
/// version.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredVersion<T> {
    /// The environment's revision after the write.
    pub(super) revision: u64,
    /// What the write did.
    pub(super) operation: Operation,
    /// Who asked for it.
    pub(super) actor: String,
    /// Whom `actor` said it acted for. Absent in rows from before principals, which read
    /// as nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) on_behalf_of: Option<String>,
    /// Why.
    pub(super) reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub(super) timestamp_ms: i64,
    /// The content after the write; absent for deletes.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub(super) content: Option<T>,
    /// The revision of the subject's version before this one; absent for version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous: Option<u64>,
}

fn none<T>() -> Option<T> {
    None
}

/// The value of a `changes` row: which subject the revision wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ChangeRecord {
    /// Flag or segment.
    pub(super) kind: SubjectKind,
    /// Its key.
    pub(super) key: String,
    /// The version the revision wrote: the key of its history row.
    pub(super) version: u64,
    /// Whether the subject existed just before this revision. For the first change of a key
    /// after revision `since`, this says whether a client at `since` has it — so a key
    /// created and deleted within a delta can be left out rather than sent as a deletion.
    pub(super) existed_before: bool,
}

impl<T: Versioned> StoredVersion<T> {
    /// The public form of this row.
    pub(super) fn into_entry(self, environment: &str, key: &str, version: u64) -> HistoryEntry {
        let StoredVersion {
            revision,
            operation,
            actor,
            on_behalf_of,
            reason,
            timestamp_ms,
            content,
            previous: _,
        } = self;
        let (flag, segment) = T::into_entry_fields(content);
        HistoryEntry {
            environment: environment.to_owned(),
            kind: T::KIND,
            key: key.to_owned(),
            version,
            revision,
            operation,
            actor,
            on_behalf_of,
            reason,
            timestamp_ms,
            flag,
            segment,
        }
    }
}

/// When a write happened, in the two forms the store records.
pub(super) struct Now {
    /// For history entries.
    pub(super) millis: i64,
    /// For flag metadata: RFC 3339 UTC with milliseconds.
    pub(super) text: String,
}

impl Now {
    pub(super) fn new() -> Now {
        let now = SystemTime::now();
        // A clock before 1970 is a broken clock; 0 keeps history readable rather than failing writes.
        let millis =
            now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Now { millis, text: humantime::format_rfc3339_millis(now).to_string() }
    }
}

/// The JSON bytes of a record.
pub(super) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(StoreError::Encode)
}

/// A record from its JSON bytes; `table` and `key` say where it was, should it be corrupt.
pub(super) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    table: &'static str,
    key: impl Display,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table,
        key: key.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_versions_read_back_and_are_readable_json() {
        let flag = Flag::rollout("chat", 5.0).unwrap();
        let stored = StoredVersion {
            revision: 7,
            operation: Operation::SetRollout,
            actor: "ana".into(),
            on_behalf_of: None,
            reason: "ramp".into(),
            timestamp_ms: 1_700_000_000_000,
            content: Some(flag.clone()),
            previous: Some(4),
        };
        let bytes = encode(&stored).unwrap();
        let json = String::from_utf8(bytes.clone()).unwrap();
        assert!(json.contains(r#""operation":"set_rollout""#), "{json}");
        let back: StoredVersion<Flag> = decode(&bytes, "flag_versions", "x").unwrap();
        let entry = back.into_entry("production", "chat", 3);
        assert_eq!((entry.version, entry.revision, entry.flag), (3, 7, Some(flag)));
        assert_eq!(entry.segment, None);

        let deleted =
            StoredVersion::<Flag> { content: None, ..decode(&bytes, "flag_versions", "x").unwrap() };
        let json = String::from_utf8(encode(&deleted).unwrap()).unwrap();
        assert!(!json.contains("content"), "a delete stores no content: {json}");
        assert!(!json.contains("on_behalf_of"), "nobody is not written: {json}");
    }

    #[test]
    fn a_row_from_before_principals_reads_as_acting_for_nobody_and_a_new_one_keeps_whom() {
        let old = br#"{"revision":2,"operation":"kill","actor":"ana","reason":"incident","timestamp_ms":5}"#;
        let entry =
            decode::<StoredVersion<Flag>>(old, "flag_versions", "x").unwrap().into_entry("p", "chat", 2);
        assert_eq!((entry.actor.as_str(), entry.on_behalf_of), ("ana", None));
        let stored = StoredVersion::<Flag> {
            revision: 3,
            operation: Operation::Revive,
            actor: "ci-bot".into(),
            on_behalf_of: Some("ana".into()),
            reason: String::new(),
            timestamp_ms: 6,
            content: None,
            previous: Some(2),
        };
        let back: StoredVersion<Flag> = decode(&encode(&stored).unwrap(), "flag_versions", "x").unwrap();
        assert_eq!(back.on_behalf_of.as_deref(), Some("ana"));
    }

    #[test]
    fn corrupt_rows_name_their_table_and_key() {
        let error = decode::<ChangeRecord>(b"{not json", "changes", "(production, 4)").unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { table: "changes", key, .. } if key == "(production, 4)")
        );
    }
}
