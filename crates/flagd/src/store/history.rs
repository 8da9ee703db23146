//! A subject's versions: each stored under the revision that wrote it, chained from the
//! newest back to the first, with one head row per key saying where the newest is.
//!
//! Why not keyed by (environment, key, version), as store format 1 was: redb copies every
//! page a transaction changes, and with versions ordered by key, the new versions of a
//! 10,000-flag apply land on 10,000 different pages spread over the whole history. The
//! apply's commit then rewrote most of the history table, and took longer the older the
//! environment was (measured with redb alone: ~230 ms after 12 such applies, against a
//! flat ~25 ms with the versions appended). Keyed by revision, a write's versions go at the
//! end of its environment's range, and only the small heads table (one row per key, bounded
//! by the environment's size) is touched in place.
//!
//! The cost moves to reads by version number: version `v` of a key whose newest is `h` is
//! `h - v + 1` row reads away (on PostgreSQL, as many round trips). History is mostly read
//! newest first (a page, the version before an entry, the previous version for a rollback),
//! where each step is one read; a rollback to an old version walks back to it.

use flag_core::{Flag, Segment, SubjectKind};
use serde::{Deserialize, Serialize};

use super::backend::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction,
};
use super::error::StoreError;
use super::records::{decode, encode};
use super::subject::Versioned;
use super::tables::{RevisionKey, SubjectKey};

/// The value of a `flag_heads`/`segment_heads` row: where a key's newest version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Head {
    /// Its number.
    pub(super) version: u64,
    /// The revision that wrote it: its row's key in the versions table.
    pub(super) revision: u64,
}

/// The one field of a version row a walk needs: serde skips the rest, content included,
/// without building it.
#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    previous: Option<u64>,
}

/// Where a walk over a key's versions is: the version it reads next, and the revision
/// that version is stored at.
pub(super) type Cursor = (u64, u64);

/// One version, as stored.
#[derive(Debug)]
pub(super) struct Version {
    pub(super) version: u64,
    pub(super) revision: u64,
    /// The row: a `StoredVersion` of the subject's type.
    pub(super) bytes: Vec<u8>,
}

/// Rows of a versions table, in either kind of transaction.
pub(super) trait VersionRows: ReadableTable<RevisionKey, &'static [u8]> {}
impl<T: ReadableTable<RevisionKey, &'static [u8]>> VersionRows for T {}

/// Rows of a heads table, in either kind of transaction.
pub(super) trait HeadRows: ReadableTable<SubjectKey, &'static [u8]> {}
impl<T: ReadableTable<SubjectKey, &'static [u8]>> HeadRows for T {}

/// The versions and heads of one kind of subject, open in one transaction.
pub(super) struct History<V, H> {
    versions: V,
    heads: H,
    /// The tables' names (versions, heads), for errors.
    names: (&'static str, &'static str),
}

/// The versions and heads tables of a read transaction.
pub(super) type Readable =
    History<ReadOnlyTable<RevisionKey, &'static [u8]>, ReadOnlyTable<SubjectKey, &'static [u8]>>;

/// The history of `T` in a read transaction.
pub(super) fn read<T: Versioned>(txn: &ReadTransaction) -> Result<Readable, StoreError> {
    Ok(History {
        versions: txn.open_table(T::VERSIONS)?,
        heads: txn.open_table(T::HEADS)?,
        names: (T::VERSIONS_NAME, T::HEADS_NAME),
    })
}

/// The versions and heads tables of a write transaction.
pub(super) type Writable<'t> =
    History<Table<'t, RevisionKey, &'static [u8]>, Table<'t, SubjectKey, &'static [u8]>>;

/// The definitions of a versions table and its heads table.
pub(super) type Definitions =
    (TableDefinition<RevisionKey, &'static [u8]>, TableDefinition<SubjectKey, &'static [u8]>);

/// The history of `T` in a write transaction, to read and to append to.
pub(super) fn write<T: Versioned>(txn: &WriteTransaction) -> Result<Writable<'_>, StoreError> {
    open(txn, (T::VERSIONS, T::HEADS), (T::VERSIONS_NAME, T::HEADS_NAME))
}

/// The history in the tables `(versions, heads)`, named `names`, of a write transaction.
pub(super) fn open<'t>(
    txn: &'t WriteTransaction,
    (versions, heads): Definitions,
    names: (&'static str, &'static str),
) -> Result<Writable<'t>, StoreError> {
    Ok(History { versions: txn.open_table(versions)?, heads: txn.open_table(heads)?, names })
}

impl<V: VersionRows, H: HeadRows> History<V, H> {
    /// Where `key`'s newest version is, deleted or not; `None` when it was never written.
    pub(super) fn head(&self, environment: &str, key: &str) -> Result<Option<Head>, StoreError> {
        match self.heads.get((environment, key))? {
            None => Ok(None),
            Some(row) => decode(row.value(), self.names.1, format_args!("({environment}, {key})")).map(Some),
        }
    }

    /// Where a walk from `key`'s newest version starts; `None` when it was never written.
    pub(super) fn newest(&self, environment: &str, key: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self.head(environment, key)?.map(|head| (head.version, head.revision)))
    }

    /// The newest version number of `key`: 0 when it was never written. New versions
    /// continue from here, so a re-created flag never reuses a version number.
    pub(super) fn latest_version(&self, environment: &str, key: &str) -> Result<u64, StoreError> {
        Ok(self.head(environment, key)?.map_or(0, |head| head.version))
    }

    /// The row written at `revision`, if that revision wrote a subject of this kind.
    pub(super) fn at_revision(
        &self,
        environment: &str,
        revision: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.versions.get((environment, revision))?.map(|row| row.value().to_vec()))
    }

    /// `key`'s versions newest first, from version `from` (its newest when `None`). Versions
    /// 1 to the newest all exist: every write appends the next, none is removed.
    pub(super) fn newest_first(
        &self,
        environment: &str,
        key: &str,
        from: Option<u64>,
    ) -> Result<Walk<'_, V, H>, StoreError> {
        let next = self.newest(environment, key)?;
        let mut walk = Walk { history: self, environment: environment.to_owned(), key: key.to_owned(), next };
        if let Some(from) = from {
            while walk.next.is_some_and(|(version, _)| version > from) {
                walk.step()?;
            }
        }
        Ok(walk)
    }

    /// Reads the version at `cursor` (of `key`), and says where the one before it is.
    pub(super) fn read_at(
        &self,
        environment: &str,
        key: &str,
        (version, revision): Cursor,
    ) -> Result<(Version, Option<Cursor>), StoreError> {
        let table = self.names.0;
        let at = || format!("({environment}, {revision}) for version {version} of {key}");
        let bytes = self
            .at_revision(environment, revision)?
            .ok_or_else(|| StoreError::Missing { table, key: at() })?;
        let link: Link = decode(&bytes, table, at())?;
        let next = match (version, link.previous) {
            (1, _) => None,
            (_, Some(previous)) if previous < revision => Some((version - 1, previous)),
            // A version after the first must name an earlier revision: the chain is broken.
            (_, _) => {
                let key = format!("({environment}, ?) for version {} of {key}", version - 1);
                return Err(StoreError::Missing { table, key });
            }
        };
        Ok((Version { version, revision, bytes }, next))
    }

    /// Version `version` of `key`, if it exists.
    pub(super) fn find(
        &self,
        environment: &str,
        key: &str,
        version: u64,
    ) -> Result<Option<Version>, StoreError> {
        if version == 0 {
            return Ok(None);
        }
        self.newest_first(environment, key, Some(version))?.next().transpose()
    }
}

impl Writable<'_> {
    /// Stores version `head.version` of `key`, written at revision `head.revision`, as its
    /// newest. `bytes` is its `StoredVersion`, whose `previous` names the revision of the
    /// version before it.
    pub(super) fn append(
        &mut self,
        environment: &str,
        key: &str,
        head: Head,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.stage(environment, head.revision, bytes)?;
        self.set_head(environment, key, head)
    }

    /// Stores a version row written at `revision` without making it its key's newest: an
    /// apply stages its rows beyond the environment's revision, where no read looks (reads
    /// reach versions through heads and change-log rows), and commits them before the rest
    /// (see `apply`).
    pub(super) fn stage(&mut self, environment: &str, revision: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.versions.insert((environment, revision), bytes)?;
        Ok(())
    }

    /// Makes `head` the newest version of `key`.
    pub(super) fn set_head(&mut self, environment: &str, key: &str, head: Head) -> Result<(), StoreError> {
        self.heads.insert((environment, key), encode(&head)?.as_slice())?;
        Ok(())
    }

    /// Removes the version rows beyond `revision`, which the environment has not reached:
    /// staged by an apply that then gave way, lost its client, or was stopped by a crash.
    pub(super) fn discard_beyond(&mut self, environment: &str, revision: u64) -> Result<(), StoreError> {
        let mut staged = Vec::new();
        for row in self.versions.range((environment, revision + 1)..=(environment, u64::MAX))? {
            staged.push(row?.0.value().1);
        }
        for revision in staged {
            self.versions.remove((environment, revision))?;
        }
        Ok(())
    }
}

/// Removes the version row of the kind other than `kind` at `revision`, if an apply staged
/// one there: a write of `kind` is taking that revision, and overwrites its own kind's.
pub(super) fn discard_other_kind_at(
    txn: &WriteTransaction,
    kind: SubjectKind,
    environment: &str,
    revision: u64,
) -> Result<(), StoreError> {
    let other = match kind {
        SubjectKind::Flag => Segment::VERSIONS,
        SubjectKind::Segment => Flag::VERSIONS,
    };
    txn.open_table(other)?.discard((environment, revision))
}

/// A walk over one key's versions, newest first.
pub(super) struct Walk<'h, V, H> {
    history: &'h History<V, H>,
    environment: String,
    key: String,
    next: Option<Cursor>,
}

impl<V: VersionRows, H: HeadRows> Walk<'_, V, H> {
    /// Reads the next version and moves past it.
    fn step(&mut self) -> Result<Option<Version>, StoreError> {
        let Some(cursor) = self.next else { return Ok(None) };
        let (version, next) = self.history.read_at(&self.environment, &self.key, cursor)?;
        self.next = next;
        Ok(Some(version))
    }
}

impl<V: VersionRows, H: HeadRows> Iterator for Walk<'_, V, H> {
    type Item = Result<Version, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let step = self.step();
        if step.is_err() {
            self.next = None;
        }
        step.transpose()
    }
}
