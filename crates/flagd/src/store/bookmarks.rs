//! Bookmarks: an environment's revision under a name an operator chose (`pre-deploy-4711`),
//! so a diff or a restore can name the point instead of looking its number up.
//!
//! A bookmark is written once: a name that already exists is refused rather than moved, so
//! "restore to pre-deploy-4711" means the same state whoever runs it, however late. Names
//! use the key alphabet; a bookmark of an environment never written names revision 0.

use super::backend::{Database, ReadableTable};
use flag_core::MAX_KEY_LEN;
use serde::{Deserialize, Serialize};

use super::environments;
use super::error::{BookmarkError, StoreError};
use super::records::{Now, WriteMeta, decode, encode};
use super::tables::{BOOKMARKS, ENVIRONMENTS, MAX_ENVIRONMENT_LEN, is_environment_name, is_key_name};

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

/// See [`Store::bookmark`](super::Store::bookmark).
pub(super) fn create(
    db: &Database,
    environment: &str,
    name: &str,
    meta: &WriteMeta,
) -> Result<Bookmark, BookmarkError> {
    if !is_environment_name(environment) {
        return Err(BookmarkError::InvalidName {
            what: "environment",
            name: environment.to_owned(),
            max: MAX_ENVIRONMENT_LEN,
        });
    }
    if !is_key_name(name) {
        return Err(BookmarkError::InvalidName { what: "bookmark", name: name.to_owned(), max: MAX_KEY_LEN });
    }
    let txn = db.begin_write()?;
    let bookmark = {
        let environments = txn.open_table(ENVIRONMENTS)?;
        let revision = match environments.get(environment)? {
            Some(revision) => revision.value(),
            None => return Err(environments::unknown(&environments, environment)?.into()),
        };
        drop(environments);
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
    environments::readable(&txn, environment)?;
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

/// The revision a bookmark row names (for the store's check).
pub(super) fn revision_of_row(bytes: &[u8], environment: &str, name: &str) -> Result<u64, StoreError> {
    let record: BookmarkRecord = decode(bytes, "bookmarks", format_args!("({environment}, {name})"))?;
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
