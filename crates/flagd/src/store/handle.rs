//! The store's `Database`, swappable: every store call runs through [`Handle::run`], which
//! catches panics, counts failures, and reopens the file after one redb cannot recover from.
//!
//! Why reopen: after an I/O error (a full disk) redb latches it and refuses every later
//! transaction with "Previous I/O error occurred" until the `Database` is dropped and the
//! file opened again — which recovers it to its last commit. redb allows one `Database` per
//! file per process, so the old one must be gone first: calls take an `Arc<Database>` from a
//! cell and hold it only for the call, and a reopen empties the cell, waits for those `Arc`s
//! to be dropped, and opens the file again (with the same check as at start). When the open
//! fails (the disk is still full), the cell stays empty and the next call tries again.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::backend::Database;

use super::check::{self, panic_message};
use super::error::{HasStoreError, StoreError};

/// How long a reopen waits for calls still holding the old `Database` to end. Calls are
/// single transactions, so this is generous; a reopen that times out leaves the old one in
/// place and the next failing call tries again.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether writes can be committed, as `/readyz` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// The last write committed (or none has failed since the file was opened).
    Ready,
    /// The last write failed with an I/O error and nothing has committed since.
    WritesFailing {
        /// The error, with its causes.
        cause: String,
    },
    /// The file is closed after an error and the last attempt to reopen it failed.
    Closed {
        /// Why the reopen failed, with its causes.
        cause: String,
    },
}

/// The file, reopened when needed.
pub(super) struct Handle {
    path: PathBuf,
    /// Whether `cell` holds a PostgreSQL pool (never reopened) rather than a redb file.
    postgres: bool,
    /// `RwLock<Option<Arc<…>>>` rather than an `ArcSwap`: a reopen must keep new calls out
    /// while it waits for the old handle's last user, and calls are whole transactions
    /// (microseconds to milliseconds), so a read lock held only to clone the `Arc` costs
    /// nothing next to them. `None` while closed.
    cell: RwLock<Option<Arc<Database>>>,
    /// What `/readyz` says. A `Mutex` because it changes only on failures and recoveries.
    health: Mutex<Health>,
}

impl Handle {
    /// A handle to `db`, just opened and checked from `path` (a file, or a database's URL).
    pub(super) fn new(path: &Path, db: Database) -> Handle {
        Handle {
            path: path.to_owned(),
            postgres: matches!(db, Database::Postgres(_)),
            cell: RwLock::new(Some(Arc::new(db))),
            health: Mutex::new(Health::Ready),
        }
    }

    /// Runs a read (or any call whose success says nothing about commits) on the database.
    pub(super) fn run<R, E>(&self, op: impl FnOnce(&Database) -> Result<R, E>) -> Result<R, E>
    where
        E: HasStoreError + From<StoreError>,
    {
        self.call(false, op)
    }

    /// Runs a write: its success means writes commit again; an I/O failure means they do not.
    pub(super) fn run_write<R, E>(&self, op: impl FnOnce(&Database) -> Result<R, E>) -> Result<R, E>
    where
        E: HasStoreError + From<StoreError>,
    {
        self.call(true, op)
    }

    /// What `/readyz` reports.
    pub(crate) fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The database now, opening it again if it is closed.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.cell.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
            return Ok(Arc::clone(db));
        }
        let mut cell = self.cell.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = cell.as_ref() {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new(self.open()?);
        *cell = Some(Arc::clone(&db));
        Ok(db)
    }

    fn call<R, E>(&self, write: bool, op: impl FnOnce(&Database) -> Result<R, E>) -> Result<R, E>
    where
        E: HasStoreError + From<StoreError>,
    {
        let db = self.database().inspect_err(count)?;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| op(&db)));
        // Identity only: the `Arc` itself is dropped before any reopen, which waits for it.
        let failed = Arc::as_ptr(&db) as usize;
        drop(db);
        match outcome {
            Ok(Ok(result)) => {
                if write {
                    self.set_health(Health::Ready);
                }
                Ok(result)
            }
            Ok(Err(error)) => {
                if let Some(store) = error.store_error() {
                    count(store);
                    if write && store.is_unavailable() {
                        self.set_health(Health::WritesFailing { cause: chain(store) });
                    }
                    if store.needs_reopen() {
                        tracing::error!(path = %self.path.display(), error = %chain(store), "store failed; reopening it");
                        self.reopen(failed);
                    }
                }
                Err(error)
            }
            Err(payload) => {
                let error = StoreError::Panicked { message: panic_message(&*payload) };
                tracing::error!(path = %self.path.display(), error = %error, "store panicked; reopening it");
                count(&error);
                if write {
                    self.set_health(Health::WritesFailing { cause: chain(&error) });
                }
                self.reopen(failed);
                Err(error.into())
            }
        }
    }

    /// Whether the database is PostgreSQL, whose pool replaces broken connections itself.
    pub(super) fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Replaces the database that failed (`failed`, by address) with the file opened again.
    /// Another call may have reopened it already: then there is nothing to do. PostgreSQL
    /// is never reopened: its pool drops a broken connection and makes a new one.
    fn reopen(&self, failed: usize) {
        if self.postgres {
            return;
        }
        let mut cell = self.cell.write().unwrap_or_else(PoisonError::into_inner);
        let Some(mut old) = cell.take() else { return };
        if Arc::as_ptr(&old) as usize != failed {
            *cell = Some(old);
            return;
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            match Arc::try_unwrap(old) {
                Ok(db) => {
                    drop(db);
                    break;
                }
                Err(shared) if Instant::now() < deadline => {
                    old = shared;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(shared) => {
                    tracing::warn!(path = %self.path.display(), "store still in use after {DRAIN_TIMEOUT:?}; reopen postponed");
                    *cell = Some(shared);
                    return;
                }
            }
        }
        match self.open() {
            Ok(db) => {
                tracing::info!(path = %self.path.display(), "store reopened");
                *cell = Some(Arc::new(db));
            }
            Err(error) => count(&error),
        }
    }

    /// Opens the file with the start-up check; records a failure as `Closed`.
    fn open(&self) -> Result<Database, StoreError> {
        let opened = check::open_database(&self.path).and_then(|(db, _)| {
            check::invariants(&db, &self.path)?;
            Ok(db)
        });
        match opened {
            Ok(db) => {
                let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
                if let Health::Closed { .. } = *health {
                    // Open again, but whether writes commit is not known until one does.
                    *health = Health::WritesFailing {
                        cause: "reopened after an error; no write has committed since".into(),
                    };
                }
                Ok(db)
            }
            Err(error) => {
                let cause = chain(&error);
                tracing::error!(path = %self.path.display(), error = %cause, "reopening the store failed");
                self.set_health(Health::Closed { cause: cause.clone() });
                Err(StoreError::Closed { path: self.path.clone(), cause })
            }
        }
    }

    fn set_health(&self, health: Health) {
        let mut slot = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        if *slot != health {
            if health == Health::Ready {
                tracing::info!(path = %self.path.display(), "store writes commit again");
            }
            *slot = health;
        }
    }

    /// The database as it is now, for tests that look at the file directly.
    #[cfg(test)]
    pub(super) fn current(&self) -> Arc<Database> {
        match self.database() {
            Ok(db) => db,
            Err(error) => panic!("store closed: {error}"),
        }
    }
}

/// Counts one store failure in `flagd_store_errors_total{kind}`.
fn count(error: &StoreError) {
    if let Some(kind) = error.kind() {
        metrics::counter!("flagd_store_errors_total", "kind" => kind).increment(1);
    }
}

/// The error and its causes, `: `-separated.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
