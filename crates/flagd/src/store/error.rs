//! Errors of the store: [`StoreError`] for anything the file or its records do wrong,
//! [`WriteError`] for a write that was refused (wrapping `StoreError` for the rest).
//!
//! `Display` never repeats the source: callers print the chain (`anyhow`'s `{:#}`, or a walk
//! of `source()`), so each level says only what it adds.

use std::io;
use std::path::PathBuf;

use flag_core::{RolloutError, SubjectKind, ValidationError};

/// The store could not read or write its file, or found a record it cannot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum StoreError {
    /// The directory for the store file could not be created.
    #[error("creating the store's directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// The file could not be opened (locked by another process, unreadable, not redb…).
    #[error("opening the store file {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: redb::DatabaseError,
    },
    /// The path holds an empty file. A new store is made only where no file exists: an
    /// empty one is a lost store or a wrong path, and starting empty would hide that.
    #[error(
        "the store file {} is empty (0 bytes); flagd creates a store only where no file exists: restore a backup to it, or remove it to start a new store",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The path holds a file that is not a redb database.
    #[error("{} is not a flagd store (a redb file); it starts with bytes {found}", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its first bytes, in hex.
        found: String,
    },
    /// The file could not be read to see what it is.
    #[error("reading the store file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// The file failed the check on open: redb's integrity check, or an invariant the
    /// store's writes keep.
    #[error("the store file {} is damaged: {problem}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the check found.
        problem: String,
    },
    /// Code inside the store (redb's or ours) panicked; the store is reopened.
    #[error("the store failed inside redb (a panic: {message}); it is being reopened")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The store file is closed after an I/O error and could not be opened again yet.
    #[error("the store file {} is closed after an I/O error and could not be reopened yet: {cause}", path.display())]
    Closed {
        /// The file.
        path: PathBuf,
        /// Why the last reopen failed, with its causes.
        cause: String,
    },
    /// The file was written by a flagd with another table layout.
    #[error("the store file has schema version {found}, but this flagd reads version {supported}")]
    Schema {
        /// The version in the file.
        found: u64,
        /// The version this code reads and writes.
        supported: u64,
    },
    /// A transaction could not be started.
    #[error("starting a store transaction")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("opening a store table")]
    Table(#[from] redb::TableError),
    /// Reading or writing the file failed.
    #[error("accessing the store file")]
    Storage(#[from] redb::StorageError),
    /// A write transaction could not be committed. Whether it reached the disk is unknown
    /// until the store is read again.
    #[error("committing a store transaction")]
    Commit(#[from] redb::CommitError),
    /// A PostgreSQL statement failed (the database is down or refused it).
    #[error("PostgreSQL: {during}")]
    Postgres {
        /// What the store was doing.
        during: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// A PostgreSQL `COMMIT` failed. Whether it committed is unknown until the store is
    /// read again, as with a failed redb commit.
    #[error("PostgreSQL: committing a store transaction")]
    PostgresCommit(#[source] postgres::Error),
    /// Every connection of the pool stayed in use.
    #[error("PostgreSQL: all {max} connections stayed in use for {waited:?} (raise --store-connections)")]
    PoolExhausted {
        /// The pool's size.
        max: usize,
        /// How long the call waited.
        waited: std::time::Duration,
    },
    /// The thread that listens for other flagds' commits could not be started.
    #[error("starting the thread that listens for other flagds' commits")]
    Listen(#[source] std::io::Error),
    /// The row every write locks (`flagd_writer`) is missing: the schema was changed by
    /// hand. Nothing is written without it, since writers would no longer be serialized.
    #[error(
        "PostgreSQL: the row of flagd_writer is missing or unreadable (restore it: INSERT INTO flagd_writer (id) VALUES (1))"
    )]
    WriterRowMissing,
    /// A statement of the transaction failed, so PostgreSQL aborted it; nothing of it was
    /// committed.
    #[error("PostgreSQL aborted the store transaction after a failed statement")]
    TransactionFailed,
    /// A transaction was used after it ended.
    #[error("the store transaction has already ended")]
    TransactionEnded,
    /// A record to be stored in a JSON column was not UTF-8.
    #[error("a store record is not UTF-8 text")]
    NotText,
    /// A commit's durability could not be set.
    #[error("setting a store transaction's durability: {0}")]
    Durability(String),
    /// A row holds bytes that are not the record its table keeps.
    #[error("corrupt record in table `{table}` at {key}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key, for people.
        key: String,
        /// What the JSON decoder found.
        #[source]
        source: serde_json::Error,
    },
    /// A row that another row refers to is not there (the change log names a version the
    /// history table lacks).
    #[error("missing record in table `{table}` at {key}")]
    Missing {
        /// The table.
        table: &'static str,
        /// The row's key, for people.
        key: String,
    },
    /// A record could not be encoded (a number JSON cannot hold).
    /// A read or write names an environment that does not exist; nothing was created.
    #[error("{}", unknown_environment(environment, known))]
    UnknownEnvironment {
        /// The name asked for.
        environment: String,
        /// The environments that exist, sorted.
        known: Vec<String>,
    },

    #[error("encoding a store record")]
    Encode(#[source] serde_json::Error),
}

/// A condition a write needs that the stored flag does not meet.
/// Why an environment's past could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PastError {
    /// The revision asked for has not been written yet.
    #[error("environment {environment:?} has no revision {revision} yet: it is at revision {current}")]
    FutureRevision {
        /// The environment.
        environment: String,
        /// The revision asked for.
        revision: u64,
        /// Its revision now.
        current: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum Precondition {
    /// Revive of a flag that is not killed.
    #[error("flag {key:?} is not killed, so there is nothing to revive")]
    NotKilled {
        /// The flag.
        key: String,
    },
    /// Set-rollout of a flag without the dark-launch variants.
    #[error(
        "flag {key:?} has no variant {missing:?}; a rollout serves a split over the variants \"on\" and \"off\" (and \"dark\" for a dark launch)"
    )]
    MissingRolloutVariants {
        /// The flag.
        key: String,
        /// The variant names it lacks, in on/dark/off order.
        missing: Vec<&'static str>,
    },
    /// Rollback to a version that recorded the subject's deletion.
    #[error(
        "version {version} of flag {key:?} is its deletion; delete the flag instead of rolling back to it"
    )]
    RollbackToDeletion {
        /// The flag.
        key: String,
        /// The version asked for.
        version: u64,
    },
    /// Rollback to "the previous version" of a flag that has only one.
    #[error("flag {key:?} has no version before its first")]
    NoPreviousVersion {
        /// The flag.
        key: String,
    },
}

/// A write was refused, or failed; in every case nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WriteError {
    /// The environment after the write would not be a valid flag set. Problem paths name
    /// the written flag or segment as `flag.…`/`segment.…`, listed first, and any other as
    /// `flags["key"].…`/`segments["key"].…` (see `store::paths`).
    #[error(transparent)]
    Invalid(ValidationError),
    /// The environment name is not 1 to 64 of `A-Z a-z 0-9 _ . -`.
    #[error(
        "expected an environment name of 1 to 64 letters, digits, `_`, `.` or `-`, found {environment:?}"
    )]
    InvalidEnvironment {
        /// The name given.
        environment: String,
    },
    /// The flag or segment does not exist (or is deleted).
    #[error("no {} {key:?} in this environment", kind.noun())]
    NotFound {
        /// Flag or segment.
        kind: SubjectKind,
        /// The key asked for.
        key: String,
    },
    /// A promote whose source and target are the same environment.
    #[error("cannot promote environment {environment:?} to itself; name another with --from")]
    PromoteToItself {
        /// The environment.
        environment: String,
    },
    /// Flags asked for that the environment does not have.
    #[error("no flag {} in environment {environment:?}", quoted(keys))]
    UnknownKeys {
        /// The environment.
        environment: String,
        /// The keys it lacks.
        keys: Vec<String>,
    },
    /// An environment created under a name that exists already.
    #[error("environment {environment:?} exists already (revision {revision})")]
    EnvironmentExists {
        /// The name.
        environment: String,
        /// Its revision.
        revision: u64,
    },
    /// A restore to a revision the environment has not reached.
    #[error("environment {environment:?} has no revision {revision} yet: it is at revision {current}")]
    FutureRevision {
        /// The environment.
        environment: String,
        /// The revision asked for.
        revision: u64,
        /// Its revision now.
        current: u64,
    },
    /// Rollback to a version the flag never had.
    #[error("flag {key:?} has no version {version} (its latest is {latest})")]
    VersionNotFound {
        /// The flag.
        key: String,
        /// The version asked for.
        version: u64,
        /// Its newest version (0 when it never existed).
        latest: u64,
    },
    /// Optimistic concurrency: the flag changed since the caller read it.
    #[error("flag {key:?} is at version {current}, not the expected {expected}; read it again and retry")]
    VersionConflict {
        /// The flag.
        key: String,
        /// The version the caller based its write on.
        expected: u64,
        /// The live version; 0 when the flag does not exist (or is deleted).
        current: u64,
    },
    /// Optimistic concurrency for an apply: the environment changed since the caller read it.
    #[error("the environment is at revision {current}, not the expected {expected}; plan again and retry")]
    RevisionConflict {
        /// The revision the caller based its apply on.
        expected: u64,
        /// The environment's revision.
        current: u64,
    },
    /// The flag is not in a state the operation applies to.
    #[error(transparent)]
    Precondition(#[from] Precondition),
    /// The rollout percentages cannot make a split.
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    /// The write would grow the environment's full snapshot past the configured cap.
    #[error(
        "environment {environment:?} would take {} in a full snapshot ({bytes} bytes), over its cap of {} ({limit} bytes; flagd --max-environment-bytes): every SDK's cold start receives it in one message. Delete unused flags, or shorten descriptions and variant values",
        mebibytes(*bytes),
        mebibytes(*limit)
    )]
    EnvironmentTooLarge {
        /// The environment.
        environment: String,
        /// Its snapshot's size after the write.
        bytes: usize,
        /// The cap.
        limit: usize,
    },
    /// The store failed; see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rollout plan was refused, or its change no longer applies.
    #[error(transparent)]
    Plan(#[from] PlanRefusal),
}

/// Why a rollout plan could not be started or moved on; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PlanRefusal {
    /// The plan's own terms.
    #[error(transparent)]
    Terms(#[from] flag_core::PlanError),
    /// The flag has no `off` variant to compare against.
    #[error("flag {key:?}: expected a variant `off` as the control cohort; the flag has {variants}")]
    NoControl {
        /// The flag.
        key: String,
        /// Its variants, listed.
        variants: String,
    },
    /// The flag is killed (starting or resuming a plan).
    #[error("flag {key:?} is killed: revive it before a rollout plan runs on it")]
    Killed {
        /// The flag.
        key: String,
    },
    /// The flag already has a running or paused plan.
    #[error("flag {key:?} already has a rollout plan ({state}, step {step}/{steps}): abort it first")]
    AlreadyPlanned {
        /// The flag.
        key: String,
        /// The plan's state.
        state: &'static str,
        /// Its current step, 1-based.
        step: usize,
        /// How many steps it has.
        steps: usize,
    },
    /// The flag has no plan.
    #[error("flag {key:?} has no rollout plan")]
    NoPlan {
        /// The flag.
        key: String,
    },
    /// The plan's state does not allow the change (pausing a paused plan, resuming a
    /// finished one).
    #[error("flag {key:?}: cannot {action} a rollout plan that is {state}; it must be {needs}")]
    NotAllowed {
        /// The flag.
        key: String,
        /// What was asked.
        action: &'static str,
        /// The plan's state.
        state: &'static str,
        /// The state it needs.
        needs: &'static str,
    },
    /// The plan is not where the change expected it (moved on, paused, or finished).
    #[error("flag {key:?}: the rollout plan is {state} at step {step}, not where this change expected it")]
    Moved {
        /// The flag.
        key: String,
        /// Its state.
        state: &'static str,
        /// Its step, 1-based.
        step: usize,
    },
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
    #[error("{what} {name:?}: expected 1 to {max} of A-Z a-z 0-9 _ . -")]
    InvalidName {
        /// "bookmark" or "environment".
        what: &'static str,
        /// The name.
        name: String,
        /// The longest such name.
        max: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! store_error_into {
    ($into:ident: $($from:ty),+) => {$(
        impl From<$from> for $into {
            fn from(error: $from) -> Self {
                $into::Store(error.into())
            }
        }
    )+};
}

impl StoreError {
    /// A PostgreSQL failure while doing `during`.
    pub(crate) fn postgres(during: &'static str, source: postgres::Error) -> StoreError {
        StoreError::Postgres { during, source }
    }

    /// The redb storage error at the root of this one, if any.
    pub(crate) fn storage(&self) -> Option<&redb::StorageError> {
        match self {
            StoreError::Storage(error)
            | StoreError::Transaction(redb::TransactionError::Storage(error))
            | StoreError::Table(redb::TableError::Storage(error))
            | StoreError::Commit(redb::CommitError::Storage(error))
            | StoreError::Open { source: redb::DatabaseError::Storage(error), .. } => Some(error),
            _ => None,
        }
    }

    /// What kind of store failure this is, for `flagd_store_errors_total{kind}`; `None` for
    /// the ones that are not failures of the file (a schema from another version).
    pub(crate) fn kind(&self) -> Option<&'static str> {
        if let Some(storage) = self.storage() {
            return Some(match storage {
                redb::StorageError::Io(_) | redb::StorageError::PreviousIo => "io",
                redb::StorageError::Corrupted(_) => "corrupt",
                _ => "storage",
            });
        }
        Some(match self {
            StoreError::Panicked { .. } => "panic",
            StoreError::Closed { .. } => "closed",
            StoreError::Corrupt { .. } | StoreError::Missing { .. } | StoreError::Damaged { .. } => "corrupt",
            StoreError::CreateDir { .. } | StoreError::Read { .. } => "io",
            StoreError::Postgres { .. }
            | StoreError::PostgresCommit(_)
            | StoreError::PoolExhausted { .. }
            | StoreError::WriterRowMissing
            | StoreError::TransactionFailed => "postgres",
            StoreError::Open { .. }
            | StoreError::Durability(_)
            | StoreError::TransactionEnded
            | StoreError::Transaction(_)
            | StoreError::Table(_)
            | StoreError::Commit(_) => "storage",
            _ => return None,
        })
    }

    /// Whether the open `Database` can no longer be trusted to commit: redb latches an I/O
    /// error until the file is reopened, and a panic may have left its state half-changed.
    pub(crate) fn needs_reopen(&self) -> bool {
        matches!(self, StoreError::Panicked { .. })
            || matches!(
                self.storage(),
                Some(
                    redb::StorageError::Io(_)
                        | redb::StorageError::PreviousIo
                        | redb::StorageError::Corrupted(_)
                        | redb::StorageError::DatabaseClosed
                        | redb::StorageError::LockPoisoned(_)
                )
            )
    }

    /// Whether writes cannot be committed now (the file's I/O failed, or it is closed): the
    /// client should retry once the store is back, and `/readyz` says so meanwhile.
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Closed { .. } | StoreError::Panicked { .. } | StoreError::PoolExhausted { .. }
        ) || self.database_unreachable()
            || matches!(self.storage(), Some(redb::StorageError::Io(_) | redb::StorageError::PreviousIo))
    }

    /// Whether PostgreSQL could not be reached or its connection broke (as opposed to a
    /// statement it refused).
    pub(crate) fn database_unreachable(&self) -> bool {
        match self {
            StoreError::PostgresCommit(_) => true,
            StoreError::Postgres { source, .. } => postgres_unreachable(source),
            _ => false,
        }
    }

    /// Whether the outcome of a commit is unknown: it may have reached the disk or not.
    pub(crate) fn is_commit_failure(&self) -> bool {
        matches!(self, StoreError::Commit(_) | StoreError::PostgresCommit(_))
    }

    /// The innermost I/O error's text (`No space left on device (os error 28)`), if any.
    pub(crate) fn io_cause(&self) -> Option<String> {
        match self.storage() {
            Some(redb::StorageError::Io(error)) => Some(error.to_string()),
            Some(redb::StorageError::PreviousIo) => Some("an earlier I/O error".to_owned()),
            _ => match self {
                StoreError::Closed { cause, .. } => Some(cause.clone()),
                // The client's error and its causes: "connection refused" is the news.
                _ if self.database_unreachable() => {
                    let mut text = self.to_string();
                    let mut source = std::error::Error::source(self);
                    while let Some(cause) = source {
                        text.push_str(": ");
                        text.push_str(&cause.to_string());
                        source = cause.source();
                    }
                    Some(text)
                }
                _ => None,
            },
        }
    }
}

/// Whether a PostgreSQL client error means the server is out of reach (down, restarting,
/// failing over, out of connections) rather than refusing a statement: a closed
/// connection, an I/O error, or one of the SQLSTATEs of a connection lost or refused.
fn postgres_unreachable(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A store error, or an error that may wrap one: what the store's handle inspects to decide
/// whether to reopen the file.
pub(crate) trait HasStoreError {
    /// The store error inside, if any.
    fn store_error(&self) -> Option<&StoreError>;
}

impl HasStoreError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl HasStoreError for WriteError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            WriteError::Store(error) => Some(error),
            _ => None,
        }
    }
}

store_error_into!(WriteError: redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);
store_error_into!(PastError: redb::TransactionError, redb::TableError, redb::StorageError);
store_error_into!(BookmarkError: redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

impl HasStoreError for BookmarkError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            BookmarkError::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl From<PastError> for WriteError {
    fn from(error: PastError) -> Self {
        match error {
            PastError::FutureRevision { environment, revision, current } => {
                WriteError::FutureRevision { environment, revision, current }
            }
            PastError::Store(error) => WriteError::Store(error),
        }
    }
}

impl HasStoreError for PastError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            PastError::Store(error) => Some(error),
            PastError::FutureRevision { .. } => None,
        }
    }
}

/// `"a", "b"`, for messages.
/// `no environment "prodution"; did you mean "production"?`, or the names there are.
fn unknown_environment(environment: &str, known: &[String]) -> String {
    match nearest(environment, known) {
        Some(nearest) => format!("no environment {environment:?}; did you mean {nearest:?}?"),
        None if known.is_empty() => {
            format!("no environment {environment:?}; there are none yet (`flagctl env create NAME`)")
        }
        None => format!("no environment {environment:?}; the environments are {}", quoted(known)),
    }
}

/// The existing name nearest `wanted`, when it is near enough to be a typo.
fn nearest<'a>(wanted: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|name| (strsim::damerau_levenshtein(wanted, name), name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 4))
        .min()
        .map(|(_, name)| name.as_str())
}

fn quoted(keys: &[String]) -> String {
    keys.iter().map(|key| format!("{key:?}")).collect::<Vec<_>>().join(", ")
}

/// `bytes` as MiB with one decimal, for messages.
fn mebibytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_names_the_environment_meant() {
        let known = ["production".to_owned(), "staging".to_owned()];
        assert_eq!(nearest("prodution", &known), Some("production"));
        assert_eq!(nearest("stagign", &known), Some("staging"));
        assert_eq!(nearest("eu-west", &known), None);
    }
}
