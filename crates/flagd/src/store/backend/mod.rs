//! The two databases the store runs on — an embedded redb file, or PostgreSQL — behind one
//! API with redb's shape: `begin_read`/`begin_write`, `open_table`, typed `get`/`range`/
//! `insert`/`remove`, `commit`.
//!
//! The store's logic (revisions, versions, validation, plans, the outbox) is written once
//! against this API, so both backends keep exactly the same semantics: the same rows, read
//! and written in the same order inside one transaction. What differs is below it:
//!
//! - redb: one process holds the file; redb runs one write transaction at a time.
//! - PostgreSQL (`postgres`): any number of flagds on one store; a row lock runs write
//!   transactions one at a time across all of them, and read transactions see one snapshot
//!   each (`REPEATABLE READ`). Each write of flags moves the store's generation on, so a
//!   writer knows when its cache missed another flagd's. Tables and columns: `schema`; keys
//!   and values as columns: `codec`; other flagds' commits heard of: `listen`; each flagd's
//!   SDKs as the others see them: `fleet`.
//!
//! The synchronous `postgres` client (tokio-postgres behind a blocking facade) rather than
//! sqlx: the store is synchronous code called from `spawn_blocking`, like redb, and sqlx is
//! async-only, with a driver of its own whose compile-time query checks and macros this
//! store, which builds its few statements from table definitions, would not use.

mod codec;
mod fleet;
mod listen;
mod postgres;
mod schema;
mod table;
mod tls;
mod upserts;

use std::sync::Arc;

pub(crate) use codec::{SqlKey, SqlValue};
pub(crate) use fleet::Acked;
pub(crate) use listen::Heard;
pub(crate) use postgres::{Pool, without_password};
pub(crate) use table::{Range, ReadOnlyTable, ReadableTable, Table, TableDefinition};

use super::error::StoreError;
use crate::ca_file::CaFile;
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
    pub(crate) fn postgres(
        url: &str,
        connections: usize,
        ca: Option<&CaFile>,
    ) -> Result<(Database, Vec<i64>), StoreError> {
        let pool = Pool::connect(url, connections, ca)?;
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

    /// Whether the writer's cache reflects the state a transaction that sees `generation`
    /// reads: always on redb, where only this process writes; on PostgreSQL, unless another
    /// flagd committed since the cache was read (or it was never read).
    pub(crate) fn cache_matches(&self, generation: Option<i64>) -> bool {
        match (self, generation) {
            (Database::Postgres(pool), Some(generation)) => pool.cache_matches(generation),
            (Database::Postgres(_), None) => false,
            (Database::Redb(_), _) => true,
        }
    }

    /// Records that the writer's cache was just read by a transaction that sees `generation`.
    pub(crate) fn cache_read_at(&self, generation: Option<i64>) {
        if let (Database::Postgres(pool), Some(generation)) = (self, generation) {
            pool.cache_read_at(generation);
        }
    }

    /// Adds to `wake` what other flagds committed, on a thread of its own, until nobody
    /// follows it (see `listen`). `false` on redb, where no other can.
    pub(crate) fn listen_for_commits(
        &self,
        wake: tokio::sync::watch::Sender<Heard>,
    ) -> std::io::Result<bool> {
        match self {
            Database::Redb(_) => Ok(false),
            Database::Postgres(pool) => {
                let (config, tls) = pool.config();
                listen::spawn(config.clone(), tls.clone(), wake).map(|()| true)
            }
        }
    }

    /// Replaces what `replica` reported of its SDKs (see `fleet`); nothing on redb, where
    /// no other flagd reads it.
    pub(crate) fn report_fleet(&self, replica: &str, reports: &[(String, Acked)]) -> Result<(), StoreError> {
        match self {
            Database::Redb(_) => Ok(()),
            Database::Postgres(pool) => fleet::report(pool, replica, reports),
        }
    }

    /// What flagds other than `replica` reported of their SDKs of `environment` in the
    /// last `fresh_for_ms` (see `fleet`); none on redb.
    pub(crate) fn fleet(
        &self,
        environment: &str,
        replica: &str,
        fresh_for_ms: i64,
    ) -> Result<Vec<Acked>, StoreError> {
        match self {
            Database::Redb(_) => Ok(Vec::new()),
            Database::Postgres(pool) => fleet::others(pool, environment, replica, fresh_for_ms),
        }
    }

    /// Whether this process leads the flagds on the store (see `Pool::leads`): always on
    /// redb, where it is the only one.
    pub(crate) fn leads(&self) -> bool {
        match self {
            Database::Redb(_) => true,
            Database::Postgres(pool) => pool.leads(),
        }
    }

    /// A write transaction: the only one running until it commits or is dropped (which
    /// aborts it). Not for flags, segments or environments: see `begin_flag_write`.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.begin_write_of(false)
    }

    /// A write transaction of flags, segments or environments — what writers cache and SDKs
    /// are streamed: on PostgreSQL, its commit moves the store's generation on and wakes the
    /// other flagds (see `postgres`).
    pub(crate) fn begin_flag_write(&self) -> Result<WriteTransaction, StoreError> {
        self.begin_write_of(true)
    }

    /// A write transaction without the writers' lock (on PostgreSQL), for a row no other
    /// transaction reads: the readiness probe's, which must never queue behind writes.
    pub(crate) fn begin_probe(&self) -> Result<WriteTransaction, StoreError> {
        Ok(match self {
            Database::Redb(db) => WriteTransaction::Redb(Box::new(db.begin_write()?)),
            Database::Postgres(pool) => WriteTransaction::Postgres(Arc::new(Transaction::unlocked(pool)?)),
        })
    }

    fn begin_write_of(&self, flags: bool) -> Result<WriteTransaction, StoreError> {
        Ok(match self {
            Database::Redb(db) => WriteTransaction::Redb(Box::new(db.begin_write()?)),
            Database::Postgres(pool) => {
                WriteTransaction::Postgres(Arc::new(Transaction::write(pool, flags)?))
            }
        })
    }
}

/// A read transaction of either backend.
pub(crate) enum ReadTransaction {
    Redb(redb::ReadTransaction),
    Postgres(Arc<Transaction>),
}

impl ReadTransaction {
    /// The store's generation this transaction reads (PostgreSQL only).
    pub(crate) fn generation(&self) -> Option<i64> {
        match self {
            ReadTransaction::Redb(_) => None,
            ReadTransaction::Postgres(txn) => txn.generation(),
        }
    }

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
    /// The store's generation this transaction sees, before its own commit (PostgreSQL only).
    pub(crate) fn generation(&self) -> Option<i64> {
        match self {
            WriteTransaction::Redb(_) => None,
            WriteTransaction::Postgres(txn) => txn.generation(),
        }
    }

    /// On PostgreSQL, reads through this transaction (no other connection), seeing what it
    /// sees: holding the writers' lock, every commit so far. Drop it before the commit.
    /// `None` on redb, whose reads come from the database itself.
    pub(crate) fn reads(&self) -> Option<ReadTransaction> {
        match self {
            WriteTransaction::Redb(_) => None,
            WriteTransaction::Postgres(txn) => Some(ReadTransaction::Postgres(Arc::clone(txn))),
        }
    }

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

    /// Removes a table of an older store format, with its rows.
    pub(crate) fn delete_table<K: SqlKey, V: SqlValue>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        match self {
            WriteTransaction::Redb(txn) => txn.delete_table(table.redb).map(drop).map_err(StoreError::from),
            WriteTransaction::Postgres(txn) => {
                txn.batch(&format!("DROP TABLE IF EXISTS flagd_{}", table.sql.name))
            }
        }
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
