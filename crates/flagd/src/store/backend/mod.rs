//! The two databases the store runs on — an embedded redb file, or PostgreSQL — behind one
//! API with redb's shape: `begin_read`/`begin_write`, `open_table`, typed `get`/`range`/
//! `insert`/`remove`, `commit`.
//!
//! The store's logic (revisions, versions, validation, plans, the outbox) is written once
//! against this API, so both backends keep exactly the same semantics: the same rows, read
//! and written in the same order inside one transaction. What differs is below it:
//!
//! - redb: one process holds the file; redb runs one write transaction at a time.
//! - PostgreSQL (`postgres`): one flagd holds a store at a time (an advisory lock, while
//!   each writer caches what it validates against); a row lock
//!   runs write transactions one at a time across all of them, and read transactions see
//!   one snapshot each (`REPEATABLE READ`). Tables and columns: `schema`; keys and values
//!   as columns: `codec`.
//!
//! The synchronous `postgres` client (tokio-postgres behind a blocking facade) rather than
//! sqlx: the store is synchronous code called from `spawn_blocking`, like redb, and sqlx is
//! async-only, with a driver of its own whose compile-time query checks and macros this
//! store, which builds its few statements from table definitions, would not use.

mod codec;
mod postgres;
mod schema;
mod table;

use std::sync::Arc;

pub(crate) use codec::{SqlKey, SqlValue};
pub(crate) use postgres::{Pool, without_password};
pub(crate) use table::{Range, ReadOnlyTable, ReadableTable, Table, TableDefinition};

use super::error::StoreError;
use postgres::Transaction;
use table::PgTable;

/// A database the store runs on.
pub(crate) enum Database {
    Redb(redb::Database),
    Postgres(Arc<Pool>),
}

/// Whether a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Not waited for: a crash may lose the commit, never half of it.
    None,
}

impl Database {
    /// Connects to PostgreSQL at `url` with at most `connections` connections and brings
    /// the schema up to date (see `schema::migrate`); returns the migrations it applied.
    pub(crate) fn postgres(url: &str, connections: usize) -> Result<(Database, Vec<i64>), StoreError> {
        let pool = Pool::connect(url, connections)?;
        // First: a flagd refused the store must not migrate it.
        pool.hold()?;
        let txn = Transaction::unlocked(&pool)?;
        let applied = schema::migrate(&txn)?;
        txn.commit()?;
        Ok((Database::Postgres(pool), applied))
    }

    /// A read transaction: one consistent state for everything read through it.
    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match self {
            Database::Redb(db) => ReadTransaction::Redb(redb::ReadableDatabase::begin_read(db)?),
            Database::Postgres(pool) => ReadTransaction::Postgres(Arc::new(Transaction::read(pool)?)),
        })
    }

    /// Whether the store must be read afresh before the next write: on PostgreSQL, after
    /// this flagd lost its hold on the store and took it again.
    pub(crate) fn take_reread(&self) -> bool {
        match self {
            Database::Redb(_) => false,
            Database::Postgres(pool) => pool.take_reread(),
        }
    }

    /// A write transaction: the only one running until it commits or is dropped (which
    /// aborts it).
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(match self {
            Database::Redb(db) => WriteTransaction::Redb(Box::new(db.begin_write()?)),
            Database::Postgres(pool) => WriteTransaction::Postgres(Arc::new(Transaction::write(pool)?)),
        })
    }
}

/// A read transaction of either backend.
pub(crate) enum ReadTransaction {
    Redb(redb::ReadTransaction),
    Postgres(Arc<Transaction>),
}

impl ReadTransaction {
    /// One of the store's tables, as this transaction sees it. On redb, a table no write
    /// has created yet is `TableDoesNotExist`; PostgreSQL's are made by the migrations.
    pub(crate) fn open_table<K: SqlKey, V: SqlValue>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, StoreError> {
        Ok(match self {
            ReadTransaction::Redb(txn) => ReadOnlyTable::Redb(txn.open_table(table.redb)?),
            ReadTransaction::Postgres(txn) => {
                ReadOnlyTable::Postgres(PgTable::new(Arc::clone(txn), table.sql))
            }
        })
    }
}

/// A write transaction of either backend.
pub(crate) enum WriteTransaction {
    /// Boxed: redb's is large, and one allocation is nothing next to a commit.
    Redb(Box<redb::WriteTransaction>),
    Postgres(Arc<Transaction>),
}

impl WriteTransaction {
    /// One of the store's tables, for reading and writing (created on redb if missing).
    pub(crate) fn open_table<K: SqlKey, V: SqlValue>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>, StoreError> {
        Ok(match self {
            WriteTransaction::Redb(txn) => Table::Redb(txn.open_table(table.redb)?),
            WriteTransaction::Postgres(txn) => Table::Postgres(PgTable::new(Arc::clone(txn), table.sql)),
        })
    }

    /// Makes the commit not wait for the disk.
    pub(crate) fn set_durability(&mut self, durability: Durability) -> Result<(), StoreError> {
        match (self, durability) {
            (WriteTransaction::Redb(txn), Durability::None) => txn
                .set_durability(redb::Durability::None)
                .map_err(|error| StoreError::Durability(error.to_string())),
            (WriteTransaction::Postgres(txn), Durability::None) => {
                txn.batch("SET LOCAL synchronous_commit = off")
            }
        }
    }

    /// Commits; durable when this returns (unless durability was turned off). On an error,
    /// whether the commit happened is unknown until the store is read again.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTransaction::Redb(txn) => Ok((*txn).commit()?),
            WriteTransaction::Postgres(txn) => match Arc::try_unwrap(txn) {
                Ok(txn) => txn.commit(),
                // Tables borrow the transaction, so none outlives it: not reached.
                Err(_) => Err(StoreError::TransactionEnded),
            },
        }
    }
}
