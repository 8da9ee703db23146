//! The redb tables, their keys, and the schema version that guards them.
//!
//! Keys are redb tuples, compared element by element, so every table is ordered by
//! environment first: one environment's rows are one contiguous range, and within it a
//! flag's history is ordered by version and the change log by revision. Values are the JSON
//! of the records in `records` (see the module docs of `store` for why JSON).
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name (`schema_version`) | u64 |
//! | `environments` | environment | its revision (u64): how many writes it has had; present while it exists |
//! | `environment_info` | environment | `EnvironmentRecord`: who created it (from what), who deleted it at which revision |
//! | `flags` | (environment, flag key) | the current [`Flag`](flag_core::Flag); absent once deleted |
//! | `segments` | (environment, segment key) | the current [`Segment`](flag_core::Segment) |
//! | `flag_versions` | (environment, revision) | `StoredVersion<Flag>`: who/when/why, the content, and the revision of the flag's previous version |
//! | `flag_heads` | (environment, flag key) | `Head`: the newest version of the flag, deleted or not, and its revision |
//! | `segment_versions` | (environment, revision) | `StoredVersion<Segment>` |
//! | `segment_heads` | (environment, segment key) | `Head` |
//! | `changes` | (environment, revision) | `ChangeRecord`: which subject and version that revision wrote |
//! | `bookmarks` | (environment, name) | `BookmarkRecord`: a revision named by an operator, who, when |
//! | `webhooks` | webhook id | `WebhookRecord`: when it was registered, what it covered at the last start |
//! | `webhook_cursors` | (webhook id, environment) | the last revision the webhook's receiver acknowledged (u64) |
//! | `rollouts` | (environment, flag key) | flag-core's [`Rollout`](flag_core::Rollout): the flag's latest plan and how far it got |
//!
//! Versions are keyed by the revision that wrote them, so a write appends them instead of
//! changing pages all over the history (see `history`); each names its predecessor's
//! revision, and a key's versions are walked from its head.
//!
//! The current tables are derivable from the history tables (the newest version of each
//! key); they exist so that listing an environment reads each live row once instead of
//! walking every version. One write transaction updates all of them, so they cannot disagree
//! — except that a large apply commits its version rows first, at revisions beyond the
//! environment's, where no read looks (see `apply`): rows there are an unfinished apply's,
//! overwritten or discarded by the writes that take those revisions.

use super::backend::{ReadableTable, TableDefinition};

use super::error::StoreError;

/// The layout version this code reads and writes; bumped by any incompatible change to
/// the tables or records, so an old binary refuses a newer file instead of misreading it.
pub(super) const SCHEMA_VERSION: u64 = flag_proto::STORE_FORMAT;
/// The `meta` row holding the schema version.
pub(super) const SCHEMA_VERSION_KEY: &str = "schema_version";
/// A random number chosen when the file is created: revisions of two stores (a wiped and
/// recreated file, another server) are not comparable, and clients tell them apart by it.
pub(super) const STORE_ID_KEY: &str = "store_id";

/// Longest environment name accepted.
pub(super) const MAX_ENVIRONMENT_LEN: usize = 64;

/// `(environment, key)`.
pub(super) type SubjectKey = (&'static str, &'static str);
/// `(environment, revision)`.
pub(super) type RevisionKey = (&'static str, u64);

/// The key columns of `(environment, key)` tables on PostgreSQL.
const SUBJECT: &[&str] = &["environment", "key"];
/// The key columns of `(environment, revision)` tables on PostgreSQL.
const REVISION: &[&str] = &["environment", "revision"];

pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta", &["name"], "value");
pub(super) const ENVIRONMENTS: TableDefinition<&str, u64> =
    TableDefinition::new("environments", &["environment"], "revision");
pub(super) const FLAGS: TableDefinition<SubjectKey, &[u8]> = TableDefinition::new("flags", SUBJECT, "record");
pub(super) const SEGMENTS: TableDefinition<SubjectKey, &[u8]> =
    TableDefinition::new("segments", SUBJECT, "record");
pub(super) const FLAG_VERSIONS: TableDefinition<RevisionKey, &[u8]> =
    TableDefinition::new("flag_versions", REVISION, "record");
pub(super) const FLAG_HEADS: TableDefinition<SubjectKey, &[u8]> =
    TableDefinition::new("flag_heads", SUBJECT, "record");
pub(super) const SEGMENT_VERSIONS: TableDefinition<RevisionKey, &[u8]> =
    TableDefinition::new("segment_versions", REVISION, "record");
pub(super) const SEGMENT_HEADS: TableDefinition<SubjectKey, &[u8]> =
    TableDefinition::new("segment_heads", SUBJECT, "record");
pub(super) const CHANGES: TableDefinition<RevisionKey, &[u8]> =
    TableDefinition::new("changes", REVISION, "record");
/// Added after schema version 1 without a bump: a file without it gets it at open, and an
/// older flagd never reads it.
pub(super) const BOOKMARKS: TableDefinition<SubjectKey, &[u8]> =
    TableDefinition::new("bookmarks", &["environment", "name"], "record");
/// Added like `bookmarks`; an environment without a row came into being by its first write.
pub(super) const ENVIRONMENT_INFO: TableDefinition<&str, &[u8]> =
    TableDefinition::new("environment_info", &["environment"], "record");
/// The webhook outbox (see `webhook_cursors`): added like `bookmarks`, without a bump.
pub(super) const WEBHOOKS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("webhooks", &["webhook"], "record");
/// `(webhook id, environment)` → the last revision delivered.
pub(super) const WEBHOOK_CURSORS: TableDefinition<SubjectKey, u64> =
    TableDefinition::new("webhook_cursors", &["webhook", "environment"], "revision");

/// Rollout plans, one row per flag (its latest plan): added like `bookmarks`, without a bump.
pub(super) const ROLLOUTS: TableDefinition<SubjectKey, &[u8]> =
    TableDefinition::new("rollouts", SUBJECT, "record");

/// Whether `name` can name an environment: 1 to 64 of `A-Z a-z 0-9 _ . -`.
///
/// Writes check it themselves ([`WriteError::InvalidEnvironment`](super::WriteError)); reads
/// accept any name (one that cannot exist has no data), so a server that refuses bad names
/// on reads calls this. Environment names end up in URLs, metric labels and file names, so they get the
/// conservative alphabet of flag keys.
pub(crate) fn is_environment_name(name: &str) -> bool {
    in_key_alphabet(name, MAX_ENVIRONMENT_LEN)
}

/// Whether `name` can name a bookmark: a flag key's alphabet and length.
pub(super) fn is_key_name(name: &str) -> bool {
    in_key_alphabet(name, flag_core::MAX_KEY_LEN)
}

fn in_key_alphabet(name: &str, max_len: usize) -> bool {
    (1..=max_len).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// An environment's revision: 0 when it has never been written.
pub(super) fn revision_of(
    environments: &impl ReadableTable<&'static str, u64>,
    environment: &str,
) -> Result<u64, StoreError> {
    Ok(environments.get(environment)?.map_or(0, |revision| revision.value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_use_the_key_alphabet() {
        for good in ["production", "staging-eu.1", "a", "A_B", &"x".repeat(64)] {
            assert!(is_environment_name(good), "{good:?}");
        }
        for bad in ["", "prod uction", "prod/eu", "ünïcode", &"x".repeat(65)] {
            assert!(!is_environment_name(bad), "{bad:?}");
        }
    }
}
