//! The reference the model test holds the store to: the store's documented semantics over
//! plain maps and vectors, written from its docs and tests, never from its code. It keeps
//! every version of every key and a log of which key each revision wrote, and answers every
//! read from those two alone.
//!
//! Flags are kept as their content with `version` set and the times left out: the times are
//! the clock's, so the test checks them by relation (`created_from`) rather than by value.

use std::collections::{BTreeMap, BTreeSet};

use flag_core::{Flag, Operation, Segment, Serve, SubjectKind};

use super::answers::{ApplyAnswer, Change, Content, Delta, Entry, Refusal, Written};
use super::rules::{changes, rollout, valid, without_store_fields};
use crate::store::{Batch, WriteOp};

#[derive(Clone, Debug)]
struct Version<T> {
    revision: u64,
    operation: Operation,
    reason: String,
    /// `None` for a delete. Flags: `version` 0 and no times.
    content: Option<T>,
    /// The version whose write time is this version's `created_at`.
    created_from: u64,
}

#[derive(Clone, Debug, Default)]
struct Environment {
    flags: BTreeMap<String, Vec<Version<Flag>>>,
    segments: BTreeMap<String, Vec<Version<Segment>>>,
    /// `log[r - 1]`: the (kind, key, version) revision `r` wrote.
    log: Vec<(SubjectKind, String, u64)>,
}

/// Every environment the test writes.
#[derive(Clone, Debug, Default)]
pub(super) struct Model {
    environments: BTreeMap<String, Environment>,
}

/// The resume window of the store the test opens (`StoreOptions::default`).
const RESUME_WINDOW: u64 = 10_000;

impl Model {
    pub(super) fn revision(&self, environment: &str) -> u64 {
        self.environments.get(environment).map_or(0, |e| e.log.len() as u64)
    }

    /// The live version of flag `key`: 0 when it does not exist.
    pub(super) fn live_version(&self, environment: &str, key: &str) -> u64 {
        let versions = self.environments.get(environment).and_then(|e| e.flags.get(key));
        versions.map_or(0, |v| if v.last().is_some_and(|v| v.content.is_some()) { v.len() as u64 } else { 0 })
    }

    /// The newest version flag `key` ever had: 0 when it never existed.
    pub(super) fn latest_version(&self, environment: &str, key: &str) -> u64 {
        self.environments.get(environment).and_then(|e| e.flags.get(key)).map_or(0, |v| v.len() as u64)
    }

    /// Which version's write time is version `version`'s `created_at`.
    pub(super) fn created_from(&self, environment: &str, key: &str, version: u64) -> Option<u64> {
        let versions = self.environments.get(environment)?.flags.get(key)?;
        Some(versions.get(usize::try_from(version).ok()?.checked_sub(1)?)?.created_from)
    }

    pub(super) fn list_flags(&self, environment: &str) -> Vec<Flag> {
        let Some(env) = self.environments.get(environment) else { return Vec::new() };
        env.flags.values().filter_map(|versions| live_with_version(versions)).collect()
    }

    pub(super) fn segments(&self, environment: &str) -> Vec<Segment> {
        let Some(env) = self.environments.get(environment) else { return Vec::new() };
        env.segments.values().filter_map(|versions| versions.last()?.content.clone()).collect()
    }

    /// The live flag and the entry of the write that made it.
    pub(super) fn flag(&self, environment: &str, key: &str) -> Option<(Flag, Entry)> {
        let versions = self.environments.get(environment)?.flags.get(key)?;
        let live = live_with_version(versions)?;
        Some((live, flag_entry(key, versions, versions.len() as u64)))
    }

    pub(super) fn flag_history(
        &self,
        environment: &str,
        key: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Vec<Entry> {
        let Some(versions) = self.environments.get(environment).and_then(|e| e.flags.get(key)) else {
            return Vec::new();
        };
        (1..=versions.len() as u64)
            .rev()
            .filter(|v| before.is_none_or(|before| *v < before))
            .take(limit)
            .map(|v| flag_entry(key, versions, v))
            .collect()
    }

    pub(super) fn environment_history(
        &self,
        environment: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Vec<Entry> {
        let Some(env) = self.environments.get(environment) else { return Vec::new() };
        (1..=env.log.len() as u64)
            .rev()
            .filter(|r| before.is_none_or(|before| *r < before))
            .take(limit)
            .map(|r| env.entry_of_revision(r))
            .collect()
    }

    /// `None`: the client must take a snapshot.
    pub(super) fn changes_since(&self, environment: &str, since: u64) -> Option<Delta> {
        let revision = self.revision(environment);
        if since == 0 || since > revision || revision - since > RESUME_WINDOW {
            return None;
        }
        let env = &self.environments[environment];
        // Each key changed after `since`, with whether it existed at `since`.
        let mut changed: BTreeMap<(SubjectKind, String), bool> = BTreeMap::new();
        for (kind, key, version) in &env.log[usize::try_from(since).ok()?..] {
            let existed = env.existed_before(*kind, key, *version);
            changed.entry((*kind, key.clone())).or_insert(existed);
        }
        let mut delta = Delta {
            revision,
            upserted_flags: Vec::new(),
            deleted_flags: Vec::new(),
            upserted_segments: Vec::new(),
            deleted_segments: Vec::new(),
        };
        for ((kind, key), existed) in changed {
            match kind {
                SubjectKind::Flag => match live_with_version(&env.flags[&key]) {
                    Some(flag) => delta.upserted_flags.push(flag),
                    None if existed => delta.deleted_flags.push(key),
                    None => {}
                },
                SubjectKind::Segment => match env.segments[&key].last().and_then(|v| v.content.clone()) {
                    Some(segment) => delta.upserted_segments.push(segment),
                    None if existed => delta.deleted_segments.push(key),
                    None => {}
                },
            }
        }
        Some(delta)
    }

    /// One write, as `WriteOp`'s docs describe it.
    pub(super) fn write(
        &mut self,
        environment: &str,
        op: &WriteOp,
        reason: &str,
    ) -> Result<Written, Refusal> {
        let env = self.environments.entry(environment.to_owned()).or_default();
        let (kind, key, operation, planned, created_from) = env.plan(op)?;
        let content = match planned {
            Planned::Unchanged(entry) => {
                return Ok(Written { revision: entry.revision, entry, unchanged: true });
            }
            Planned::Content(content) => content,
        };
        let mut candidate = env.live_flags();
        let mut segments = env.live_segment_keys();
        match (&kind, &content) {
            (SubjectKind::Flag, Some(Content::Flag(flag))) => {
                candidate.insert(key.clone(), flag.clone());
            }
            (SubjectKind::Flag, _) => {
                candidate.remove(&key);
            }
            (SubjectKind::Segment, Some(_)) => {
                segments.insert(key.clone());
            }
            (SubjectKind::Segment, None) => {
                segments.remove(&key);
            }
        }
        if !valid(&candidate, &segments) {
            return Err(Refusal::Invalid);
        }
        let version = env.record(kind, &key, operation, content, reason, created_from);
        let entry = env.entry_of_revision(env.log.len() as u64);
        debug_assert_eq!(entry.version, version);
        Ok(Written { revision: entry.revision, entry, unchanged: false })
    }

    /// An apply, as `Batch` and the `apply` docs describe it.
    pub(super) fn apply(
        &mut self,
        environment: &str,
        batch: &Batch,
        reason: &str,
    ) -> Result<ApplyAnswer, Refusal> {
        let flag_keys: BTreeSet<&str> = batch.flags.iter().map(|f| f.key.as_str()).collect();
        let segment_keys: BTreeSet<&str> = batch.segments.iter().map(|s| s.key.as_str()).collect();
        if flag_keys.len() != batch.flags.len() || segment_keys.len() != batch.segments.len() {
            return Err(Refusal::Invalid);
        }
        let env = self.environments.entry(environment.to_owned()).or_default();
        let current = env.log.len() as u64;
        if batch.expected_revision.is_some_and(|expected| expected != current) {
            return Err(Refusal::Conflict);
        }
        let live_flags = env.live_flags();
        let live_segments: BTreeMap<String, Segment> = env
            .segments
            .iter()
            .filter_map(|(key, v)| Some((key.clone(), v.last()?.content.clone()?)))
            .collect();
        // A file never revives a killed flag.
        let mut kept_killed = Vec::new();
        let mut wanted_flags: BTreeMap<String, Flag> = BTreeMap::new();
        for flag in &batch.flags {
            let mut flag = without_store_fields(flag);
            if flag.enabled && live_flags.get(&flag.key).is_some_and(|live| !live.enabled) {
                flag.enabled = false;
                kept_killed.push(flag.key.clone());
            }
            wanted_flags.insert(flag.key.clone(), flag);
        }
        kept_killed.sort();
        let wanted_segments: BTreeMap<String, Segment> =
            batch.segments.iter().map(|s| (s.key.clone(), s.clone())).collect();
        let segment_changes = changes(&live_segments, &wanted_segments, batch.prune);
        let flag_changes = changes(&live_flags, &wanted_flags, batch.prune);

        let mut candidate = live_flags.clone();
        for (key, _, after) in &flag_changes {
            match after {
                Some(flag) => candidate.insert(key.clone(), flag.clone()),
                None => candidate.remove(key),
            };
        }
        let mut segments: BTreeSet<String> = live_segments.keys().cloned().collect();
        for (key, _, after) in &segment_changes {
            match after {
                Some(_) => segments.insert(key.clone()),
                None => segments.remove(key),
            };
        }
        if !valid(&candidate, &segments) {
            return Err(Refusal::Invalid);
        }

        // Segments first, then flags, each by key: one version and one revision each.
        let mut answer = ApplyAnswer { revision: current, changes: Vec::new(), last: None, kept_killed };
        let mut revision = current;
        let planned = segment_changes
            .into_iter()
            .map(|(key, before, after)| {
                (SubjectKind::Segment, key, before.map(Content::Segment), after.map(Content::Segment))
            })
            .chain(flag_changes.into_iter().map(|(key, before, after)| {
                (SubjectKind::Flag, key, before.map(Content::Flag), after.map(Content::Flag))
            }));
        let mut commits = Vec::new();
        for (kind, key, before, after) in planned {
            let version = env.latest(kind, &key) + 1;
            revision += 1;
            let operation = match (&before, &after) {
                (None, _) => Operation::Create,
                (Some(_), Some(_)) => Operation::Update,
                (Some(_), None) => Operation::Delete,
            };
            let created_from = match kind {
                SubjectKind::Flag if before.is_some() => {
                    env.flags[&key].last().map_or(version, |v| v.created_from)
                }
                _ => version,
            };
            answer.changes.push(Change {
                kind,
                key: key.clone(),
                operation,
                version,
                before,
                after: after.clone(),
            });
            answer.last = Some((revision, kind, key.clone(), version));
            commits.push((kind, key, operation, after, created_from));
        }
        if batch.dry_run || commits.is_empty() {
            answer.last = None;
            return Ok(answer);
        }
        for (kind, key, operation, after, created_from) in commits {
            env.record(kind, &key, operation, after, reason, created_from);
        }
        answer.revision = revision;
        Ok(answer)
    }
}

/// What a write makes of its subject.
enum Planned {
    /// Nothing to write; the answer is this entry (the kill in force).
    Unchanged(Entry),
    /// The new content; `None` deletes.
    Content(Option<Content>),
}

/// (kind, key, operation, content, `created_from`: 0 for the new version itself).
type Plan = (SubjectKind, String, Operation, Planned, u64);

impl Environment {
    fn live_flags(&self) -> BTreeMap<String, Flag> {
        self.flags.iter().filter_map(|(key, v)| Some((key.clone(), v.last()?.content.clone()?))).collect()
    }

    fn live_segment_keys(&self) -> BTreeSet<String> {
        self.segments
            .iter()
            .filter(|(_, v)| v.last().is_some_and(|v| v.content.is_some()))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn latest(&self, kind: SubjectKind, key: &str) -> u64 {
        match kind {
            SubjectKind::Flag => self.flags.get(key).map_or(0, |v| v.len() as u64),
            SubjectKind::Segment => self.segments.get(key).map_or(0, |v| v.len() as u64),
        }
    }

    /// The live flag after checking `expected` against its version (0: must not exist).
    fn expect(&self, key: &str, expected: Option<u64>) -> Result<Option<Flag>, Refusal> {
        let versions = self.flags.get(key);
        let live = versions.and_then(|v| v.last()?.content.clone());
        let current = if live.is_some() { versions.map_or(0, |v| v.len() as u64) } else { 0 };
        match expected {
            Some(expected) if expected != current => Err(Refusal::Conflict),
            _ => Ok(live),
        }
    }

    /// The `created_from` of the live flag `key`, or `new` (the next version) if none.
    fn created_from(&self, key: &str, new: u64) -> u64 {
        match self.flags.get(key).and_then(|v| v.last()) {
            Some(live) if live.content.is_some() => live.created_from,
            _ => new,
        }
    }

    fn plan(&self, op: &WriteOp) -> Result<Plan, Refusal> {
        let flag = |key: &str, operation, content: Flag, created_from| {
            Ok((
                SubjectKind::Flag,
                key.to_owned(),
                operation,
                Planned::Content(Some(Content::Flag(content))),
                created_from,
            ))
        };
        match op {
            WriteOp::PutFlag { flag: wanted, expected_version } => {
                let live = self.expect(&wanted.key, *expected_version)?;
                let next = self.latest(SubjectKind::Flag, &wanted.key) + 1;
                let operation = if live.is_some() { Operation::Update } else { Operation::Create };
                flag(
                    &wanted.key,
                    operation,
                    without_store_fields(wanted),
                    self.created_from(&wanted.key, next),
                )
            }
            WriteOp::SetRollout { key, percent, dark_percent, expected_version, create_if_missing } => {
                let next = self.latest(SubjectKind::Flag, key) + 1;
                match self.expect(key, *expected_version)? {
                    Some(mut live) => {
                        live.default = Serve::Split(rollout(&live, *percent, *dark_percent)?);
                        flag(key, Operation::SetRollout, live, self.created_from(key, next))
                    }
                    None if *create_if_missing => {
                        let created = Flag::dark_launch(key, *percent, dark_percent.unwrap_or(*percent));
                        flag(key, Operation::Create, created.map_err(|_| Refusal::Invalid)?, next)
                    }
                    None => Err(Refusal::NotFound),
                }
            }
            WriteOp::ServeVariant { key, variant, expected_version } => {
                let mut live = self.expect(key, *expected_version)?.ok_or(Refusal::NotFound)?;
                live.default = Serve::Variant(variant.clone());
                flag(key, Operation::ServeVariant, live, self.created_from(key, 0))
            }
            WriteOp::Kill { key } => {
                let mut live = self.expect(key, None)?.ok_or(Refusal::NotFound)?;
                if !live.enabled {
                    return Ok((
                        SubjectKind::Flag,
                        key.clone(),
                        Operation::Kill,
                        Planned::Unchanged(self.kill_in_force(key)),
                        0,
                    ));
                }
                live.enabled = false;
                flag(key, Operation::Kill, live, self.created_from(key, 0))
            }
            WriteOp::Revive { key, expected_version } => {
                let mut live = self.expect(key, *expected_version)?.ok_or(Refusal::NotFound)?;
                if live.enabled {
                    return Err(Refusal::Precondition);
                }
                live.enabled = true;
                flag(key, Operation::Revive, live, self.created_from(key, 0))
            }
            WriteOp::DeleteFlag { key, expected_version } => {
                self.expect(key, *expected_version)?.ok_or(Refusal::NotFound)?;
                Ok((SubjectKind::Flag, key.clone(), Operation::Delete, Planned::Content(None), 0))
            }
            WriteOp::Rollback { key, to_version, expected_version, allow_revive } => {
                let live = self.expect(key, *expected_version)?;
                let versions = self.flags.get(key).ok_or(Refusal::NotFound)?;
                let latest = versions.len() as u64;
                let version = match *to_version {
                    None if latest == 1 => return Err(Refusal::Precondition),
                    None => latest - 1,
                    Some(v) if v == 0 || v > latest => return Err(Refusal::NotFound),
                    Some(v) => v,
                };
                let restored = &versions[version as usize - 1];
                let mut content = restored.content.clone().ok_or(Refusal::Precondition)?;
                if live.as_ref().is_some_and(|live| !live.enabled) && !allow_revive {
                    content.enabled = false;
                }
                // A deleted flag brings its identity back with its content.
                let created_from =
                    if live.is_some() { self.created_from(key, 0) } else { restored.created_from };
                flag(key, Operation::Rollback, content, created_from)
            }
            WriteOp::PutSegment { segment } => {
                let live = self.segments.get(&segment.key).and_then(|v| v.last()?.content.as_ref());
                let operation = if live.is_some() { Operation::Update } else { Operation::Create };
                let content = Planned::Content(Some(Content::Segment(segment.clone())));
                Ok((SubjectKind::Segment, segment.key.clone(), operation, content, 0))
            }
            WriteOp::DeleteSegment { key } => {
                self.segments.get(key).and_then(|v| v.last()?.content.as_ref()).ok_or(Refusal::NotFound)?;
                Ok((SubjectKind::Segment, key.clone(), Operation::Delete, Planned::Content(None), 0))
            }
        }
    }

    /// The oldest of the killed versions leading up to the live (killed) one.
    fn kill_in_force(&self, key: &str) -> Entry {
        let versions = &self.flags[key];
        let mut since = versions.len();
        while since > 1 && versions[since - 2].content.as_ref().is_some_and(|f| !f.enabled) {
            since -= 1;
        }
        flag_entry(key, versions, since as u64)
    }

    /// Appends the next version of `key` and the next revision; returns the version.
    /// `created_from` 0 means the new version itself.
    fn record(
        &mut self,
        kind: SubjectKind,
        key: &str,
        operation: Operation,
        content: Option<Content>,
        reason: &str,
        created_from: u64,
    ) -> u64 {
        let revision = self.log.len() as u64 + 1;
        let version = self.latest(kind, key) + 1;
        let created_from = if created_from == 0 { version } else { created_from };
        let reason = reason.to_owned();
        match content {
            Some(Content::Flag(flag)) => {
                let content = Some(without_store_fields(&flag));
                let row = Version { revision, operation, reason, content, created_from };
                self.flags.entry(key.to_owned()).or_default().push(row);
            }
            Some(Content::Segment(segment)) => {
                let row = Version { revision, operation, reason, content: Some(segment), created_from };
                self.segments.entry(key.to_owned()).or_default().push(row);
            }
            None if kind == SubjectKind::Flag => {
                let row = Version { revision, operation, reason, content: None, created_from };
                self.flags.entry(key.to_owned()).or_default().push(row);
            }
            None => {
                let row = Version { revision, operation, reason, content: None, created_from };
                self.segments.entry(key.to_owned()).or_default().push(row);
            }
        }
        self.log.push((kind, key.to_owned(), version));
        version
    }

    fn entry_of_revision(&self, revision: u64) -> Entry {
        let (kind, key, version) = &self.log[revision as usize - 1];
        match kind {
            SubjectKind::Flag => flag_entry(key, &self.flags[key], *version),
            SubjectKind::Segment => {
                let row = &self.segments[key][*version as usize - 1];
                Entry {
                    kind: SubjectKind::Segment,
                    key: key.clone(),
                    version: *version,
                    revision: row.revision,
                    operation: row.operation,
                    reason: row.reason.clone(),
                    flag: None,
                    segment: row.content.clone(),
                }
            }
        }
    }

    /// Whether `key` existed just before its version `version` was written.
    fn existed_before(&self, kind: SubjectKind, key: &str, version: u64) -> bool {
        let index = version as usize - 1;
        match kind {
            SubjectKind::Flag => index > 0 && self.flags[key][index - 1].content.is_some(),
            SubjectKind::Segment => index > 0 && self.segments[key][index - 1].content.is_some(),
        }
    }
}

fn flag_entry(key: &str, versions: &[Version<Flag>], version: u64) -> Entry {
    let row = &versions[version as usize - 1];
    Entry {
        kind: SubjectKind::Flag,
        key: key.to_owned(),
        version,
        revision: row.revision,
        operation: row.operation,
        reason: row.reason.clone(),
        flag: row.content.clone().map(|mut flag| {
            flag.version = version;
            flag
        }),
        segment: None,
    }
}

fn live_with_version(versions: &[Version<Flag>]) -> Option<Flag> {
    let mut flag = versions.last()?.content.clone()?;
    flag.version = versions.len() as u64;
    Some(flag)
}
