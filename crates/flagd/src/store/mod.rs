//! The durable flag store: every environment's flags and segments, every version of each
//! with who/when/why, and a change log that lets a client catch up from its revision.
//!
//! Pure synchronous Rust over [redb](https://docs.rs/redb): the async server calls it from
//! `spawn_blocking`. [`Store`] is a cheap handle (`Arc` inside) shared by every task.
//!
//! # Model
//!
//! - Everything is keyed by (environment, key). An environment exists once created (a new
//!   file starts with `production`); a call naming another is refused (see `environments`).
//! - Each write is one redb write transaction that updates the live row, appends a history
//!   row (the content after the write, operation, actor, reason, time) and a change-log row,
//!   and bumps the environment's **revision** by exactly 1 — committed durably before
//!   [`Store::write`] returns. A refused or failed write changes nothing.
//! - Each flag or segment has **versions** 1, 2, 3…; deleting keeps the history, and a key
//!   written again continues the numbering. The stored flag's `version` field is its
//!   version, and `metadata.created_at/updated_at` are set by the store.
//! - Every write is validated by flag-core as the **whole environment** after the change, so
//!   prerequisites, segment references and cycles are checked, and deleting something others
//!   depend on is refused. Problem paths name the written flag `flag.…` (segment:
//!   `segment.…`), first, and any other by key, `flags["checkout"].…` (see `paths`).
//! - [`Store::changes_since`] answers a client at revision `r` with every key changed after
//!   `r`, coalesced, in its current state — or `TooOld` past the resume window. The change
//!   log is never pruned: it also serves [`Store::environment_history`]; the window only
//!   bounds how large a delta may get before a snapshot is cheaper.
//!
//! # Decisions
//!
//! - **Values are JSON** of flag-core's serde types. The same format is the flag file format
//!   people read (`docs/flag-model.md`), so a row can be inspected with any redb tool and
//!   `jq`; flag-core's `deny_unknown_fields` means a field this code does not know is an
//!   error, never silently dropped. Rows are a few hundred bytes, so the size and the
//!   encoding time are small next to the fsync of a durable commit.
//! - **Revive** sets `enabled = true` on the live flag. Kill only clears `enabled`, so
//!   this restores exactly the pre-kill content — unless the flag was changed while killed
//!   (say, its rollout lowered before switching it back on), and then that change is kept
//!   rather than silently undone. To restore an older content, roll back to it.
//! - The writer keeps a **cache** of each environment's live flag set (`cache`), so a write
//!   validates without decoding the environment from the file; it is replaced only after a
//!   commit and rebuilt from the file whenever a commit fails.
//! - **A failed disk is survived, not latched.** redb refuses every transaction after one
//!   I/O error until its `Database` is reopened; `handle` does that itself (waiting for the
//!   calls still holding the old one), so a full disk costs the writes made while it is full
//!   and nothing after. `health()` says whether writes commit, for `/readyz`.
//! - **A damaged file is refused at open**, never served: see `check`.
//!
//! # Layout
//!
//! - `mod.rs` — [`Store`]: opening, and the API.
//! - `check` — opening a file: refuses empty and foreign files, runs redb's integrity check
//!   and the store's invariants ([`CheckReport`]). `handle` — the `Database` behind every
//!   call: panics caught, failures counted, the file reopened after an I/O error ([`Health`]).
//! - `backup` — a consistent copy from one read transaction. `bookmarks` — named revisions.
//!   `rollouts` — rollout plans, moved by compare-and-set, with their flag writes
//!   ([`Transition`]); `plan_rows` — their rows, and the pause of a plan whose flag is
//!   written by anyone else, in that write's transaction.
//!   `webhook_cursors` — the webhook outbox: per webhook and environment, the last revision
//!   delivered ([`Outbox`]).
//! - `tables` — the redb tables and their keys. `records` — stored records and their JSON,
//!   the time a write records; history entries are flag-core's [`HistoryEntry`].
//! - `patch` — [`WriteOp`]: what each operation makes of the current state.
//! - `apply` — [`Batch`]: a flag file applied in one transaction. `restore` — [`Restore`]: an
//!   environment made what it was at an earlier revision, as one apply. `promote` —
//!   [`Promote`]: flags of one environment made so in another, as one apply on the target.
//! - `write` — the write path. `paths` — validation paths the writer can use.
//! - `lanes` — writers' turns, kills first. `staged` — an apply's rows, made before its turn.
//! - `subject` — what differs between flags and segments, and replacing one in a set.
//!   `cache` — the writer's flag sets.
//! - `read` — reads, history and [`ChangesSince`]. `audit` — the audit log's query
//!   ([`AuditQuery`]): filtered, newest first across environments, paged by position.
//!   `past` — an environment at an earlier revision or time ([`Past`]).
//! - `environments` — which exist, and their lifecycle rows; `create` — a new one, empty or
//!   a copy; `summary` — what a list of them says.
//! - `error` — [`StoreError`], [`WriteError`], [`PastError`], [`BookmarkError`].
//!
//! Imports point one way, so the modules read bottom-up: `error`, `tables`, `size`;
//! `subject`, `records`; `environments`; `cache`, `paths`, `patch`, `read`, `audit`,
//! `summary`; `webhook_cursors`, `plan_rows`, `check`; `past`, `staged`, `lanes`; `write`;
//! `rollouts`, `apply`; `create`, `restore`, `promote`; `handle`, `backup`; `mod.rs`.

mod apply;
mod audit;
mod backend;
mod backup;
mod bookmarks;
mod cache;
mod check;
mod create;
mod environments;
mod error;
mod format;
mod handle;
mod history;
mod lanes;
mod past;
mod patch;
mod paths;
mod plan_rows;
mod promote;
mod read;
mod records;
mod restore;
mod rollouts;
mod size;
mod staged;
mod subject;
mod summary;
mod tables;
mod webhook_cursors;
mod write;

#[cfg(test)]
mod tests;
/// The same tests again, on PostgreSQL: `tests::on_postgres` tells the two copies apart.
#[cfg(test)]
#[path = "tests/mod.rs"]
mod tests_on_postgres;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend::{Database, ReadableTable};
use flag_core::{EnvironmentSummary, Flag, FlagSet, HistoryEntry, Segment};

use handle::Handle;

pub(crate) use apply::{Applied, ApplyPublisher, Batch};
pub(crate) use audit::{AuditPage, AuditQuery, AuditStart};
pub(crate) use backend::{Heard, without_password};
pub(crate) use bookmarks::Bookmark;
pub(crate) use check::CheckReport;
pub(crate) use environments::Lifecycle;
pub(crate) use error::{BookmarkError, PastError, PlanRefusal, StoreError, WriteError};
pub(crate) use handle::{Health, chain};
pub(crate) use past::{Past, Side};
pub(crate) use patch::WriteOp;
pub(crate) use promote::{Parts, Promote, Promoted};
pub(crate) use read::ChangesSince;
pub(crate) use records::{Committed, FlagRecord, WriteMeta};
pub(crate) use restore::{Restore, Restored};
pub(crate) use rollouts::{PlannedFlag, Transition, state_name};
pub(crate) use tables::is_environment_name;
pub(crate) use webhook_cursors::{Outbox, OutboxEntry};

use cache::Cache;
use tables::{
    BOOKMARKS, CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, FLAG_HEADS, FLAG_VERSIONS, FLAGS, META, ROLLOUTS,
    SCHEMA_VERSION, SCHEMA_VERSION_KEY, SEGMENT_HEADS, SEGMENT_VERSIONS, SEGMENTS, STORE_ID_KEY,
    WEBHOOK_CURSORS, WEBHOOKS,
};
use write::Writer;

/// How a [`Store`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreOptions {
    /// How many revisions behind a client may be and still get a delta from
    /// [`Store::changes_since`] rather than `TooOld`.
    pub(crate) resume_window: u64,
    /// The largest full snapshot (encoded bytes) a write may grow an environment to; see
    /// `size`.
    pub(crate) max_environment_bytes: usize,
}

impl Default for StoreOptions {
    /// A window of 10 000 revisions: days of busy editing, yet a delta no bigger than the
    /// environment itself in practice. The environment cap leaves a snapshot room in one
    /// gRPC message.
    fn default() -> Self {
        StoreOptions {
            resume_window: 10_000,
            max_environment_bytes: flag_proto::DEFAULT_MAX_ENVIRONMENT_BYTES,
        }
    }
}

/// The flag store: a handle to one redb file. Clones share it.
#[derive(Clone)]
pub(crate) struct Store {
    /// `Arc` so that every server task holds the same database and writer: redb allows one
    /// `Database` per file per process.
    inner: Arc<Inner>,
}

struct Inner {
    /// The file, reopened after an error redb cannot recover from. redb's read transactions
    /// run alongside its one write transaction.
    handle: Handle,
    /// Where the file is, for `Debug` and errors.
    path: PathBuf,
    options: StoreOptions,
    /// The write path, serialized, with its cache.
    writer: Writer,
    /// This store's identity, as 16 hex digits (see `tables::STORE_ID_KEY`).
    id: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).field("options", &self.inner.options).finish()
    }
}

impl Store {
    /// Opens the store file at `path`, creating it (and its parent directories) only if no
    /// file is there, and checks it (see `check`): a damaged, empty or foreign file is
    /// refused with the cause and the path. A file left by a crash is recovered by redb to
    /// its last committed transaction.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        Store::open_checked(path, options).map(|(store, _)| store)
    }

    /// [`Store::open`], also returning what the check looked at.
    pub(crate) fn open_checked(
        path: &Path,
        options: StoreOptions,
    ) -> Result<(Store, CheckReport), StoreError> {
        let (db, created) = check::open_database(path)?;
        Store::assemble(db, path, created, options)
    }

    /// Opens the store in the PostgreSQL database at `url` (a `postgres://` URL) with at
    /// most `connections` connections: creates or migrates its tables (see `backend`), and
    /// checks it as a file is checked. Other flagds may share it (see `backend`).
    pub(crate) fn open_postgres(
        url: &str,
        connections: usize,
        ca: Option<&crate::ca_file::CaFile>,
        options: StoreOptions,
    ) -> Result<(Store, CheckReport), StoreError> {
        let (db, applied) = Database::postgres(url, connections, ca)?;
        let shown = match &db {
            Database::Postgres(pool) => PathBuf::from(pool.shown()),
            Database::Redb(_) => PathBuf::from(url),
        };
        if !applied.is_empty() {
            tracing::info!(database = %shown.display(), migrations = ?applied, "PostgreSQL store schema migrated");
        }
        Store::assemble(db, &shown, applied.first() == Some(&1), options)
    }

    /// The store over `db`, opened from `path` (a file, or a database's URL): prepared,
    /// checked, its writer's cache loaded.
    fn assemble(
        db: Database,
        path: &Path,
        created: bool,
        options: StoreOptions,
    ) -> Result<(Store, CheckReport), StoreError> {
        let id = format!("{:016x}", prepare(&db, path)?);
        let mut report = check::invariants(&db, path)?;
        report.created = created;
        let writer = Writer::new(Cache::load(&db)?, options.max_environment_bytes);
        let handle = Handle::new(path, db);
        Ok((Store { inner: Arc::new(Inner { handle, path: path.to_owned(), options, writer, id }) }, report))
    }

    /// Whether the store is in PostgreSQL rather than a redb file.
    pub(crate) fn is_postgres(&self) -> bool {
        self.inner.handle.is_postgres()
    }

    /// Whether writes can be committed now. When the last one failed, this tries a commit of
    /// its own (a row in `meta`, no environment changes), so readiness comes back once the
    /// disk does, whether or not anyone writes. On PostgreSQL it always tries one: the
    /// database can go away while nobody writes, and readiness must say so.
    pub(crate) fn health(&self) -> Health {
        if self.inner.handle.health() != Health::Ready || self.is_postgres() {
            // Its failure is what `health()` then reports.
            let _ = self.inner.handle.run_write(|db| -> Result<(), StoreError> {
                let txn = db.begin_probe()?;
                txn.open_table(META)?.insert(PROBE_KEY, unix_millis())?;
                txn.commit()?;
                Ok(())
            });
        }
        self.inner.handle.health()
    }

    /// Writes a consistent copy of the store, from one read transaction, to `to` (a new
    /// file); see `backup`.
    pub(crate) fn backup_to(&self, to: &Path) -> Result<CheckReport, StoreError> {
        self.inner.handle.run(|db| backup::copy(db, to))
    }

    /// Applies one write in one durable transaction: when this returns `Ok`, the write is on
    /// disk. Writes are serialized, so validation sees exactly the state it commits over.
    // The server writes through `write_if`; this is the write of callers without a client.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn write(
        &self,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
    ) -> Result<Committed, WriteError> {
        self.inner.handle.run_write(|db| self.inner.writer.write(db, environment, op, meta))
    }

    /// Like [`Store::write`], but only if `wanted()` still holds when the write's turn comes
    /// (after any queue): `None`, and nothing written, when it does not — the client has gone.
    pub(crate) fn write_if(
        &self,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Committed>, WriteError> {
        self.inner.handle.run_write(|db| self.inner.writer.write_if(db, environment, op, meta, wanted))
    }

    /// Makes the environment match `batch` in one durable transaction (see `apply`): every
    /// change commits, or none does.
    // The server applies through `apply_if`; this is the apply of callers without a client.
    #[cfg(test)]
    pub(crate) fn apply(
        &self,
        environment: &str,
        batch: Batch,
        meta: &WriteMeta,
    ) -> Result<Applied, WriteError> {
        let applied = self.apply_if(environment, batch, meta, &|| true)?;
        Ok(applied.expect("an apply that is always wanted is never abandoned"))
    }

    /// Like [`Store::apply`], but only if `wanted()` still holds when the apply's turn comes:
    /// `None`, and nothing written, when it does not — the client has gone.
    pub(crate) fn apply_if(
        &self,
        environment: &str,
        batch: Batch,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Applied>, WriteError> {
        self.inner.handle.run_write(|db| self.inner.writer.apply(db, environment, batch, meta, wanted))
    }

    /// Sends every apply (restore, promote) to `publisher` as it commits (see
    /// [`ApplyPublisher`]); set once, by the server that streams this store.
    pub(crate) fn publish_applies_to(&self, publisher: Arc<dyn ApplyPublisher>) {
        let _ = self.inner.writer.publisher.set(publisher);
    }

    /// Holds the writer's turn until the guard is dropped: writes queue behind it.
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> impl Drop + '_ {
        self.inner.writer.turn(lanes::Lane::Normal)
    }

    /// How many writes and applies wait for the writer's turn.
    #[cfg(test)]
    pub(crate) fn queued_writes(&self) -> usize {
        self.inner.writer.queued()
    }

    /// How many writes and applies were not committed because their client had gone.
    #[cfg(test)]
    pub(crate) fn abandoned_writes(&self) -> u64 {
        self.inner.writer.abandoned()
    }

    /// Makes `environment` what it was at an earlier revision, in one durable transaction
    /// (see `restore`), unless `wanted()` no longer holds when its turn comes (`None`).
    pub(crate) fn restore_if(
        &self,
        environment: &str,
        restore: Restore,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Restored>, WriteError> {
        self.inner.handle.run_write(|db| self.inner.writer.restore(db, environment, restore, meta, wanted))
    }

    /// Promotes flags from `promote.from` to `environment` in one durable transaction on
    /// the target (see `promote`), unless `wanted()` no longer holds when its turn comes.
    pub(crate) fn promote_if(
        &self,
        environment: &str,
        promote: &Promote,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Promoted>, WriteError> {
        self.inner.handle.run_write(|db| self.inner.writer.promote(db, environment, promote, meta, wanted))
    }

    /// Names the environment's current revision `name` (see `bookmarks`).
    pub(crate) fn bookmark(
        &self,
        environment: &str,
        name: &str,
        meta: &WriteMeta,
    ) -> Result<Bookmark, BookmarkError> {
        self.inner.handle.run_write(|db| bookmarks::create(db, environment, name, meta))
    }

    /// Starts a rollout plan on `key`: the plan's row, the first step's rollout and its
    /// history entry in one durable transaction (see `rollouts`).
    pub(crate) fn start_rollout(
        &self,
        environment: &str,
        key: &str,
        plan: flag_core::RolloutPlan,
        meta: &WriteMeta,
    ) -> Result<(flag_core::Rollout, Committed), WriteError> {
        self.inner
            .handle
            .run_write(|db| rollouts::start(&self.inner.writer, db, environment, key, plan, meta))
    }

    /// Moves the plan of `key` by `change` (see [`Transition`]) — only if it is still
    /// `expected`, when given — with the flag write the change makes (the next step, a kill
    /// on breach…) in the same durable transaction. Returns the plan after it and the flag
    /// write, if there was one.
    pub(crate) fn move_rollout(
        &self,
        environment: &str,
        key: &str,
        expected: Option<&flag_core::Rollout>,
        change: Transition,
        meta: &WriteMeta,
    ) -> Result<(flag_core::Rollout, Option<Committed>), WriteError> {
        self.inner.handle.run_write(|db| {
            rollouts::transition(&self.inner.writer, db, environment, key, expected, change, meta)
        })
    }

    /// The latest plan of `key`, if it ever had one.
    pub(crate) fn rollout(
        &self,
        environment: &str,
        key: &str,
    ) -> Result<Option<flag_core::Rollout>, StoreError> {
        self.inner.handle.run(|db| rollouts::get(db, environment, key))
    }

    /// The plans of one environment, or of all of them, by environment and flag.
    pub(crate) fn rollouts(&self, environment: Option<&str>) -> Result<Vec<PlannedFlag>, StoreError> {
        self.inner.handle.run(|db| rollouts::list(db, environment))
    }

    /// The environment's bookmarks, by name.
    pub(crate) fn bookmarks(&self, environment: &str) -> Result<Vec<Bookmark>, StoreError> {
        self.inner.handle.run(|db| bookmarks::list(db, environment))
    }

    /// The revision bookmark `name` names; refused when there is none.
    pub(crate) fn bookmarked(&self, environment: &str, name: &str) -> Result<u64, BookmarkError> {
        self.inner.handle.run(|db| bookmarks::revision(db, environment, name))
    }

    /// Registers webhook `id` covering `filter` (`None`: every environment), or brings its
    /// registration up to date, in one durable commit; returns its cursors (see
    /// `webhook_cursors`). An environment without one is delivered from revision 0.
    pub(crate) fn register_webhook(
        &self,
        id: &str,
        filter: Option<&[String]>,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.inner.handle.run_write(|db| webhook_cursors::register(db, id, filter))
    }

    /// Moves webhook `id`'s cursor for `environment` to `revision` (never back), committed
    /// without an fsync: a crash may deliver again, never skip.
    pub(crate) fn advance_webhook_cursor(
        &self,
        id: &str,
        environment: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        self.inner.handle.run(|db| webhook_cursors::advance(db, id, environment, revision))
    }

    /// Makes every cursor move so far durable (at shutdown).
    pub(crate) fn flush_webhook_cursors(&self) -> Result<(), StoreError> {
        self.inner.handle.run_write(webhook_cursors::flush)
    }

    /// Up to `limit` changes of `environment` after revision `after`, each with the version
    /// it replaced, from one read transaction.
    pub(crate) fn webhook_outbox(
        &self,
        environment: &str,
        after: u64,
        limit: usize,
    ) -> Result<Outbox, StoreError> {
        self.inner.handle.run(|db| webhook_cursors::outbox(db, environment, after, limit))
    }

    /// This store's identity: revisions are comparable only within one store.
    pub(crate) fn id(&self) -> &str {
        &self.inner.id
    }

    /// The environment's revision: the number of writes it has had; refused when it does not
    /// exist.
    pub(crate) fn revision(&self, environment: &str) -> Result<u64, StoreError> {
        self.inner.handle.run(|db| read::revision(db, environment))
    }

    /// The live flag `key` with the history entry that wrote it; `None` if it does not
    /// exist or is deleted.
    pub(crate) fn flag(&self, environment: &str, key: &str) -> Result<Option<FlagRecord>, StoreError> {
        self.inner.handle.run(|db| read::flag(db, environment, key))
    }

    /// The environment's live flags whose key starts with `prefix` (`""` for all) and, when
    /// `tag` is given, that carry it; sorted by key.
    pub(crate) fn list_flags(
        &self,
        environment: &str,
        prefix: &str,
        tag: Option<&str>,
    ) -> Result<Vec<Flag>, StoreError> {
        self.inner.handle.run(|db| read::list_flags(db, environment, prefix, tag))
    }

    /// The environment's live flags, sorted by key, each with the history entry that wrote
    /// it, and the revision they are at: one read transaction (the console's flags table).
    pub(crate) fn flag_records(&self, environment: &str) -> Result<(u64, Vec<FlagRecord>), StoreError> {
        self.inner.handle.run(|db| read::flag_records(db, environment))
    }

    /// The environment's live segments, sorted by key.
    pub(crate) fn segments(&self, environment: &str) -> Result<Vec<Segment>, StoreError> {
        self.inner.handle.run(|db| read::segments(db, environment))
    }

    /// The environment's whole flag set and the revision it is at, read in one transaction.
    /// Flags and segments are sorted by key.
    pub(crate) fn snapshot(&self, environment: &str) -> Result<(u64, FlagSet), StoreError> {
        self.inner.handle.run(|db| read::snapshot(db, environment))
    }

    /// The environment as it was at `revision` (see `past`); refused when the environment
    /// has not reached it. (The server reads the past through `sides` and `restore_if`.)
    #[cfg(test)]
    pub(crate) fn environment_at(&self, environment: &str, revision: u64) -> Result<Past, PastError> {
        self.inner.handle.run(|db| past::environment_at(db, environment, revision))
    }

    /// Two environments, each at a revision or as it is now, from one read transaction: a
    /// diff of the two compares states that both existed at once.
    pub(crate) fn sides(&self, from: Side<'_>, to: Side<'_>) -> Result<(Past, Past), PastError> {
        self.inner.handle.run(|db| past::sides(db, from, to))
    }

    /// The environment's last revision committed at or before `time_ms` (ms since the Unix
    /// epoch); 0 when it had none then.
    pub(crate) fn revision_at(&self, environment: &str, time_ms: i64) -> Result<u64, StoreError> {
        self.inner.handle.run(|db| past::revision_at(db, environment, time_ms))
    }

    /// Versions of flag `key` older than `before_version` (all when `None`), newest first,
    /// at most `limit`; deletes included, and a deleted flag's history is still there. Page
    /// by passing the last version received as the next `before_version`.
    pub(crate) fn flag_history(
        &self,
        environment: &str,
        key: &str,
        before_version: Option<u64>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.handle.run(|db| read::flag_history(db, environment, key, before_version, limit))
    }

    /// The environment's writes (flags and segments) older than `before_revision` (all when
    /// `None`), newest first, at most `limit`. Page by the last revision received.
    pub(crate) fn environment_history(
        &self,
        environment: &str,
        before_revision: Option<u64>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.handle.run(|db| read::environment_history(db, environment, before_revision, limit))
    }

    /// A page of the audit log (see `audit`): the changes `query` asks for, newest first,
    /// each with its subject's content before it, from one read transaction.
    pub(crate) fn audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        self.inner.handle.run(|db| audit::query(db, query))
    }

    /// What a client at revision `since_revision` needs to reach the current revision; see
    /// [`ChangesSince`].
    pub(crate) fn changes_since(
        &self,
        environment: &str,
        since_revision: u64,
    ) -> Result<ChangesSince, StoreError> {
        self.inner
            .handle
            .run(|db| read::changes_since(db, environment, since_revision, self.inner.options.resume_window))
    }

    /// Every environment that exists, sorted.
    pub(crate) fn environments(&self) -> Result<Vec<String>, StoreError> {
        self.inner.handle.run(read::environments)
    }

    /// Every environment that exists and its revision, sorted by name: one read.
    pub(crate) fn revisions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.handle.run(read::revisions)
    }

    /// Adds to `wake` what other flagds on the store committed, until nobody follows it;
    /// `false` when none can (a redb file is this process's alone).
    pub(crate) fn listen_for_commits(
        &self,
        wake: tokio::sync::watch::Sender<Heard>,
    ) -> Result<bool, StoreError> {
        self.inner.handle.run(|db| db.listen_for_commits(wake).map_err(StoreError::Listen))
    }

    /// Replaces what this flagd (`replica`) reported of its SDKs' acknowledgements, per
    /// environment, for the other flagds on the store (see `crate::fleet`).
    pub(crate) fn report_fleet(
        &self,
        replica: &str,
        reports: &[(String, backend::Acked)],
    ) -> Result<(), StoreError> {
        self.inner.handle.run(|db| db.report_fleet(replica, reports))
    }

    /// What the other flagds on the store reported of their SDKs of `environment` in the
    /// last `fresh_for_ms`: per flagd, how many SDKs acknowledged which revision.
    pub(crate) fn fleet(
        &self,
        environment: &str,
        replica: &str,
        fresh_for_ms: i64,
    ) -> Result<Vec<backend::Acked>, StoreError> {
        self.inner.handle.run(|db| db.fleet(environment, replica, fresh_for_ms))
    }

    /// Whether this flagd is the one of the store's flagds that runs the duties only one
    /// may (advancing rollouts, delivering webhooks); always, on redb.
    pub(crate) fn leads(&self) -> bool {
        self.inner.handle.run(|db| Ok::<_, StoreError>(db.leads())).unwrap_or(false)
    }

    /// Every environment that exists or was deleted (its history is kept), sorted.
    pub(crate) fn environments_with_history(&self) -> Result<Vec<String>, StoreError> {
        self.inner.handle.run(|db| environments::names(&db.begin_read()?, true))
    }

    /// Creates `environment`, empty or (`from`) a copy of another's flags and segments at
    /// its current revision, in one durable transaction (see `environments`); refused when
    /// it exists. `None` when `wanted()` no longer held at its turn.
    pub(crate) fn create_environment(
        &self,
        environment: &str,
        from: Option<&str>,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Applied>, WriteError> {
        self.inner
            .handle
            .run_write(|db| self.inner.writer.create_environment(db, environment, from, meta, wanted))
    }

    /// Deletes every live flag and segment of `environment` (each a history version) and
    /// then the environment, in one durable transaction; its history stays readable.
    pub(crate) fn delete_environment(
        &self,
        environment: &str,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Applied>, WriteError> {
        let batch = Batch { prune: true, lifecycle: Some(Lifecycle::Delete), ..Batch::default() };
        self.inner.handle.run_write(|db| self.inner.writer.apply(db, environment, batch, meta, wanted))
    }

    /// Creates each of `environments` that does not exist (empty); returns those created.
    pub(crate) fn declare(
        &self,
        environments: &[String],
        meta: &WriteMeta,
    ) -> Result<Vec<String>, WriteError> {
        let mut created = Vec::new();
        for environment in environments {
            match self.create_environment(environment, None, meta, &|| true) {
                Ok(_) => created.push(environment.clone()),
                Err(WriteError::EnvironmentExists { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(created)
    }

    /// Every environment (with `deleted`, the deleted ones too), sorted by name, from one
    /// read transaction.
    pub(crate) fn environment_summaries(&self, deleted: bool) -> Result<Vec<EnvironmentSummary>, StoreError> {
        self.inner.handle.run(|db| summary::summaries(&db.begin_read()?, deleted))
    }

    /// One environment, existing or deleted.
    pub(crate) fn environment_summary(&self, environment: &str) -> Result<EnvironmentSummary, StoreError> {
        self.inner.handle.run(|db| summary::summary(&db.begin_read()?, environment))
    }
}

/// Creates the tables of a new file (so reads never meet a missing table), checks the
/// schema version of an existing one, and returns the store's id (chosen now if the file
/// has none).
fn prepare(db: &Database, path: &Path) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let id;
    let fresh;
    {
        let mut meta = txn.open_table(META)?;
        let existing = meta.get(STORE_ID_KEY)?.map(|v| v.value());
        fresh = existing.is_none();
        id = match existing {
            Some(id) => id,
            None => {
                let id = new_store_id(path);
                meta.insert(STORE_ID_KEY, id)?;
                id
            }
        };
        let found = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
        match found {
            Some(SCHEMA_VERSION) => {}
            // An older file is upgraded in this transaction (PostgreSQL's migrations have
            // already upgraded theirs).
            Some(older) if older < SCHEMA_VERSION && format::upgrade(&txn, older)? => {
                tracing::info!(path = %path.display(), from = older, to = SCHEMA_VERSION, "store format upgraded");
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
            }
            Some(found) => return Err(StoreError::Schema { found, supported: SCHEMA_VERSION }),
            None => {
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
            }
        }
        txn.open_table(ENVIRONMENTS)?;
        txn.open_table(FLAGS)?;
        txn.open_table(SEGMENTS)?;
        txn.open_table(FLAG_VERSIONS)?;
        txn.open_table(FLAG_HEADS)?;
        txn.open_table(SEGMENT_VERSIONS)?;
        txn.open_table(SEGMENT_HEADS)?;
        txn.open_table(CHANGES)?;
        txn.open_table(BOOKMARKS)?;
        txn.open_table(ROLLOUTS)?;
        txn.open_table(WEBHOOKS)?;
        txn.open_table(WEBHOOK_CURSORS)?;
        txn.open_table(ENVIRONMENT_INFO)?;
        if fresh && txn.open_table(ENVIRONMENTS)?.is_empty()? {
            environments::start_with(&txn, DEFAULT_ENVIRONMENT)?;
        }
    }
    txn.commit()?;
    Ok(id)
}

/// The environment a new store starts with, so that a first `flagctl set` works.
const DEFAULT_ENVIRONMENT: &str = flag_proto::DEFAULT_ENVIRONMENT;

/// A number no other store is likely to have: std's randomly keyed hasher over the time,
/// the process and the path. An identity, not a secret.
fn new_store_id(path: &Path) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut hasher);
    std::process::id().hash(&mut hasher);
    path.hash(&mut hasher);
    hasher.finish()
}

/// The `meta` row the readiness probe commits to (the time of the last probe).
const PROBE_KEY: &str = "readiness_probe_ms";

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
