//! The write operations, and what each makes of the current state: the new content of one
//! flag or segment. The write path (`write`) then versions, validates and stores it.

use flag_core::{
    Bucketing, DARK, Flag, FlagSet, HistoryEntry, OFF, ON, Operation, Segment, Serve, Split, SubjectKind,
    TOTAL_WEIGHT, Weight, percent_to_weight,
};

use super::error::{Precondition, WriteError};
use super::history::{HeadRows, History, VersionRows};
use super::records::{StoredVersion, decode};
use super::subject::Versioned;

/// One change to one flag or segment of an environment.
///
/// `expected_version` is optimistic concurrency: when given, the write is refused with
/// [`WriteError::VersionConflict`] unless the flag's live version is exactly that (0 = "the
/// flag must not exist"). Kill takes none on purpose: a kill during an incident must not
/// fail because someone else changed the flag a moment earlier.
// One `WriteOp` is built per request and moved once into the blocking task; boxing the
// flag would cost an allocation to save a few hundred bytes of a short-lived move.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WriteOp {
    /// Creates or replaces the flag (operation `Create` or `Update`). Its `version` and
    /// `metadata.created_at/updated_at` are set by the store, whatever was sent.
    PutFlag {
        /// The flag's new content.
        flag: Flag,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
    },
    /// Makes the default serve a dark-launch split: `percent` % `on`, users up to
    /// `dark_percent` % `dark`, the rest `off` (operation `SetRollout`).
    ///
    /// A missing flag is created as [`Flag::dark_launch`] when `create_if_missing`
    /// (operation `Create`), else refused as not found. An existing flag needs variants
    /// `on`, `dark` and `off`. Without `dark_percent` a dark cohort of the current split (a
    /// dark share above 0, which only an explicit dark percentage makes) keeps its reach —
    /// raised to `percent` if below it, which uses it up — and otherwise nobody is dark. The split's `by` and `salt` are kept, so nobody changes bucket.
    /// `enabled` is kept: a rollout change never revives a killed flag, so a ramp can be
    /// prepared while killed and switched on with [`WriteOp::Revive`].
    SetRollout {
        /// The flag.
        key: String,
        /// Who sees the new path, 0 to 100.
        percent: f64,
        /// Who runs it, seen or not, `percent` to 100.
        dark_percent: Option<f64>,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
        /// Create a dark-launch flag when there is none.
        create_if_missing: bool,
    },
    /// Makes the default serve this one variant (`on`/`off` for 100 %/0 %) (operation
    /// `ServeVariant`).
    ServeVariant {
        /// The flag.
        key: String,
        /// One of its variants.
        variant: String,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
    },
    /// `enabled = false`: everyone gets the off variant (operation `Kill`). Killing a killed
    /// flag writes nothing (no version, no revision): the write answers with the kill that is
    /// in force, marked [`Committed::unchanged`](super::Committed).
    Kill {
        /// The flag.
        key: String,
    },
    /// `enabled = true` on a killed flag (operation `Revive`), so it serves what it served
    /// before the kill — plus any change made while it was killed (see the store docs).
    Revive {
        /// The flag.
        key: String,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
    },
    /// Deletes the flag (operation `Delete`); its history is kept, and a flag created later
    /// under the same key continues its version numbers.
    DeleteFlag {
        /// The flag.
        key: String,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
    },
    /// A new version with version `to_version`'s content (operation `Rollback`); `None`
    /// means the version before the newest. Restores deleted flags too. A killed flag stays
    /// killed unless `allow_revive` (as an apply keeps kills): reviving is a decision of its
    /// own, not a side effect of restoring content. With it, `enabled` is restored too.
    Rollback {
        /// The flag.
        key: String,
        /// The version whose content to restore.
        to_version: Option<u64>,
        /// See [`WriteOp`].
        expected_version: Option<u64>,
        /// Restore the version's `enabled` even when that revives a killed flag.
        allow_revive: bool,
    },
    /// Creates or replaces a segment (operation `Create` or `Update`).
    PutSegment {
        /// The segment's new content.
        segment: Segment,
    },
    /// Deletes a segment (operation `Delete`); refused while a flag refers to it.
    DeleteSegment {
        /// The segment.
        key: String,
    },
}

/// What a write will store, before the store stamps versions and times.
#[derive(Debug)]
pub(super) struct Planned {
    /// What history will say the write did.
    pub(super) operation: Operation,
    /// The subject and its new content.
    pub(super) change: Change,
}

/// The new content of the one subject a write changes; `None` deletes it.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per write, moved once: see `WriteOp`
pub(super) enum Change {
    /// Nothing to write: the subject already is what was asked (a kill of a killed flag).
    /// The entry is the write that made it so.
    Unchanged(HistoryEntry),
    /// Flag `key` becomes `content`.
    Flag { key: String, content: Option<Flag> },
    /// Segment `key` becomes `content`.
    Segment { key: String, content: Option<Segment> },
}

/// What `op` makes of the environment `set`, whose flag history is `history`.
pub(super) fn plan(
    op: WriteOp,
    set: &FlagSet,
    history: &History<impl VersionRows, impl HeadRows>,
    environment: &str,
) -> Result<Planned, WriteError> {
    let flag = |operation, key, content| Planned { operation, change: Change::Flag { key, content } };
    Ok(match op {
        WriteOp::PutFlag { mut flag, expected_version } => {
            let live = live_flag(set, &flag.key, expected_version)?;
            // The store decides when a flag was created (`Versioned::stamp`).
            flag.metadata.created_at = None;
            let operation = if live.is_some() { Operation::Update } else { Operation::Create };
            Planned { operation, change: Change::Flag { key: flag.key.clone(), content: Some(flag) } }
        }
        WriteOp::SetRollout { key, percent, dark_percent, expected_version, create_if_missing } => {
            match live_flag(set, &key, expected_version)? {
                Some(live) => {
                    let content = with_rollout(live, percent, dark_percent)?;
                    flag(Operation::SetRollout, key, Some(content))
                }
                None if create_if_missing => {
                    let content = Flag::dark_launch(&key, percent, dark_percent.unwrap_or(percent))?;
                    flag(Operation::Create, key, Some(content))
                }
                None => return Err(not_found(SubjectKind::Flag, key)),
            }
        }
        WriteOp::ServeVariant { key, variant, expected_version } => {
            let mut content = existing_flag(set, &key, expected_version)?;
            content.default = Serve::Variant(variant);
            flag(Operation::ServeVariant, key, Some(content))
        }
        WriteOp::Kill { key } => {
            let mut content = existing_flag(set, &key, None)?;
            if !content.enabled {
                let since = kill_in_force(history, environment, &key, content.version)?;
                return Ok(Planned { operation: Operation::Kill, change: Change::Unchanged(since) });
            }
            content.enabled = false;
            flag(Operation::Kill, key, Some(content))
        }
        WriteOp::Revive { key, expected_version } => {
            let mut content = existing_flag(set, &key, expected_version)?;
            if content.enabled {
                return Err(Precondition::NotKilled { key }.into());
            }
            content.enabled = true;
            flag(Operation::Revive, key, Some(content))
        }
        WriteOp::DeleteFlag { key, expected_version } => {
            existing_flag(set, &key, expected_version)?;
            flag(Operation::Delete, key, None)
        }
        WriteOp::Rollback { key, to_version, expected_version, allow_revive } => {
            let killed = live_flag(set, &key, expected_version)?.is_some_and(|live| !live.enabled);
            let mut content = rollback_content(history, environment, &key, to_version)?;
            if killed && !allow_revive {
                content.enabled = false;
            }
            flag(Operation::Rollback, key, Some(content))
        }
        WriteOp::PutSegment { segment } => {
            let live = Segment::find(set, &segment.key);
            let operation = if live.is_some() { Operation::Update } else { Operation::Create };
            Planned {
                operation,
                change: Change::Segment { key: segment.key.clone(), content: Some(segment) },
            }
        }
        WriteOp::DeleteSegment { key } => {
            if Segment::find(set, &key).is_none() {
                return Err(not_found(SubjectKind::Segment, key));
            }
            Planned { operation: Operation::Delete, change: Change::Segment { key, content: None } }
        }
    })
}

/// The live flag `key`, after checking the caller's expected version against it.
fn live_flag<'s>(set: &'s FlagSet, key: &str, expected: Option<u64>) -> Result<Option<&'s Flag>, WriteError> {
    let live = Flag::find(set, key);
    let current = live.map_or(0, |flag| flag.version);
    match expected {
        Some(expected) if expected != current => {
            Err(WriteError::VersionConflict { key: key.to_owned(), expected, current })
        }
        _ => Ok(live),
    }
}

/// A copy of the live flag `key`, which must exist.
fn existing_flag(set: &FlagSet, key: &str, expected: Option<u64>) -> Result<Flag, WriteError> {
    live_flag(set, key, expected)?.cloned().ok_or_else(|| not_found(SubjectKind::Flag, key.to_owned()))
}

fn not_found(kind: SubjectKind, key: String) -> WriteError {
    WriteError::NotFound { kind, key }
}

/// `live` with its default serve made the rollout split (see [`WriteOp::SetRollout`]): the
/// on/dark/off dark-launch split, or — for a plain on/off flag without a `dark` variant and
/// no dark cohort asked for — an on/off split.
fn with_rollout(live: &Flag, percent: f64, dark_percent: Option<f64>) -> Result<Flag, WriteError> {
    let has = |name: &str| live.variants.iter().any(|v| v.name == name);
    let wants_dark = has(DARK) || dark_percent.is_some_and(|dark| dark > percent);
    let needed: &[&'static str] = if wants_dark { &[ON, DARK, OFF] } else { &[ON, OFF] };
    let missing: Vec<&'static str> = needed.iter().copied().filter(|name| !has(name)).collect();
    if !missing.is_empty() {
        return Err(Precondition::MissingRolloutVariants { key: live.key.clone(), missing }.into());
    }
    let current = match &live.default {
        Serve::Split(split) => Some(split),
        Serve::Variant(_) | Serve::CallerDefault => None,
    };
    let mut split = if wants_dark {
        // The dark extent is only ever what an operator set: a dark share that exists came
        // from an explicit dark percentage (nothing else makes one: `--on`/`--off` and a
        // created flag get none unless asked, a percentage at or above the reach leaves
        // none), so its reach is kept. Without one nobody is dark: users moved out of `on`
        // go to `off`, never quietly into the shadow.
        let dark = dark_percent.unwrap_or_else(|| {
            let reach = current
                .and_then(Split::dark_launch_percentages)
                .filter(|(on, reach)| reach > on)
                .map(|(_, reach)| reach);
            reach.map_or(percent, |reach| reach.max(percent))
        });
        Split::dark_launch(percent, dark)?
    } else {
        let on = i64::from(percent_to_weight(percent)?);
        let weights = vec![
            Weight { variant: ON.into(), weight: on },
            Weight { variant: OFF.into(), weight: i64::from(TOTAL_WEIGHT) - on },
        ];
        Split { by: None, salt: None, weights, bucketing: Bucketing::default() }
    };
    // Everything that decides a user's bucket is kept, so nobody moves but whom the new
    // percentage moves.
    if let Some(current) = current {
        split.by.clone_from(&current.by);
        split.salt.clone_from(&current.salt);
        split.bucketing = current.bucketing;
    }
    let mut flag = live.clone();
    flag.default = Serve::Split(split);
    Ok(flag)
}

/// The content of the version a rollback restores.
fn rollback_content(
    history: &History<impl VersionRows, impl HeadRows>,
    environment: &str,
    key: &str,
    to_version: Option<u64>,
) -> Result<Flag, WriteError> {
    let latest = history.latest_version(environment, key)?;
    if latest == 0 {
        return Err(not_found(SubjectKind::Flag, key.to_owned()));
    }
    let version = match to_version {
        None if latest == 1 => return Err(Precondition::NoPreviousVersion { key: key.to_owned() }.into()),
        None => latest - 1,
        Some(version) if version == 0 || version > latest => {
            return Err(WriteError::VersionNotFound { key: key.to_owned(), version, latest });
        }
        Some(version) => version,
    };
    // Versions 1..=latest are all present: every write appends the next one, none are removed.
    let Some(row) = history.find(environment, key, version)? else {
        return Err(WriteError::VersionNotFound { key: key.to_owned(), version, latest });
    };
    let stored: StoredVersion<Flag> =
        decode(&row.bytes, Flag::VERSIONS_NAME, format_args!("({environment}, {})", row.revision))?;
    stored.content.ok_or_else(|| Precondition::RollbackToDeletion { key: key.to_owned(), version }.into())
}

/// The entry of the write that killed flag `key`, killed at version `live`: the oldest of the
/// killed versions leading up to it (a rollout changed while killed keeps the kill).
fn kill_in_force(
    history: &History<impl VersionRows, impl HeadRows>,
    environment: &str,
    key: &str,
    live: u64,
) -> Result<HistoryEntry, WriteError> {
    let mut since = None;
    for row in history.newest_first(environment, key, Some(live))? {
        let row = row?;
        let version = row.version;
        let stored: StoredVersion<Flag> =
            decode(&row.bytes, Flag::VERSIONS_NAME, format_args!("({environment}, {})", row.revision))?;
        if stored.content.as_ref().is_none_or(|flag| flag.enabled) {
            break;
        }
        since = Some(stored.into_entry(environment, key, version));
    }
    // The live version is killed, so the walk kept at least its own row; its absence means
    // the history lost a row the live table names.
    since.ok_or_else(|| {
        WriteError::Store(super::error::StoreError::Missing {
            table: Flag::VERSIONS_NAME,
            key: format!("version {live} of {key} in {environment}"),
        })
    })
}
