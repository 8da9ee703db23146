//! The write path: one write, one redb write transaction, acknowledged after a durable
//! commit.
//!
//! Order inside the transaction: plan the new content (`patch`), number and stamp it, write
//! the current row, the history row, the change-log row and the environment's revision,
//! validate the whole environment as it now is, and commit (redb's default
//! `Durability::Immediate`: on disk before `commit` returns). Any refusal or failure drops
//! the transaction, which aborts it, so nothing of a failed write remains. An apply
//! (`apply`) records several changes the same way and validates once, at the end.
//!
//! Writers take turns through [`Lanes`]: a kill or revive goes before every waiting write,
//! and a running apply gives its turn away to one (see `lanes` and `apply`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::backend::{Database, ReadTransaction, WriteTransaction};
use flag_core::{Flag, FlagSet, Operation, Segment, SubjectKind};

use super::apply::ApplyPublisher;
use super::cache::{Cache, NewSet};
use super::environments::{self, Lifecycle};
use super::error::{StoreError, WriteError};
use super::history::{self, Head};
use super::lanes::{Lane, Lanes, Turn};
use super::patch::{self, Change, Planned, WriteOp};
use super::paths;
use super::plan_rows;
use super::records::{ChangeRecord, Committed, Now, StoredVersion, WriteMeta, encode};
use super::size;
use super::subject::Versioned;
use super::tables::{CHANGES, ENVIRONMENTS, ROLLOUTS, is_environment_name, revision_of};

/// Rows a caller adds to a write's transaction once the write is planned and recorded
/// (a rollout plan beside the step it writes), so both commit or neither does. It sees the
/// committed entry (the flag after the write, or as it is when the write changes nothing);
/// an error drops the transaction.
pub(super) type Also<'a> = &'a mut dyn FnMut(&WriteTransaction, &Committed) -> Result<(), WriteError>;

/// Serializes writes and holds the flag sets they validate against.
#[derive(Debug)]
pub(super) struct Writer {
    /// A `Mutex` because writes are serialized anyway (redb runs one write transaction at a
    /// time) and validation must see exactly the state it commits over: holding this lock
    /// from reading the cache to replacing it makes check-then-commit atomic. `None` means
    /// "rebuild from the file": after a failed commit (it may or may not have reached the
    /// disk) or a panic in a writer, the file is the only truth.
    cache: Mutex<Option<Cache>>,
    /// The largest snapshot a write may grow an environment to (see `size`).
    max_environment_bytes: usize,
    /// Whose turn it is: taken before `cache`, and held for the whole write.
    lanes: Lanes,
    /// Where applies are published as they commit (see [`ApplyPublisher`]); unset in tests of
    /// the store alone.
    pub(super) publisher: OnceLock<Arc<dyn ApplyPublisher>>,
    /// Writes not committed because their client had gone by their turn. An atomic so
    /// that counting one needs no lock; read by tests, which wait for a queued write to be
    /// decided.
    abandoned: AtomicU64,
}

impl Writer {
    /// A writer validating against `cache`, which must have been loaded from the file.
    pub(super) fn new(cache: Cache, max_environment_bytes: usize) -> Writer {
        Writer {
            cache: Mutex::new(Some(cache)),
            max_environment_bytes,
            lanes: Lanes::default(),
            publisher: OnceLock::new(),
            abandoned: AtomicU64::new(0),
        }
    }

    /// Counts a write (or apply) left uncommitted because its client had gone.
    pub(super) fn abandon(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// How many writes were left uncommitted because their client had gone.
    #[cfg(test)]
    pub(super) fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// How many writes wait for their turn.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.lanes.waiting()
    }

    /// See `size`.
    pub(super) fn max_environment_bytes(&self) -> usize {
        self.max_environment_bytes
    }

    /// Waits for a turn in `lane`.
    pub(super) fn turn(&self, lane: Lane) -> Turn<'_> {
        self.lanes.enter(lane)
    }

    /// Whether a kill or revive waits for the current turn (see `apply`).
    pub(super) fn kill_waiting(&self) -> bool {
        self.lanes.kill_waiting()
    }

    /// The environment's live set and a read transaction of exactly the state it is the set
    /// of: no write commits while the cache is locked, so the two cannot disagree.
    pub(super) fn peek(
        &self,
        db: &Database,
        environment: &str,
    ) -> Result<(Arc<FlagSet>, usize, ReadTransaction), WriteError> {
        let mut slot = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let read = db.begin_read()?;
        let cache = match slot.take().filter(|_| db.cache_matches(read.generation())) {
            Some(cache) => cache,
            None => Cache::read(db, &read)?,
        };
        let (set, bytes) = (cache.shared(environment), cache.bytes(environment));
        *slot = Some(cache);
        Ok((set, bytes, read))
    }

    /// Applies `op` to `environment` in one durable transaction.
    #[cfg_attr(not(test), allow(dead_code))] // see `Store::write`
    pub(super) fn write(
        &self,
        db: &Database,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
    ) -> Result<Committed, WriteError> {
        let _turn = self.turn(lane_of(&op));
        self.write_in_turn(db, environment, op, meta)
    }

    /// Like `write`, but only if `wanted()` still holds when the write's turn comes (asked
    /// once, after the wait in the queue): a write whose client has gone is not committed.
    /// `None` when it was not wanted any more.
    pub(super) fn write_if(
        &self,
        db: &Database,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Committed>, WriteError> {
        let _turn = self.turn(lane_of(&op));
        if !wanted() {
            self.abandon();
            return Ok(None);
        }
        self.write_in_turn(db, environment, op, meta).map(Some)
    }

    fn write_in_turn(
        &self,
        db: &Database,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
    ) -> Result<Committed, WriteError> {
        self.write_in_turn_with(db, environment, op, meta, None)
    }

    /// Like `write`, with `also`'s rows in the same transaction: committed even when the
    /// write itself changes nothing.
    pub(super) fn write_with(
        &self,
        db: &Database,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
        also: Also<'_>,
    ) -> Result<Committed, WriteError> {
        let _turn = self.turn(lane_of(&op));
        self.write_in_turn_with(db, environment, op, meta, Some(also))
    }

    fn write_in_turn_with(
        &self,
        db: &Database,
        environment: &str,
        op: WriteOp,
        meta: &WriteMeta,
        also: Option<Also<'_>>,
    ) -> Result<Committed, WriteError> {
        let limit = self.max_environment_bytes;
        self.transact(db, environment, None, |txn, set, bytes| {
            commit(txn, (set, bytes, limit), environment, op, meta, also)
        })
    }

    /// Runs `body` in a write transaction over the environment's live set and its snapshot
    /// size; `body` commits, and returns its result and the environment's new set and size
    /// when it committed one. The caller holds a [`Turn`]. The environment must exist — or,
    /// when `lifecycle` creates it, must not.
    ///
    /// The transaction begins before the cache is consulted: on PostgreSQL, beginning it
    /// waits for every other flagd's write and says whether one committed since the cache
    /// was read (`cache_matches`); then the cache is read afresh, and no write can slip in
    /// between since this one holds the writers' lock.
    pub(super) fn transact<R>(
        &self,
        db: &Database,
        environment: &str,
        lifecycle: Option<&Lifecycle>,
        body: impl FnOnce(WriteTransaction, &FlagSet, usize) -> Result<(R, Option<(NewSet, usize)>), WriteError>,
    ) -> Result<R, WriteError> {
        if !is_environment_name(environment) {
            return Err(WriteError::InvalidEnvironment { environment: environment.to_owned() });
        }
        // A poisoned lock only means a writer panicked; the cache it held was taken out of
        // the slot first, so the slot is `None` and is rebuilt below.
        let mut slot = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let txn = db.begin_flag_write()?;
        let mut cache = match slot.take().filter(|_| db.cache_matches(txn.generation())) {
            Some(cache) => cache,
            // Through the write transaction on PostgreSQL: a second connection could be the
            // pool's last, taken by writes queued behind this one's lock.
            None => match txn.reads() {
                Some(read) => Cache::read(db, &read)?,
                None => Cache::load(db)?,
            },
        };
        let creates = matches!(lifecycle, Some(Lifecycle::Create { .. }));
        if cache.exists(environment) == creates {
            drop(txn);
            let refusal = refuse_lifecycle(db, environment, creates);
            *slot = Some(cache);
            return Err(refusal);
        }
        match body(txn, cache.environment(environment), cache.bytes(environment)) {
            Ok((result, new_set)) => {
                if let Some((set, bytes)) = new_set {
                    cache.replace(environment, set, bytes);
                    match lifecycle {
                        Some(Lifecycle::Create { .. }) => cache.set_exists(environment, true),
                        Some(Lifecycle::Delete) => cache.set_exists(environment, false),
                        None => {}
                    }
                }
                *slot = Some(cache);
                Ok(result)
            }
            // The commit may have reached the disk or not; leave the slot empty so the next
            // write reads the truth from the file.
            Err(error) if matches!(&error, WriteError::Store(store) if store.is_commit_failure()) => {
                tracing::warn!(environment, error = %error, "store commit failed; write cache dropped");
                Err(error)
            }
            Err(error) => {
                *slot = Some(cache);
                Err(error)
            }
        }
    }

    /// The cache as the writer holds it (`None` when it must be rebuilt).
    #[cfg(test)]
    pub(super) fn cached(&self) -> std::sync::MutexGuard<'_, Option<Cache>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a write cannot go ahead: `environment` exists and is to be created (`creates`), or
/// does not exist and is to be written.
fn refuse_lifecycle(db: &Database, environment: &str, creates: bool) -> WriteError {
    let read = || -> Result<WriteError, StoreError> {
        let txn = db.begin_read()?;
        if creates {
            let revision = environments::known(&txn, environment)?;
            return Ok(WriteError::EnvironmentExists { environment: environment.to_owned(), revision });
        }
        Ok(environments::unknown(&txn.open_table(ENVIRONMENTS)?, environment)?.into())
    };
    read().unwrap_or_else(WriteError::from)
}

/// Kills and revives go first (see `lanes`).
fn lane_of(op: &WriteOp) -> Lane {
    match op {
        WriteOp::Kill { .. } | WriteOp::Revive { .. } => Lane::Urgent,
        _ => Lane::Normal,
    }
}

/// One write over `set`, the environment's live state, `bytes` in a snapshot and capped at
/// `limit`; returns what was committed and the environment's new set and size (`None` when
/// nothing was written).
fn commit(
    txn: WriteTransaction,
    (set, bytes, limit): (&FlagSet, usize, usize),
    environment: &str,
    op: WriteOp,
    meta: &WriteMeta,
    also: Option<Also<'_>>,
) -> Result<(Committed, Option<(NewSet, usize)>), WriteError> {
    // A revive adds a byte or two (`enabled` is sent when true); like a kill, it is an
    // incident's tool, and the cap never stands in its way.
    let capped = !matches!(op, WriteOp::Kill { .. } | WriteOp::Revive { .. });
    let Planned { operation, change } = {
        let history = history::write::<Flag>(&txn)?;
        patch::plan(op, set, &history, environment)?
    };
    // After planning: history records when the write was made, not when it was asked for.
    let now = Now::new();
    let set_before = set;
    let write = Write { txn: &txn, set, environment, operation, meta, now: &now };
    let (committed, set) = match change {
        Change::Flag { key, content } if only_enabled_changes(set, &key, content.as_ref()) => {
            write.record_unchecked::<Flag>(&key, content)?
        }
        Change::Flag { key, content } => write.record::<Flag>(&key, content)?,
        Change::Segment { key, content } => write.record::<Segment>(&key, content)?,
        // Nothing to write: the transaction is dropped unused, so no version or revision —
        // unless rows of its own are to go with it.
        Change::Unchanged(entry) => {
            let committed = Committed::unchanged(entry);
            if let Some(also) = also {
                also(&txn, &committed)?;
                txn.commit()?;
            }
            return Ok((committed, None));
        }
    };
    let key = committed.entry.key.as_str();
    // Sized as stored (stamped), so the running total stays exact.
    let after = match (&committed.entry.flag, &committed.entry.segment) {
        (Some(flag), _) => Some(size::flag_bytes(flag)),
        (None, Some(segment)) => Some(size::segment_bytes(segment)),
        (None, None) => None,
    };
    let before = match committed.entry.kind {
        SubjectKind::Flag => Flag::find(set_before, key).map(size::flag_bytes),
        SubjectKind::Segment => Segment::find(set_before, key).map(size::segment_bytes),
    };
    let grown = size::replaced(bytes, before, after);
    if capped {
        size::check(environment, bytes, grown, limit)?;
    }
    match also {
        Some(also) => also(&txn, &committed)?,
        // Not the plan's own write: its running plan, if any, pauses (see `plan_rows`).
        None if committed.entry.kind == SubjectKind::Flag => {
            let mut plans = txn.open_table(ROLLOUTS)?;
            plan_rows::pause_for_change(&mut plans, environment, key, committed.entry.version, meta)?;
        }
        None => {}
    }
    txn.commit()?;
    tracing::debug!(
        environment,
        key = committed.entry.key,
        version = committed.entry.version,
        revision = committed.revision,
        operation = ?committed.entry.operation,
        "store write committed"
    );
    Ok((committed, Some((set, grown))))
}

/// Whether `content` is the live flag `key` with nothing but `enabled` (and what the store
/// stamps) changed — a kill or a revive. Validation compiles the whole environment (tens of
/// milliseconds at 10,000 flags) and reads nothing of `enabled`, so the set stays exactly as
/// valid as it was, and the kill does not pay for it.
fn only_enabled_changes(set: &FlagSet, key: &str, content: Option<&Flag>) -> bool {
    let (Some(live), Some(content)) = (Flag::find(set, key), content) else {
        return false;
    };
    let mut unkilled = content.clone();
    unkilled.enabled = live.enabled;
    unkilled.version = live.version;
    unkilled.metadata.created_at.clone_from(&live.metadata.created_at);
    unkilled.metadata.updated_at.clone_from(&live.metadata.updated_at);
    unkilled == *live
}

/// The parts of one write shared by flags and segments.
pub(super) struct Write<'a> {
    pub(super) txn: &'a WriteTransaction,
    pub(super) set: &'a FlagSet,
    pub(super) environment: &'a str,
    pub(super) operation: Operation,
    pub(super) meta: &'a WriteMeta,
    pub(super) now: &'a Now,
}

impl Write<'_> {
    /// Numbers, stamps and validates `content` as the new state of `key`, then writes every
    /// row of the change (not yet committed).
    fn record<T: Versioned>(self, key: &str, content: Option<T>) -> Result<(Committed, NewSet), WriteError> {
        let (kind, mut candidate) = (T::KIND, self.set.clone());
        let (committed, change) = self.record_unchecked::<T>(key, content)?;
        change.apply_to(&mut candidate);
        // Rows written so far are in the uncommitted transaction: a refusal drops it.
        candidate
            .validate()
            .map_err(|error| WriteError::Invalid(paths::focus(error, &candidate, (kind, key))))?;
        Ok((committed, NewSet::Whole(candidate)))
    }

    /// Numbers and stamps `content` as the new state of `key` and writes every row of the
    /// change (not yet committed); returns what it changed in the environment's set, not
    /// validated.
    pub(super) fn record_unchecked<T: Versioned>(
        self,
        key: &str,
        content: Option<T>,
    ) -> Result<(Committed, NewSet), WriteError> {
        let Write { txn, set, environment, operation, meta, now } = self;
        let mut history = history::write::<T>(txn)?;
        let head = history.head(environment, key)?;
        let version = head.map_or(0, |head| head.version) + 1;
        let live = T::find(set, key);
        let content = content.map(|mut content| {
            content.stamp(version, &now.text, live);
            content
        });

        let mut environments = txn.open_table(ENVIRONMENTS)?;
        let revision = revision_of(&environments, environment)? + 1;
        history::discard_other_kind_at(txn, T::KIND, environment, revision)?;
        let mut current = txn.open_table(T::CURRENT)?;
        match &content {
            Some(content) => {
                current.insert((environment, key), encode(content)?.as_slice())?;
            }
            None => {
                current.remove((environment, key))?;
            }
        }
        let change =
            ChangeRecord { kind: T::KIND, key: key.to_owned(), version, existed_before: live.is_some() };
        txn.open_table(CHANGES)?.insert((environment, revision), encode(&change)?.as_slice())?;
        environments.insert(environment, revision)?;
        let stored = StoredVersion {
            revision,
            operation,
            actor: meta.actor.clone(),
            on_behalf_of: meta.on_behalf_of.clone(),
            reason: meta.reason.clone(),
            timestamp_ms: now.millis,
            content,
            previous: head.map(|head| head.revision),
        };
        history.append(environment, key, Head { version, revision }, &encode(&stored)?)?;
        let entry = stored.into_entry(environment, key, version);
        let change = NewSet::one(&entry);
        Ok((Committed { revision, entry, unchanged: false }, change))
    }
}
