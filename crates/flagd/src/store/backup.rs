//! A consistent copy of the store while it serves: every table copied from one read
//! transaction (redb's MVCC: writers go on meanwhile, and the copy is exactly one committed
//! state) into a new redb file, which is then checked like a store at start.
//!
//! Copying rows rather than the file's bytes because redb locks the file and its pages are
//! only consistent at a commit; the copy is also compact (no free pages). Restoring is
//! starting flagd on the copy.

use std::path::Path;

use super::backend::{Database, ReadableTable};

use super::check::{self, CheckReport};
use super::error::StoreError;
use super::tables::{
    BOOKMARKS, CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, FLAG_HEADS, FLAG_VERSIONS, FLAGS, META, ROLLOUTS,
    SEGMENT_HEADS, SEGMENT_VERSIONS, SEGMENTS, WEBHOOK_CURSORS, WEBHOOKS,
};

/// Copies `db` as one committed state to a new file at `to`, which must not exist, and
/// checks the copy.
pub(super) fn copy(db: &Database, to: &Path) -> Result<CheckReport, StoreError> {
    if to.exists() {
        return Err(StoreError::Read {
            path: to.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the backup file already exists"),
        });
    }
    let source = db.begin_read()?;
    let target = Database::Redb(
        redb::Database::create(to).map_err(|source| StoreError::Open { path: to.to_owned(), source })?,
    );
    let txn = target.begin_write()?; // durable: redb commits with `Durability::Immediate` by default
    // A macro, not a generic function: the tables' key types differ, and redb's borrowed
    // key types make one generic copy harder to state than a loop per table. A backup keeps
    // the webhook cursors: a flagd started on it resumes delivering where the copy was made.
    macro_rules! copy_table {
        ($($table:expr),+) => {$({
            let mut out = txn.open_table($table)?;
            for row in source.open_table($table)?.iter()? {
                let (key, value) = row?;
                out.insert(key.value(), value.value())?;
            }
        })+};
    }
    copy_table!(
        META,
        ENVIRONMENTS,
        FLAGS,
        SEGMENTS,
        FLAG_VERSIONS,
        FLAG_HEADS,
        SEGMENT_VERSIONS,
        SEGMENT_HEADS,
        CHANGES,
        BOOKMARKS,
        ENVIRONMENT_INFO,
        WEBHOOKS,
        WEBHOOK_CURSORS,
        ROLLOUTS
    );
    txn.commit()?;
    check::invariants(&target, to)
}
