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

use std::collections::HashSet;

use flag_core::{Flag, FlagSet, Problem, Segment, ValidationError};
use redb::Database;

use super::error::WriteError;
use super::records::{Committed, Operation, SubjectKind, WriteMeta};
use super::subject::Versioned;
use super::tables::{ENVIRONMENTS, revision_of};
use super::write::{Now, Write, Writer};

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
    /// Killed flags the file has enabled, which stay killed (see the module docs).
    pub(crate) kept_killed: Vec<String>,
}

/// One subject an apply creates, updates or deletes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AppliedChange {
    /// Flag or segment.
    pub(crate) kind: SubjectKind,
    /// Its key.
    pub(crate) key: String,
    /// `Create`, `Update` or `Delete`.
    pub(crate) operation: Operation,
    /// Its version after the apply.
    pub(crate) version: u64,
    /// Live content before (flag or segment), `None` on create.
    pub(crate) before: Option<Subject>,
    /// Content after, `None` on delete.
    pub(crate) after: Option<Subject>,
}

/// A flag or a segment.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per apply
pub(crate) enum Subject {
    /// A flag.
    Flag(Flag),
    /// A segment.
    Segment(Segment),
}

impl Writer {
    /// Applies `batch` to `environment`; see the module docs.
    pub(super) fn apply(
        &self,
        db: &Database,
        environment: &str,
        batch: Batch,
        meta: &WriteMeta,
    ) -> Result<Applied, WriteError> {
        self.transact(db, environment, |live| {
            let Batch { mut flags, segments, prune, dry_run, expected_revision } = batch;
            refuse_duplicates(&flags, &segments)?;
            let kept_killed = keep_kills(&mut flags, live);
            let txn = db.begin_write()?;
            let current = revision_of(&txn.open_table(ENVIRONMENTS)?, environment)?;
            if let Some(expected) = expected_revision.filter(|expected| *expected != current) {
                return Err(WriteError::RevisionConflict { expected, current });
            }
            let now = Now::new();
            let mut set = live.clone();
            let mut changes = Vec::new();
            let mut last = None;
            let mut record = |set: &mut FlagSet, kind, key: &str, operation, subject: Option<Subject>| {
                let write = Write { txn: &txn, set, environment, operation, meta, now: &now };
                let (committed, next) = match (kind, subject) {
                    (_, Some(Subject::Flag(flag))) => write.record_unchecked::<Flag>(key, Some(flag))?,
                    (_, Some(Subject::Segment(segment))) => write.record_unchecked(key, Some(segment))?,
                    (SubjectKind::Segment, None) => write.record_unchecked::<Segment>(key, None)?,
                    (SubjectKind::Flag, None) => write.record_unchecked::<Flag>(key, None)?,
                };
                *set = next;
                let version = committed.entry.version;
                last = Some(committed);
                Ok::<u64, WriteError>(version)
            };
            for (key, before, after) in plan::<Segment>(&live.segments, &segments, prune) {
                let operation = operation_of(before.is_some(), after.is_some());
                let version = record(
                    &mut set,
                    SubjectKind::Segment,
                    &key,
                    operation,
                    after.clone().map(Subject::Segment),
                )?;
                let (before, after) = (before.map(Subject::Segment), after.map(Subject::Segment));
                changes.push(AppliedChange {
                    kind: SubjectKind::Segment,
                    key,
                    operation,
                    version,
                    before,
                    after,
                });
            }
            for (key, before, after) in plan::<Flag>(&live.flags, &flags, prune) {
                let operation = operation_of(before.is_some(), after.is_some());
                let version =
                    record(&mut set, SubjectKind::Flag, &key, operation, after.clone().map(Subject::Flag))?;
                let (before, after) = (before.map(Subject::Flag), after.map(Subject::Flag));
                changes.push(AppliedChange {
                    kind: SubjectKind::Flag,
                    key,
                    operation,
                    version,
                    before,
                    after,
                });
            }
            set.validate().map_err(|error| WriteError::Invalid(by_key(error, &set)))?;
            let revision = last.as_ref().map_or(current, |committed| committed.revision);
            if dry_run || last.is_none() {
                // Dropping the transaction aborts it.
                return Ok((
                    Applied {
                        revision: if dry_run { current } else { revision },
                        changes,
                        last: None,
                        kept_killed,
                    },
                    None,
                ));
            }
            txn.commit()?;
            tracing::debug!(environment, changes = changes.len(), revision, "apply committed");
            Ok((Applied { revision, changes, last, kept_killed }, Some(set)))
        })
    }
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
    let mut planned: Vec<(String, Option<T>, Option<T>)> = wanted
        .iter()
        .filter_map(|want| {
            let current = live.iter().find(|l| l.key() == want.key());
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
