//! Tables of either backend, with redb's shape: `get`, `range` (double-ended), `insert`,
//! `remove`, `len`. On redb each call is redb's own; on PostgreSQL each is one statement of
//! the transaction, and a range reads its rows in growing chunks from whichever end is
//! walked, so a walk that stops early (the newest version, a page of history) reads little.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use redb::{ReadableTable as _, ReadableTableMetadata as _};

use super::super::error::StoreError;
use super::codec::{Param, SqlKey, SqlValue};
use super::postgres::Transaction;
use super::schema::SqlTable;

/// A table: redb's definition and PostgreSQL's columns.
pub(crate) struct TableDefinition<K: SqlKey, V: SqlValue> {
    pub(super) redb: redb::TableDefinition<'static, K, V>,
    pub(super) sql: SqlTable,
}

impl<K: SqlKey, V: SqlValue> TableDefinition<K, V> {
    /// Table `name`, whose key parts are the columns `keys` and whose value is `value`.
    pub(crate) const fn new(
        name: &'static str,
        keys: &'static [&'static str],
        value: &'static str,
    ) -> TableDefinition<K, V> {
        TableDefinition { redb: redb::TableDefinition::new(name), sql: SqlTable { name, keys, value } }
    }

    /// redb's definition, for code that opens a redb file directly (tests damaging one).
    #[cfg(test)]
    pub(crate) fn redb(self) -> redb::TableDefinition<'static, K, V> {
        self.redb
    }
}

impl<K: SqlKey, V: SqlValue> Clone for TableDefinition<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: SqlKey, V: SqlValue> Copy for TableDefinition<K, V> {}

/// A key or value read from a table.
pub(crate) enum Guard<'a, V: redb::Value + 'static> {
    Redb(redb::AccessGuard<'a, V>),
    /// redb's encoding of what a PostgreSQL row held.
    Owned(Vec<u8>, PhantomData<V>),
}

impl<V: redb::Value + 'static> Guard<'_, V> {
    /// The key or value, as redb's type (`&str`, a tuple, `u64`, bytes).
    pub(crate) fn value(&self) -> V::SelfType<'_> {
        match self {
            Guard::Redb(guard) => guard.value(),
            Guard::Owned(bytes, _) => V::from_bytes(bytes),
        }
    }
}

/// The reads every table offers.
pub(crate) trait ReadableTable<K: SqlKey, V: SqlValue> {
    /// The value at `key`.
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<Guard<'_, V>>, StoreError>;
    /// The rows in `range`, in key order; walk from the end with `rev()` or `next_back()`.
    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a;
    /// Every row, in key order.
    fn iter(&self) -> Result<Range<'_, K, V>, StoreError>;
    /// The number of rows.
    fn len(&self) -> Result<u64, StoreError>;
    /// Whether the table has no rows.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

/// A table of a read transaction. Its ranges live as long as the transaction, not the
/// table (as redb's do).
pub(crate) enum ReadOnlyTable<K: SqlKey, V: SqlValue> {
    Redb(redb::ReadOnlyTable<K, V>),
    Postgres(PgTable<K, V>),
}

/// A table of a write transaction.
pub(crate) enum Table<'t, K: SqlKey, V: SqlValue> {
    Redb(redb::Table<'t, K, V>),
    Postgres(PgTable<K, V>),
}

/// A table of a PostgreSQL transaction.
pub(crate) struct PgTable<K, V> {
    txn: Arc<Transaction>,
    sql: SqlTable,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: SqlKey, V: SqlValue> PgTable<K, V> {
    pub(super) fn new(txn: Arc<Transaction>, sql: SqlTable) -> PgTable<K, V> {
        PgTable { txn, sql, types: PhantomData }
    }

    fn get(&self, key: &K::SelfType<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.txn.query(&self.sql.get(&V::select(self.sql.value)), &K::params(key))?;
        rows.first().map(|row| V::from_row(row, 0)).transpose()
    }

    fn range<'a, KR>(&self, range: &impl RangeBounds<KR>) -> PgRange<K, V>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        let bound = |bound: Bound<&KR>| match bound {
            Bound::Included(key) => Bound::Included(K::params(key.borrow())),
            Bound::Excluded(key) => Bound::Excluded(K::params(key.borrow())),
            Bound::Unbounded => Bound::Unbounded,
        };
        PgRange {
            txn: Arc::clone(&self.txn),
            sql: self.sql,
            lower: bound(range.start_bound()),
            upper: bound(range.end_bound()),
            front: VecDeque::new(),
            back: VecDeque::new(),
            chunk: FIRST_CHUNK,
            drained: false,
            failed: false,
            types: PhantomData,
        }
    }

    fn len(&self) -> Result<u64, StoreError> {
        let rows = self.txn.query(&self.sql.count(), &[])?;
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(|source| StoreError::postgres("counting rows", source))?,
            None => 0,
        };
        Ok(count as u64)
    }

    fn insert(&self, key: &K::SelfType<'_>, value: &V::SelfType<'_>) -> Result<(), StoreError> {
        self.txn.upsert(self.sql, V::CAST, K::params(key), V::param(value)?)
    }

    fn remove(&self, key: &K::SelfType<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.txn.query(&self.sql.remove(&V::select(self.sql.value)), &K::params(key))?;
        rows.first().map(|row| V::from_row(row, 0)).transpose()
    }

    fn discard(&self, key: &K::SelfType<'_>) -> Result<(), StoreError> {
        self.txn.discard(self.sql, K::params(key))
    }
}

fn owned<V: redb::Value + 'static>(bytes: Vec<u8>) -> Guard<'static, V> {
    Guard::Owned(bytes, PhantomData)
}

fn redb_range<'r, K: SqlKey, V: SqlValue>(
    range: Result<redb::Range<'r, K, V>, redb::StorageError>,
) -> Result<Range<'r, K, V>, StoreError> {
    Ok(Range::Redb(range?))
}

impl<K: SqlKey, V: SqlValue> ReadOnlyTable<K, V> {
    /// The value at `key`.
    pub(crate) fn get<'a>(
        &self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<Guard<'static, V>>, StoreError> {
        match self {
            ReadOnlyTable::Redb(table) => Ok(table.get(key)?.map(Guard::Redb)),
            ReadOnlyTable::Postgres(table) => Ok(table.get(key.borrow())?.map(owned)),
        }
    }

    /// The rows in `range`, readable for as long as the transaction is open.
    pub(crate) fn range<'a, KR>(
        &self,
        range: impl RangeBounds<KR> + 'a,
    ) -> Result<Range<'static, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match self {
            ReadOnlyTable::Redb(table) => redb_range(table.range(range)),
            ReadOnlyTable::Postgres(table) => Ok(Range::Postgres(table.range(&range))),
        }
    }
}

impl<K: SqlKey, V: SqlValue> ReadableTable<K, V> for ReadOnlyTable<K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<Guard<'_, V>>, StoreError> {
        ReadOnlyTable::get(self, key)
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        ReadOnlyTable::range(self, range)
    }

    fn iter(&self) -> Result<Range<'_, K, V>, StoreError> {
        match self {
            ReadOnlyTable::Redb(table) => redb_range(table.iter()),
            ReadOnlyTable::Postgres(table) => Ok(Range::Postgres(table.range::<K::SelfType<'_>>(&(..)))),
        }
    }

    fn len(&self) -> Result<u64, StoreError> {
        match self {
            ReadOnlyTable::Redb(table) => Ok(table.len()?),
            ReadOnlyTable::Postgres(table) => table.len(),
        }
    }
}

impl<K: SqlKey, V: SqlValue> Table<'_, K, V> {
    /// Sets `key` to `value`.
    pub(crate) fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), StoreError> {
        match self {
            Table::Redb(table) => {
                table.insert(key, value)?;
                Ok(())
            }
            Table::Postgres(table) => table.insert(key.borrow(), value.borrow()),
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove<'a>(
        &mut self,
        key: impl Borrow<K::SelfType<'a>>,
    ) -> Result<Option<Guard<'_, V>>, StoreError> {
        match self {
            Table::Redb(table) => Ok(table.remove(key)?.map(Guard::Redb)),
            Table::Postgres(table) => Ok(table.remove(key.borrow())?.map(owned)),
        }
    }

    /// Removes `key` if it is there; nothing reads whether it was, so on PostgreSQL the
    /// delete goes with the transaction's held upserts rather than in a round trip of its own.
    pub(crate) fn discard<'a>(&mut self, key: impl Borrow<K::SelfType<'a>>) -> Result<(), StoreError> {
        match self {
            Table::Redb(table) => {
                table.remove(key)?;
                Ok(())
            }
            Table::Postgres(table) => table.discard(key.borrow()),
        }
    }
}

impl<K: SqlKey, V: SqlValue> ReadableTable<K, V> for Table<'_, K, V> {
    fn get<'a>(&self, key: impl Borrow<K::SelfType<'a>>) -> Result<Option<Guard<'_, V>>, StoreError> {
        match self {
            Table::Redb(table) => Ok(table.get(key)?.map(Guard::Redb)),
            Table::Postgres(table) => Ok(table.get(key.borrow())?.map(owned)),
        }
    }

    fn range<'a, KR>(&self, range: impl RangeBounds<KR> + 'a) -> Result<Range<'_, K, V>, StoreError>
    where
        KR: Borrow<K::SelfType<'a>> + 'a,
    {
        match self {
            Table::Redb(table) => redb_range(table.range(range)),
            Table::Postgres(table) => Ok(Range::Postgres(table.range(&range))),
        }
    }

    fn iter(&self) -> Result<Range<'_, K, V>, StoreError> {
        match self {
            Table::Redb(table) => redb_range(table.iter()),
            Table::Postgres(table) => Ok(Range::Postgres(table.range::<K::SelfType<'_>>(&(..)))),
        }
    }

    fn len(&self) -> Result<u64, StoreError> {
        match self {
            Table::Redb(table) => Ok(table.len()?),
            Table::Postgres(table) => table.len(),
        }
    }
}

/// Rows of a range, from either end.
pub(crate) enum Range<'a, K: SqlKey, V: SqlValue> {
    Redb(redb::Range<'a, K, V>),
    Postgres(PgRange<K, V>),
}

/// A row: its key and value.
pub(crate) type Row<'a, K, V> = (Guard<'a, K>, Guard<'a, V>);

impl<'a, K: SqlKey, V: SqlValue> Iterator for Range<'a, K, V> {
    type Item = Result<Row<'a, K, V>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Range::Redb(range) => {
                range.next().map(|row| Ok(row.map(|(k, v)| (Guard::Redb(k), Guard::Redb(v)))?))
            }
            Range::Postgres(range) => {
                range.step(End::Front).map(|row| row.map(|(k, v)| (owned(k), owned(v))))
            }
        }
    }
}

impl<K: SqlKey, V: SqlValue> DoubleEndedIterator for Range<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Range::Redb(range) => {
                range.next_back().map(|row| Ok(row.map(|(k, v)| (Guard::Redb(k), Guard::Redb(v)))?))
            }
            Range::Postgres(range) => range.step(End::Back).map(|row| row.map(|(k, v)| (owned(k), owned(v)))),
        }
    }
}

/// The first chunk a range reads; each next one from the same end is twice as large, up to
/// [`LAST_CHUNK`]. Most walks that stop early want one row (the newest version).
const FIRST_CHUNK: i64 = 8;
const LAST_CHUNK: i64 = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Front,
    Back,
}

/// A row read and not yet taken: redb's encodings of its key and value.
type Buffered = (Vec<u8>, Vec<u8>);

/// A PostgreSQL range: the rows not yet read lie strictly between `lower` and `upper`;
/// rows read and not yet taken wait in `front` (ascending) and `back` (descending).
pub(crate) struct PgRange<K, V> {
    txn: Arc<Transaction>,
    sql: SqlTable,
    lower: Bound<Vec<Param>>,
    upper: Bound<Vec<Param>>,
    front: VecDeque<Buffered>,
    back: VecDeque<Buffered>,
    chunk: i64,
    /// No row is left between the bounds: only the buffers remain.
    drained: bool,
    /// A read failed; the range ends.
    failed: bool,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: SqlKey, V: SqlValue> PgRange<K, V> {
    fn step(&mut self, end: End) -> Option<Result<Buffered, StoreError>> {
        if self.failed {
            return None;
        }
        loop {
            let (near, far) = match end {
                End::Front => (&mut self.front, &mut self.back),
                End::Back => (&mut self.back, &mut self.front),
            };
            if let Some(row) = near.pop_front() {
                return Some(Ok(row));
            }
            if self.drained {
                return far.pop_back().map(Ok);
            }
            if let Err(error) = self.fetch(end) {
                self.failed = true;
                return Some(Err(error));
            }
        }
    }

    /// Reads the next chunk from `end` into its buffer and moves that end's bound past it.
    fn fetch(&mut self, end: End) -> Result<(), StoreError> {
        let inclusive = |bound: &Bound<Vec<Param>>| match bound {
            Bound::Included(_) => Some(true),
            Bound::Excluded(_) => Some(false),
            Bound::Unbounded => None,
        };
        let sql = self.sql.range(
            &V::select(self.sql.value),
            inclusive(&self.lower),
            inclusive(&self.upper),
            end == End::Back,
        );
        let mut params = Vec::new();
        for bound in [&self.lower, &self.upper] {
            if let Bound::Included(key) | Bound::Excluded(key) = bound {
                params.extend(key.iter().cloned());
            }
        }
        params.push(Param::Int(self.chunk));
        let rows = self.txn.query(&sql, &params)?;
        if (rows.len() as i64) < self.chunk {
            self.drained = true;
        }
        self.chunk = (self.chunk * 2).min(LAST_CHUNK);
        let key_columns = self.sql.keys.len();
        let buffer = match end {
            End::Front => &mut self.front,
            End::Back => &mut self.back,
        };
        for row in &rows {
            buffer.push_back((K::from_row(row)?, V::from_row(row, key_columns)?));
        }
        if let Some((key, _)) = buffer.back() {
            let past = Bound::Excluded(K::params(&K::from_bytes(key)));
            match end {
                End::Front => self.lower = past,
                End::Back => self.upper = past,
            }
        }
        Ok(())
    }
}
