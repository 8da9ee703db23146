//! Apply: make an environment match a flag file in one transaction.
//!
//! The plan compares each flag and segment of the file with the live one, ignoring what the
//! store sets itself (version, created/updated times), so applying the same file twice
//! changes nothing the second time. Every planned change is recorded as its own version and
//! revision, like a single write, but all in one redb transaction that is validated once, at
//! the end: the intermediate states (a flag written before the segment it refers to) never
//! need to be valid, and either every change commits or none does.
//!
//! An apply never revives a killed flag: a file in git says `enabled: true` (or nothing)
//! for a flag an operator killed during an incident, and a pipeline applying it must not
//! undo the kill. Such a flag is applied with `enabled: false` and named in
//! [`Applied::kept_killed`]; `revive` switches it back on. A file can still kill a flag.

use std::collections::{HashMap, HashSet};

use super::backend::Database;
use flag_core::{
    AppliedChange, ChangeBatch, Flag, FlagSet, Operation, Problem, Segment, Subject, SubjectKind,
    ValidationError,
};

use super::cache::NewSet;
use super::environments::{self, Lifecycle, StampRecord};
use super::error::WriteError;
use super::history::{self, Head};
use super::lanes::Lane;
use super::plan_rows;
use super::records::{Committed, Now, WriteMeta};
use super::size;
use super::staged::{self, Row, Staged};
use super::subject::Versioned;
use super::tables::{
    CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, FLAGS, ROLLOUTS, SEGMENTS, is_environment_name,
};
use super::write::Writer;

/// Where an apply's changes go the moment it commits: the server's streams. The frame is
/// prepared (encoded) before the apply takes its turn to write and published while the turn
/// is still held, so no write that commits after the apply (a kill) reaches the streams
/// before it; were the apply's frame encoded after its turn, the kill's would often be out
/// first, and every stream would read the apply's changes back from the store to close the
/// gap, behind which the kill then waits.
pub(crate) trait ApplyPublisher: Send + Sync + std::fmt::Debug {
    /// Prepares `delta` of `environment`; the returned closure publishes it.
    fn prepare(&self, environment: &str, delta: &ChangeBatch) -> Box<dyn FnOnce() + Send + '_>;
}

/// What an apply is asked to do.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Batch {
    /// Flags to create or replace.
    pub(crate) flags: Vec<Flag>,
    /// Segments to create or replace.
    pub(crate) segments: Vec<Segment>,
    /// Delete the live flags and segments that are not in the batch.
    pub(crate) prune: bool,
    /// Plan, number and validate, but commit nothing.
    pub(crate) dry_run: bool,
    /// Refuse unless the environment is at this revision.
    pub(crate) expected_revision: Option<u64>,
    /// Switch killed flags back on where the batch has them enabled (a restore to a point
    /// before a kill, asked for explicitly); otherwise they stay killed (see the module docs).
    pub(crate) allow_revive: bool,
    /// The flags are versions from this store's own history (a restore), whose
    /// `created_at` is the store's and is kept; a file's is replaced, as a put's is.
    pub(crate) from_history: bool,
    /// The apply creates or deletes the environment (see `environments`); it commits even
    /// when no flag changes.
    pub(crate) lifecycle: Option<Lifecycle>,
}

/// What an apply did (or, on a dry run, would do).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Applied {
    /// The environment's revision afterwards.
    pub(crate) revision: u64,
    /// Segments first, then flags, each sorted by key.
    pub(crate) changes: Vec<AppliedChange>,
    /// The last change committed; `None` on a dry run or when nothing changed.
    pub(crate) last: Option<Committed>,
    /// Every change committed, as streams send it: from the revision the apply followed to
    /// its last, each key once with its new content or as deleted. `None` with `last`.
    pub(crate) delta: Option<ChangeBatch>,
    /// Killed flags the file has enabled, which stay killed (see the module docs).
    pub(crate) kept_killed: Vec<String>,
}

impl Writer {
    /// Applies `batch` to `environment`; see the module docs.
    ///
    /// The plan, the numbering, the stamping, the encoding and the one validation are done
    /// before taking a turn to write, against the live set as it was (`peek`). The turn then
    /// only inserts the rows and commits. If the environment changed meanwhile, or a kill
    /// asks for the turn while the rows go in, the uncommitted transaction is dropped
    /// (aborted) and the apply starts over from the new state: a kill never waits for an
    /// apply, and it is kept by the apply that follows it (`keep_kills`).
    ///
    /// `wanted()` is asked each time the apply has the turn, before it writes a row: an
    /// apply whose client has gone is not committed (`None`), like a single write.
    pub(super) fn apply(
        &self,
        db: &Database,
        environment: &str,
        batch: Batch,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Applied>, WriteError> {
        if !is_environment_name(environment) {
            return Err(WriteError::InvalidEnvironment { environment: environment.to_owned() });
        }
        refuse_duplicates(&batch.flags, &batch.segments)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // After giving way `MAX_YIELDS` times, plan and commit in one turn: kills that
            // keep coming would otherwise change the environment under every new plan.
            let held = (attempts > MAX_YIELDS).then(|| self.turn(Lane::Normal));
            let (live, bytes, read) = self.peek(db, environment)?;
            let current = match &batch.lifecycle {
                Some(Lifecycle::Create { .. }) => environments::counter(
                    &read.open_table(ENVIRONMENTS)?,
                    &read.open_table(ENVIRONMENT_INFO)?,
                    environment,
                )?,
                _ => environments::known(&read, environment)?,
            };
            if let Some(expected) = batch.expected_revision.filter(|expected| *expected != current) {
                return Err(WriteError::RevisionConflict { expected, current });
            }
            let mut flags = batch.flags.clone();
            if !batch.from_history {
                // The store sets these times, whatever a file says (`Versioned::stamp`).
                for flag in &mut flags {
                    flag.metadata.created_at = None;
                    flag.metadata.updated_at = None;
                }
            }
            let kept_killed = if batch.allow_revive { Vec::new() } else { keep_kills(&mut flags, &live) };
            let segment_plan = plan::<Segment>(&live.segments, &batch.segments, batch.prune);
            let flag_plan = plan::<Flag>(&live.flags, &flags, batch.prune);
            let planned = staged::merged(&live, &segment_plan, &flag_plan);
            planned.validate().map_err(|error| WriteError::Invalid(by_key(error, &planned)))?;
            // After planning and validation, so history records (nearly) the commit's time.
            let now = Now::new();
            let mut revision = current;
            let segments =
                staged::stage(&read, environment, &segment_plan, operation_of, &mut revision, meta, &now)?;
            let flags =
                staged::stage(&read, environment, &flag_plan, operation_of, &mut revision, meta, &now)?;
            drop(read);
            let grown = grown_bytes(bytes, &segments.stamped, &flags.stamped);
            size::check(environment, bytes, grown, self.max_environment_bytes())?;
            let changes = applied_changes(&segments, &flags);
            let last = flags.last.clone().or_else(|| segments.last.clone());
            if batch.dry_run || (last.is_none() && batch.lifecycle.is_none()) {
                let revision = current;
                return Ok(Some(Applied { revision, changes, last: None, delta: None, kept_killed }));
            }
            // `live` is kept until the turn is let go: freeing a 10,000-flag set takes ms,
            // and a kill waiting for the turn would wait for it too.
            let set = staged::merged(&live, &segments.stamped, &flags.stamped);
            let delta = last.as_ref().map(|last| staged::delta(current, last.revision, &segments, &flags));
            // Environments created or deleted are announced otherwise (their streams start
            // from a snapshot, or end).
            let publish = match (&delta, &batch.lifecycle, self.publisher.get()) {
                (Some(delta), None, Some(publisher)) => Some(publisher.prepare(environment, delta)),
                _ => None,
            };
            let rows = segments.rows.iter().chain(&flags.rows);
            let turn = Commit {
                planned_at: current,
                yields: held.is_none(),
                wanted,
                meta,
                lifecycle: batch.lifecycle.as_ref().map(|lifecycle| (lifecycle, meta, &now)),
                publish,
            };
            match self.commit_rows(db, environment, rows, (set, grown), turn)? {
                Outcome::Committed => {
                    tracing::debug!(environment, changes = changes.len(), revision, "apply committed");
                    return Ok(Some(Applied { revision, changes, last, delta, kept_killed }));
                }
                Outcome::Abandoned => return Ok(None),
                Outcome::GaveWay => {
                    tracing::debug!(environment, "apply gave way to another write; planning again");
                }
            }
        }
    }

    /// Writes `rows` and commits them if the environment is still at revision
    /// `turn.planned_at` and the client still wants them; see [`Outcome`] for what else can
    /// happen (nothing is written then, or only version rows no read reaches).
    ///
    /// Two commits, so that a kill arriving during one waits for at most about half of the
    /// apply's writing: first the version rows, staged beyond the environment's revision
    /// (see `history::Writable::stage`), then everything that makes them visible at once —
    /// live rows, heads, change log and the environment's revision. A reader sees all of
    /// the apply or none of it. A kill between the two takes the next revision and the
    /// apply plans again; what it staged is overwritten or discarded by the next apply.
    fn commit_rows<'r>(
        &self,
        db: &Database,
        environment: &str,
        rows: impl Iterator<Item = &'r Row> + Clone,
        set: (FlagSet, usize),
        turn: Commit<'_>,
    ) -> Result<Outcome, WriteError> {
        let Commit { planned_at, yields, wanted, meta, lifecycle, publish } = turn;
        let _turn = yields.then(|| self.turn(Lane::Normal));
        if !wanted() {
            self.abandon();
            return Ok(Outcome::Abandoned);
        }
        let changes_lifecycle = lifecycle.map(|(lifecycle, _, _)| lifecycle);
        match self.stage_versions(db, environment, rows.clone(), (planned_at, yields), changes_lifecycle)? {
            Outcome::Committed => {}
            other => return Ok(other),
        }
        // The client may have gone while the versions were written: the rest waits for it.
        if !wanted() {
            self.abandon();
            return Ok(Outcome::Abandoned);
        }
        if yields && self.kill_waiting() {
            return Ok(Outcome::GaveWay);
        }
        self.transact(db, environment, changes_lifecycle, |txn, _, _| {
            let mut environments = txn.open_table(ENVIRONMENTS)?;
            let counter =
                environments::counter(&environments, &txn.open_table(ENVIRONMENT_INFO)?, environment)?;
            if counter != planned_at {
                return Ok((Outcome::GaveWay, None));
            }
            let mut last_revision = planned_at;
            let mut flags_written = Vec::new();
            {
                let mut flags = txn.open_table(FLAGS)?;
                let mut segments = txn.open_table(SEGMENTS)?;
                let mut flag_history = history::write::<Flag>(&txn)?;
                let mut segment_history = history::write::<Segment>(&txn)?;
                let mut change_log = txn.open_table(CHANGES)?;
                for (index, row) in rows.enumerate() {
                    // A kill waiting costs this apply its work so far, never the kill its time.
                    if yields && index % KILL_CHECK_EVERY == 0 && self.kill_waiting() {
                        return Ok((Outcome::GaveWay, None));
                    }
                    let key = (environment, row.key.as_str());
                    let (current, history) = match row.kind {
                        SubjectKind::Flag => (&mut flags, &mut flag_history),
                        SubjectKind::Segment => (&mut segments, &mut segment_history),
                    };
                    match &row.current {
                        Some(bytes) => {
                            current.insert(key, bytes.as_slice())?;
                        }
                        None => {
                            current.remove(key)?;
                        }
                    }
                    history.set_head(
                        environment,
                        &row.key,
                        Head { version: row.version, revision: row.revision },
                    )?;
                    change_log.insert((environment, row.revision), row.change.as_slice())?;
                    last_revision = row.revision;
                    if row.kind == SubjectKind::Flag {
                        flags_written.push((row.key.as_str(), row.version));
                    }
                }
            }
            // An apply, a restore or a promote is a change outside any plan (see `plan_rows`).
            let mut plans = txn.open_table(ROLLOUTS)?;
            for (key, version) in flags_written {
                plan_rows::pause_for_change(&mut plans, environment, key, version, meta)?;
            }
            drop(plans);
            environments.insert(environment, last_revision)?;
            drop(environments);
            if let Some((lifecycle, meta, now)) = lifecycle {
                let stamp = StampRecord {
                    actor: meta.actor.clone(),
                    reason: meta.reason.clone(),
                    timestamp_ms: now.millis,
                };
                match lifecycle {
                    Lifecycle::Create { copied_from } => {
                        environments::mark_created(&txn, environment, stamp, copied_from.as_ref())?;
                    }
                    Lifecycle::Delete => environments::mark_deleted(&txn, environment, stamp, last_revision)?,
                }
            }
            if yields && self.kill_waiting() {
                return Ok((Outcome::GaveWay, None));
            }
            txn.commit()?;
            if let Some(publish) = publish {
                publish(); // the turn is still held: see `ApplyPublisher`
            }
            Ok((Outcome::Committed, Some((NewSet::Whole(set.0), set.1))))
        })
    }

    /// Commits the version rows of `rows` beyond revision `planned_at`, which the
    /// environment must still be at; first removes any staged there before (an apply that
    /// did not finish). Gives way to a waiting kill when `yields`.
    fn stage_versions<'r>(
        &self,
        db: &Database,
        environment: &str,
        rows: impl Iterator<Item = &'r Row>,
        (planned_at, yields): (u64, bool),
        lifecycle: Option<&Lifecycle>,
    ) -> Result<Outcome, WriteError> {
        self.transact(db, environment, lifecycle, |txn, _, _| {
            let counter = environments::counter(
                &txn.open_table(ENVIRONMENTS)?,
                &txn.open_table(ENVIRONMENT_INFO)?,
                environment,
            )?;
            if counter != planned_at {
                return Ok((Outcome::GaveWay, None));
            }
            {
                let mut flag_history = history::write::<Flag>(&txn)?;
                let mut segment_history = history::write::<Segment>(&txn)?;
                flag_history.discard_beyond(environment, planned_at)?;
                segment_history.discard_beyond(environment, planned_at)?;
                for (index, row) in rows.enumerate() {
                    if yields && index % KILL_CHECK_EVERY == 0 && self.kill_waiting() {
                        return Ok((Outcome::GaveWay, None));
                    }
                    let history = match row.kind {
                        SubjectKind::Flag => &mut flag_history,
                        SubjectKind::Segment => &mut segment_history,
                    };
                    history.stage(environment, row.revision, &row.history)?;
                }
            }
            if yields && self.kill_waiting() {
                return Ok((Outcome::GaveWay, None));
            }
            txn.commit()?;
            Ok((Outcome::Committed, None))
        })
    }
}

/// How an apply's rows are to be committed.
struct Commit<'w> {
    /// The revision the rows were numbered after.
    planned_at: u64,
    /// Whether to take a turn, and give it away to a waiting kill; `false` when the caller
    /// holds the turn already and keeps it whatever waits.
    yields: bool,
    /// Whether the client still waits for the answer.
    wanted: &'w dyn Fn() -> bool,
    /// Who asked for the apply and why: a flag's running plan pauses saying so.
    meta: &'w WriteMeta,
    /// When the apply creates or deletes the environment: how, asked by whom, and when.
    lifecycle: Option<(&'w Lifecycle, &'w WriteMeta, &'w Now)>,
    /// Publishes the rows once committed, before the turn is let go.
    publish: Option<Box<dyn FnOnce() + Send + 'w>>,
}

/// What became of an apply's rows.
enum Outcome {
    Committed,
    /// Another write changed the environment first, or a kill asked for the turn.
    GaveWay,
    /// The client had gone when the apply's turn came.
    Abandoned,
}

/// Rows written between two looks at the urgent lane: a look is an atomic load, a row a
/// few microseconds, so a kill waits for at most a few hundred microseconds of rows.
const KILL_CHECK_EVERY: usize = 64;

/// How many times an apply gives its turn away to a waiting kill before it keeps it: kills
/// sent back to back would otherwise start it over for ever. Its last attempt then plans
/// and commits in one turn, which a kill waits for — once, for about the apply's own time.
const MAX_YIELDS: u32 = 3;

/// What the caller is told of each change (content as planned, before stamping).
fn applied_changes(segments: &Staged<Segment>, flags: &Staged<Flag>) -> Vec<AppliedChange> {
    let segment_changes = segments.rows.iter().zip(&segments.stamped).map(|(row, (key, before, after))| {
        (row, key, before.clone().map(Subject::Segment), after.clone().map(Subject::Segment))
    });
    let flag_changes = flags.rows.iter().zip(&flags.stamped).map(|(row, (key, before, after))| {
        (row, key, before.clone().map(Subject::Flag), after.clone().map(Subject::Flag))
    });
    segment_changes
        .chain(flag_changes)
        .map(|(row, key, before, after)| AppliedChange {
            kind: row.kind,
            key: key.clone(),
            operation: operation_of(before.is_some(), after.is_some()),
            version: row.version,
            before,
            after,
        })
        .collect()
}

/// Turns off the wanted flags that are killed now; returns their keys.
fn keep_kills(flags: &mut [Flag], live: &FlagSet) -> Vec<String> {
    let mut kept = Vec::new();
    for flag in flags.iter_mut().filter(|flag| flag.enabled) {
        if Flag::find(live, &flag.key).is_some_and(|live| !live.enabled) {
            flag.enabled = false;
            kept.push(flag.key.clone());
        }
    }
    kept
}

fn operation_of(existed: bool, exists: bool) -> Operation {
    match (existed, exists) {
        (false, _) => Operation::Create,
        (true, true) => Operation::Update,
        (true, false) => Operation::Delete,
    }
}

/// The subjects whose content changes, sorted by key: (key, live content, new content).
fn plan<T: Versioned + Keyed>(live: &[T], wanted: &[T], prune: bool) -> Vec<(String, Option<T>, Option<T>)> {
    // A map rather than a search of `live` per wanted item: that search made apply quadratic.
    let by_key: HashMap<&str, &T> = live.iter().map(|l| (l.key(), l)).collect();
    let mut planned: Vec<(String, Option<T>, Option<T>)> = wanted
        .iter()
        .filter_map(|want| {
            let current = by_key.get(want.key()).copied();
            match current {
                Some(current) if current.same_content(want) => None,
                _ => Some((want.key().to_owned(), current.cloned(), Some(want.clone()))),
            }
        })
        .collect();
    if prune {
        let kept: HashSet<&str> = wanted.iter().map(Keyed::key).collect();
        planned.extend(
            live.iter()
                .filter(|l| !kept.contains(l.key()))
                .map(|l| (l.key().to_owned(), Some(l.clone()), None)),
        );
    }
    planned.sort_by(|a, b| a.0.cmp(&b.0));
    planned
}

/// What the plan needs of flags and segments.
trait Keyed {
    fn key(&self) -> &str;
    /// Equal apart from what the store sets itself.
    fn same_content(&self, other: &Self) -> bool;
}

impl Keyed for Flag {
    fn key(&self) -> &str {
        &self.key
    }

    fn same_content(&self, wanted: &Self) -> bool {
        let mut wanted = wanted.clone();
        wanted.version = self.version;
        wanted.metadata.created_at.clone_from(&self.metadata.created_at);
        wanted.metadata.updated_at.clone_from(&self.metadata.updated_at);
        *self == wanted
    }
}

impl Keyed for Segment {
    fn key(&self) -> &str {
        &self.key
    }

    fn same_content(&self, wanted: &Self) -> bool {
        self == wanted
    }
}

/// A key given twice is refused with the path of the second.
fn refuse_duplicates(flags: &[Flag], segments: &[Segment]) -> Result<(), WriteError> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (index, flag) in flags.iter().enumerate() {
        if !seen.insert(flag.key.as_str()) {
            problems.push(duplicate("flags", index, &flag.key));
        }
    }
    seen.clear();
    for (index, segment) in segments.iter().enumerate() {
        if !seen.insert(segment.key.as_str()) {
            problems.push(duplicate("segments", index, &segment.key));
        }
    }
    ValidationError::from_problems(problems).map_or(Ok(()), |error| Err(WriteError::Invalid(error)))
}

fn duplicate(list: &str, index: usize, key: &str) -> Problem {
    Problem {
        path: format!("{list}[{index}].key"),
        message: format!("expected a unique key, found {key:?} again"),
    }
}

/// Problem paths by key (`flags["chat"].rules[0]`): positions in the merged set mean nothing
/// to the caller.
fn by_key(mut error: ValidationError, set: &FlagSet) -> ValidationError {
    for problem in &mut error.problems {
        problem.path = super::paths::by_key(&problem.path, set);
    }
    error
}

/// The snapshot size after the stamped changes (key, before, after) of both kinds.
fn grown_bytes(
    bytes: usize,
    segments: &[(String, Option<Segment>, Option<Segment>)],
    flags: &[(String, Option<Flag>, Option<Flag>)],
) -> usize {
    let segments = segments.iter().fold(bytes, |total, (_, before, after)| {
        size::replaced(
            total,
            before.as_ref().map(size::segment_bytes),
            after.as_ref().map(size::segment_bytes),
        )
    });
    flags.iter().fold(segments, |total, (_, before, after)| {
        size::replaced(total, before.as_ref().map(size::flag_bytes), after.as_ref().map(size::flag_bytes))
    })
}
