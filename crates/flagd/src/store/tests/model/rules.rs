//! The content rules the reference applies, for the flags the test makes: what a valid
//! environment is, what a rollout makes of a split, and what an apply changes.

use std::collections::{BTreeMap, BTreeSet};

use flag_core::{Flag, Serve, Split};

use super::answers::Refusal;

/// `flag` without what the store sets itself.
pub(super) fn without_store_fields(flag: &Flag) -> Flag {
    let mut flag = flag.clone();
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    flag
}

/// The changes that make `live` into `wanted` (deleting the rest when `prune`), by key:
/// (key, before, after).
pub(super) fn changes<T: Clone + PartialEq>(
    live: &BTreeMap<String, T>,
    wanted: &BTreeMap<String, T>,
    prune: bool,
) -> Vec<(String, Option<T>, Option<T>)> {
    let keys: BTreeSet<&String> = live.keys().chain(wanted.keys()).collect();
    keys.into_iter()
        .filter_map(|key| match (live.get(key), wanted.get(key)) {
            (before, Some(after)) if before != Some(after) => {
                Some((key.clone(), before.cloned(), Some(after.clone())))
            }
            (Some(before), None) if prune => Some((key.clone(), Some(before.clone()), None)),
            _ => None,
        })
        .collect()
}

/// A dark-launch split at `percent`: `dark` when given, else the current dark cohort's
/// reach (raised to `percent`) if it has one, else nobody dark. Bucketing (`by`, `salt`) is
/// kept.
pub(super) fn rollout(live: &Flag, percent: f64, dark: Option<f64>) -> Result<Split, Refusal> {
    let has = |name: &str| live.variants.iter().any(|v| v.name == name);
    if !(has("on") && has("dark") && has("off")) {
        return Err(Refusal::Precondition);
    }
    let current = match &live.default {
        Serve::Split(split) => Some(split),
        Serve::Variant(_) | Serve::CallerDefault => None,
    };
    let reach = current.and_then(Split::dark_launch_percentages).filter(|(on, reach)| reach > on);
    let dark = dark.unwrap_or_else(|| reach.map_or(percent, |(_, reach)| reach.max(percent)));
    let mut split = Split::dark_launch(percent, dark).map_err(|_| Refusal::Invalid)?;
    if let Some(current) = current {
        split.by.clone_from(&current.by);
        split.salt.clone_from(&current.salt);
        split.bucketing = current.bucketing;
    }
    Ok(split)
}

/// Whether an environment of these flags and segments is valid, for the flags the test
/// makes: every variant named is one of the flag's, every segment and prerequisite named
/// exists (with the variant asked for), and no prerequisites form a cycle.
pub(super) fn valid(flags: &BTreeMap<String, Flag>, segments: &BTreeSet<String>) -> bool {
    let names = |flag: &Flag, name: &str| flag.variants.iter().any(|v| v.name == name);
    let serves = |flag: &Flag, serve: &Serve| match serve {
        Serve::Variant(name) => names(flag, name),
        Serve::Split(split) => split.weights.iter().all(|w| names(flag, &w.variant)),
        Serve::CallerDefault => true,
    };
    let each_valid = flags.values().all(|flag| {
        flag.off_variant.as_ref().is_none_or(|off| names(flag, off))
            && serves(flag, &flag.default)
            && flag.rules.iter().all(|rule| {
                serves(flag, &rule.serve)
                    && rule
                        .clauses
                        .iter()
                        .flat_map(|c| &c.values)
                        .all(|segment| segments.contains(&segment.0))
            })
            && flag.prerequisites.iter().all(|p| flags.get(&p.flag).is_some_and(|f| names(f, &p.variant)))
    });
    each_valid && !has_cycle(flags)
}

fn has_cycle(flags: &BTreeMap<String, Flag>) -> bool {
    // Depth-first from each flag, with the path so far: a prerequisite on the path is a cycle.
    fn visit<'f>(flags: &'f BTreeMap<String, Flag>, key: &'f str, path: &mut Vec<&'f str>) -> bool {
        if path.contains(&key) {
            return true;
        }
        let Some(flag) = flags.get(key) else { return false };
        path.push(key);
        let found = flag.prerequisites.iter().any(|p| visit(flags, &p.flag, path));
        path.pop();
        found
    }
    flags.keys().any(|key| visit(flags, key, &mut Vec::new()))
}
