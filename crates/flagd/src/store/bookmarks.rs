//! Bookmarks: an environment's revision under a name an operator chose (`pre-deploy-4711`),
//! so a diff or a restore can name the point instead of looking its number up.
//!
//! A bookmark is written once: a name that already exists is refused rather than moved, so
//! "restore to pre-deploy-4711" means the same state whoever runs it, however late. Names
//! use the key alphabet; a bookmark of an environment never written names revision 0.

use flag_core::MAX_KEY_LEN;
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::records::{Now, WriteMeta, decode, encode};
use super::tables::{BOOKMARKS, ENVIRONMENTS, is_environment_name, revision_of};

/// A named revision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bookmark {
    /// The environment.
    pub(crate) environment: String,
    /// Its name.
    pub(crate) name: String,
    /// The revision it names.
    pub(crate) revision: u64,
    /// Who made it, and why.
    pub(crate) actor: String,
    pub(crate) reason: String,
    /// When it was made (ms since the Unix epoch).
    pub(crate) created_ms: i64,
}

/// A bookmark as its row holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookmarkRecord {
    revision: u64,
    actor: String,
    reason: String,
    created_ms: i64,
}

/// Why a bookmark could not be made or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BookmarkError {
    /// The name is taken.
    #[error("bookmark {name:?} of {environment:?} exists already (revision {revision}); choose another name")]
    Exists {
        /// The environment.
        environment: String,
        /// The name.
        name: String,
        /// The revision it names.
        revision: u64,
    },
    /// No bookmark of that name.
    #[error("no bookmark {name:?} in environment {environment:?} (`flagctl bookmark list` shows them)")]
    NotFound {
        /// The environment.
        environment: String,
        /// The name.
        name: String,
    },
    /// A name outside the key alphabet, or an environment name that cannot exist.
    #[error("{what} {name:?}: expected 1 to {MAX_KEY_LEN} of A-Z a-z 0-9 _ . -")]
    InvalidName {
        /// "bookmark" or "environment".
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redb::TransactionError> for BookmarkError {
    fn from(error: redb::TransactionError) -> Self {
        BookmarkError::Store(error.into())
    }
}

impl From<redb::TableError> for BookmarkError {
    fn from(error: redb::TableError) -> Self {
        BookmarkError::Store(error.into())
    }
}

impl From<redb::StorageError> for BookmarkError {
    fn from(error: redb::StorageError) -> Self {
        BookmarkError::Store(error.into())
    }
}

impl From<redb::CommitError> for BookmarkError {
    fn from(error: redb::CommitError) -> Self {
        BookmarkError::Store(error.into())
    }
}

impl super::error::HasStoreError for BookmarkError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            BookmarkError::Store(error) => Some(error),
            _ => None,
        }
    }
}

/// See [`Store::bookmark`](super::Store::bookmark).
pub(super) fn create(
    db: &Database,
    environment: &str,
    name: &str,
    meta: &WriteMeta,
) -> Result<Bookmark, BookmarkError> {
    if !is_environment_name(environment) {
        return Err(BookmarkError::InvalidName { what: "environment", name: environment.to_owned() });
    }
    if !is_bookmark_name(name) {
        return Err(BookmarkError::InvalidName { what: "bookmark", name: name.to_owned() });
    }
    let txn = db.begin_write()?;
    let bookmark = {
        let revision = revision_of(&txn.open_table(ENVIRONMENTS)?, environment)?;
        let mut bookmarks = txn.open_table(BOOKMARKS)?;
        if let Some(existing) = bookmarks.get((environment, name))? {
            let existing: BookmarkRecord =
                decode(existing.value(), "bookmarks", format_args!("({environment}, {name})"))?;
            return Err(BookmarkError::Exists {
                environment: environment.to_owned(),
                name: name.to_owned(),
                revision: existing.revision,
            });
        }
        let record = BookmarkRecord {
            revision,
            actor: meta.actor.clone(),
            reason: meta.reason.clone(),
            created_ms: Now::new().millis,
        };
        bookmarks.insert((environment, name), encode(&record)?.as_slice())?;
        bookmark(environment, name, record)
    };
    txn.commit()?;
    Ok(bookmark)
}

/// See [`Store::bookmarks`](super::Store::bookmarks).
pub(super) fn list(db: &Database, environment: &str) -> Result<Vec<Bookmark>, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(BOOKMARKS)?;
    let mut bookmarks = Vec::new();
    for row in table.range((environment, "")..)? {
        let (key, value) = row?;
        let (row_environment, name) = key.value();
        if row_environment != environment {
            break;
        }
        let record: BookmarkRecord =
            decode(value.value(), "bookmarks", format_args!("({environment}, {name})"))?;
        bookmarks.push(bookmark(environment, name, record));
    }
    Ok(bookmarks)
}

/// See [`Store::bookmarked`](super::Store::bookmarked).
pub(super) fn revision(db: &Database, environment: &str, name: &str) -> Result<u64, BookmarkError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(BOOKMARKS)?;
    let Some(row) = table.get((environment, name))? else {
        return Err(BookmarkError::NotFound { environment: environment.to_owned(), name: name.to_owned() });
    };
    let record: BookmarkRecord = decode(row.value(), "bookmarks", format_args!("({environment}, {name})"))?;
    Ok(record.revision)
}

fn bookmark(environment: &str, name: &str, record: BookmarkRecord) -> Bookmark {
    let BookmarkRecord { revision, actor, reason, created_ms } = record;
    Bookmark {
        environment: environment.to_owned(),
        name: name.to_owned(),
        revision,
        actor,
        reason,
        created_ms,
    }
}

fn is_bookmark_name(name: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
