//! Promote: chosen flags of one environment made so in another, in one apply on the target.
//!
//! Each promoted flag is the target's flag with the chosen parts ([`Parts`]) taken from the
//! source; a flag the target lacks is created as the source has it. The kill state is never
//! a part: a promote neither kills nor revives a flag in the target, and names the flags
//! whose kill state differs. The segments the promoted flags' rules name come along from
//! the source where the target lacks them or has them otherwise; anything else the flags
//! need and the target lacks (a prerequisite flag) makes the apply's one validation refuse
//! the whole promote, naming it. Every history entry says `promote from staging@r57`.

use super::backend::Database;
use flag_core::{Flag, FlagSet, Operator, Segment};

use super::apply::{Applied, Batch};
use super::error::WriteError;
use super::read;
use super::records::WriteMeta;
use super::subject::Versioned;
use super::write::Writer;

/// What a promote is asked to do.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Promote {
    /// The environment promoted from.
    pub(crate) from: String,
    /// The flags promoted; empty promotes every flag of `from`.
    pub(crate) keys: Vec<String>,
    /// Flags left out (of `keys`, or of all).
    pub(crate) except: Vec<String>,
    /// What of each flag is taken from `from`.
    pub(crate) parts: Parts,
    /// Plan and validate, but commit nothing.
    pub(crate) dry_run: bool,
    /// Refuse unless the target is at this revision.
    pub(crate) expected_revision: Option<u64>,
}

/// The parts of a flag a promote can take from the source. The kill state is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // five independent choices, named as the CLI names them
pub(crate) struct Parts {
    /// `rules`.
    pub(crate) rules: bool,
    /// `default`: what everyone else gets, the split weights included.
    pub(crate) default: bool,
    /// `variants` and `off_variant`.
    pub(crate) variants: bool,
    /// `prerequisites`.
    pub(crate) prerequisites: bool,
    /// `description` and `metadata` (owner, tags, kind).
    pub(crate) metadata: bool,
}

impl Default for Parts {
    /// Everything but the kill state.
    fn default() -> Self {
        Parts { rules: true, default: true, variants: true, prerequisites: true, metadata: true }
    }
}

/// What a promote did (or, on a dry run, would do).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Promoted {
    /// The source's revision the promote read.
    pub(crate) from_revision: u64,
    /// The changes on the target, as an apply reports them.
    pub(crate) applied: Applied,
    /// Segments brought from the source because promoted flags name them, sorted.
    pub(crate) segments: Vec<String>,
    /// Promoted flags whose kill state differs between the two: the target's was kept.
    pub(crate) kill_state_kept: Vec<String>,
}

impl Writer {
    /// Promotes from `promote.from` to `environment`; see the module docs.
    pub(super) fn promote(
        &self,
        db: &Database,
        environment: &str,
        promote: &Promote,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Promoted>, WriteError> {
        if promote.from == environment {
            return Err(WriteError::PromoteToItself { environment: environment.to_owned() });
        }
        let (from_revision, source) = read::snapshot(db, &promote.from)?;
        let (_, target) = read::snapshot(db, environment)?;
        let chosen = chosen(&source, promote)?;
        let mut kill_state_kept = Vec::new();
        let flags: Vec<Flag> = chosen
            .into_iter()
            .map(|flag| match Flag::find(&target, &flag.key) {
                Some(live) => {
                    if live.enabled != flag.enabled {
                        kill_state_kept.push(flag.key.clone());
                    }
                    promoted(live, flag, promote.parts)
                }
                None => flag.clone(),
            })
            .collect();
        let segments = needed_segments(&flags, &source, &target);
        let batch = Batch {
            flags,
            segments: segments.clone(),
            prune: false,
            dry_run: promote.dry_run,
            expected_revision: promote.expected_revision,
            allow_revive: false,
            from_history: false,
            lifecycle: None,
        };
        let reason = match meta.reason.as_str() {
            "" => format!("promote from {}@r{from_revision}", promote.from),
            theirs => format!("promote from {}@r{from_revision}: {theirs}", promote.from),
        };
        let meta = WriteMeta { reason, ..meta.clone() };
        let applied = self.apply(db, environment, batch, &meta, wanted)?;
        let segments = segments.into_iter().map(|segment| segment.key).collect();
        Ok(applied.map(|applied| Promoted { from_revision, applied, segments, kill_state_kept }))
    }
}

/// The source flags promoted, sorted by key; every key asked for must be there.
fn chosen<'s>(source: &'s FlagSet, promote: &Promote) -> Result<Vec<&'s Flag>, WriteError> {
    let missing: Vec<String> =
        promote.keys.iter().filter(|key| Flag::find(source, key).is_none()).cloned().collect();
    if !missing.is_empty() {
        return Err(WriteError::UnknownKeys { environment: promote.from.clone(), keys: missing });
    }
    let asked = |flag: &&Flag| promote.keys.is_empty() || promote.keys.contains(&flag.key);
    Ok(source.flags.iter().filter(asked).filter(|flag| !promote.except.contains(&flag.key)).collect())
}

/// `live` with `parts` taken from `source`; its kill state and what the store stamps stay.
fn promoted(live: &Flag, source: &Flag, parts: Parts) -> Flag {
    let mut flag = live.clone();
    let Parts { rules, default, variants, prerequisites, metadata } = parts;
    if rules {
        flag.rules.clone_from(&source.rules);
    }
    if default {
        flag.default.clone_from(&source.default);
    }
    if variants {
        flag.variants.clone_from(&source.variants);
        flag.off_variant.clone_from(&source.off_variant);
    }
    if prerequisites {
        flag.prerequisites.clone_from(&source.prerequisites);
    }
    if metadata {
        flag.description.clone_from(&source.description);
        flag.metadata.owner.clone_from(&source.metadata.owner);
        flag.metadata.tags.clone_from(&source.metadata.tags);
        flag.metadata.kind = source.metadata.kind;
    }
    flag
}

/// The source's segments that `flags` name and the target lacks or has otherwise, by key.
fn needed_segments(flags: &[Flag], source: &FlagSet, target: &FlagSet) -> Vec<Segment> {
    let mut named: Vec<&str> = flags
        .iter()
        .flat_map(|flag| &flag.rules)
        .flat_map(|rule| &rule.clauses)
        .filter(|clause| clause.op == Operator::InSegment)
        .flat_map(|clause| clause.values.iter().map(|value| value.0.as_str()))
        .collect();
    named.sort_unstable();
    named.dedup();
    named
        .into_iter()
        .filter_map(|key| source.segments.iter().find(|segment| segment.key == key))
        .filter(|segment| target.segments.iter().find(|live| live.key == segment.key) != Some(*segment))
        .cloned()
        .collect()
}
