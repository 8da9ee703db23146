//! Upgrading a redb file of an older store format when it is opened.
//!
//! Format 1 kept versions keyed by (environment, key, version); format 2 keys them by the
//! revision that wrote them, chained, with a head per key (see `history` for why). The
//! upgrade runs inside the transaction that opens the store, so a crash during it leaves the
//! file as it was, and the check that follows every open reads the result. PostgreSQL
//! stores are upgraded by their schema migrations instead (see `backend::schema`).

use serde_json::{Map, Value};

use super::backend::{ReadableTable, TableDefinition, WriteTransaction};
use super::error::StoreError;
use super::history::{self, Head};
use super::records::{decode, encode};
use super::tables::{FLAG_HEADS, FLAG_VERSIONS, SEGMENT_HEADS, SEGMENT_VERSIONS};

/// `(environment, key, version)`: format 1's version key.
type VersionKey = (&'static str, &'static str, u64);

/// Format 1's version tables.
pub(super) const FLAG_HISTORY_1: TableDefinition<VersionKey, &[u8]> =
    TableDefinition::new("flag_history", &["environment", "key", "version"], "record");
pub(super) const SEGMENT_HISTORY_1: TableDefinition<VersionKey, &[u8]> =
    TableDefinition::new("segment_history", &["environment", "key", "version"], "record");

/// Brings a file of format `found` to the current one; `false` when this code cannot read
/// `found` at all.
pub(super) fn upgrade(txn: &WriteTransaction, found: u64) -> Result<bool, StoreError> {
    if found != 1 {
        return Ok(false);
    }
    rekey(
        txn,
        (FLAG_HISTORY_1, "flag_history"),
        (FLAG_VERSIONS, FLAG_HEADS),
        ("flag_versions", "flag_heads"),
    )?;
    rekey(
        txn,
        (SEGMENT_HISTORY_1, "segment_history"),
        (SEGMENT_VERSIONS, SEGMENT_HEADS),
        ("segment_versions", "segment_heads"),
    )?;
    Ok(true)
}

/// Moves every row of format 1's `old` table into the versions and heads tables `new`.
fn rekey(
    txn: &WriteTransaction,
    (old, old_name): (TableDefinition<VersionKey, &'static [u8]>, &'static str),
    new: history::Definitions,
    names: (&'static str, &'static str),
) -> Result<(), StoreError> {
    {
        let rows = txn.open_table(old)?;
        let mut history = history::open(txn, new, names)?;
        // Rows come in key order: each key's versions one after the other, oldest first.
        let mut last: Option<(String, String, u64)> = None;
        for row in rows.iter()? {
            let (key, value) = row?;
            let (environment, subject, version) = key.value();
            let at = || format!("({environment}, {subject}, {version})");
            let mut stored: Map<String, Value> = decode(value.value(), old_name, at())?;
            let revision = stored.get("revision").and_then(Value::as_u64).ok_or_else(|| {
                StoreError::Missing { table: old_name, key: format!("the revision of {}", at()) }
            })?;
            if let Some((_, _, previous)) =
                last.as_ref().filter(|(env, key, _)| env == environment && key == subject)
            {
                stored.insert("previous".to_owned(), Value::from(*previous));
            }
            history.append(environment, subject, Head { version, revision }, &encode(&stored)?)?;
            last = Some((environment.to_owned(), subject.to_owned(), revision));
        }
    }
    txn.delete_table(old)
}
