//! The flag set a client holds as data: what a full snapshot replaces, what a change applies
//! to, what the cache file stores, and which flags each change touched.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use flag_core::{Flag, FlagSet, Operator, Segment, Snapshot, ValidationError, compile_parts};

/// Flags and segments by key, plus the revision at which each flag's answers last could
/// have changed.
///
/// `BTreeMap`s keep the flag order stable across changes, so a snapshot compiled after a
/// change that creates or deletes nothing keeps its predecessor's layout and
/// [`FlagHandle`](flag_core::FlagHandle)s stay on their fast path.
///
/// Flags, segments and keys are behind `Arc`s because each change clones the model: with
/// tens of thousands of flags, cloning pointers instead of flags is most of what keeps
/// applying one change cheap (the unchanged flags are shared with the previous state).
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub(crate) flags: BTreeMap<String, Arc<Flag>>,
    pub(crate) segments: BTreeMap<String, Arc<Segment>>,
    /// Flag key → revision of the last change to it or to a segment it uses (deleted flags
    /// keep their entry). Per-flag subscriptions compare against it, so a subscriber that
    /// wakes late still sees a change that a later revision's keys would not mention.
    pub(crate) changed_at: HashMap<Arc<str>, u64>,
}

/// What a `Changes` frame (or a reloaded file) carries, already converted to flag-core types.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub(crate) upserted_flags: Vec<Flag>,
    pub(crate) deleted_flags: Vec<String>,
    pub(crate) upserted_segments: Vec<Segment>,
    pub(crate) deleted_segments: Vec<String>,
}

impl Model {
    /// A model holding exactly `set`, every flag marked changed at `revision`.
    pub(crate) fn from_set(set: FlagSet, revision: u64, previous: &Model) -> Model {
        let mut model = Model {
            flags: BTreeMap::new(),
            segments: BTreeMap::new(),
            changed_at: previous.changed_at.clone(),
        };
        for flag in set.flags {
            model.flags.insert(flag.key.clone(), Arc::new(flag));
        }
        for segment in set.segments {
            model.segments.insert(segment.key.clone(), Arc::new(segment));
        }
        // A full replacement: mark only what differs, so per-flag subscribers of untouched
        // flags are not woken by a reconnect that brought nothing new.
        let mut changed: Vec<String> = Vec::new();
        for (key, flag) in &model.flags {
            if previous.flags.get(key) != Some(flag) {
                changed.push(key.clone());
            }
        }
        changed.extend(previous.flags.keys().filter(|key| !model.flags.contains_key(*key)).cloned());
        let segments_changed: Vec<&String> = model
            .segments
            .iter()
            .filter(|(key, segment)| previous.segments.get(*key) != Some(*segment))
            .map(|(key, _)| key)
            .chain(previous.segments.keys().filter(|key| !model.segments.contains_key(*key)))
            .collect();
        changed.extend(model.flags_using(&segments_changed));
        model.mark_changed(changed, revision);
        model
    }

    /// How many flags and segments the model holds.
    pub(crate) fn len(&self) -> usize {
        self.flags.len() + self.segments.len()
    }

    /// This model with `delta` applied, the touched flags marked changed at `revision`.
    pub(crate) fn apply(&self, delta: Delta, revision: u64) -> Model {
        let mut model = self.clone();
        let mut changed: Vec<String> = Vec::new();
        for flag in delta.upserted_flags {
            changed.push(flag.key.clone());
            model.flags.insert(flag.key.clone(), Arc::new(flag));
        }
        for key in delta.deleted_flags {
            model.flags.remove(&key);
            changed.push(key);
        }
        let mut segments: Vec<String> = Vec::new();
        for segment in delta.upserted_segments {
            segments.push(segment.key.clone());
            model.segments.insert(segment.key.clone(), Arc::new(segment));
        }
        for key in delta.deleted_segments {
            model.segments.remove(&key);
            segments.push(key);
        }
        let segment_refs: Vec<&String> = segments.iter().collect();
        changed.extend(model.flags_using(&segment_refs));
        model.mark_changed(changed, revision);
        model
    }

    fn mark_changed(&mut self, keys: Vec<String>, revision: u64) {
        for key in keys {
            match self.changed_at.get_mut(key.as_str()) {
                Some(at) => *at = revision,
                None => {
                    self.changed_at.insert(key.into(), revision);
                }
            }
        }
    }

    /// Keys of the flags with an `in_segment` clause naming one of `segments`.
    fn flags_using(&self, segments: &[&String]) -> Vec<String> {
        if segments.is_empty() {
            return Vec::new();
        }
        self.flags
            .values()
            .filter(|flag| {
                flag.rules.iter().flat_map(|rule| &rule.clauses).any(|clause| {
                    clause.op == Operator::InSegment
                        && clause.values.iter().any(|value| segments.iter().any(|s| **s == value.0))
                })
            })
            .map(|flag| flag.key.clone())
            .collect()
    }

    /// The model as a flag set (for compiling and for the cache file).
    pub(crate) fn to_set(&self) -> FlagSet {
        FlagSet {
            flags: self.flags.values().map(|flag| Flag::clone(flag)).collect(),
            segments: self.segments.values().map(|segment| Segment::clone(segment)).collect(),
        }
    }

    /// Validates and compiles the model, keeping `previous`'s layout when the keys match.
    pub(crate) fn compile(&self, previous: &Snapshot) -> Result<Snapshot, ValidationError> {
        let flags: Vec<&Flag> = self.flags.values().map(|flag| &**flag).collect();
        let segments: Vec<&Segment> = self.segments.values().map(|segment| &**segment).collect();
        Ok(compile_parts(&flags, &segments)?.keep_layout_of(previous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(flags: Vec<Flag>) -> FlagSet {
        FlagSet { flags, segments: vec![] }
    }

    #[test]
    fn apply_upserts_deletes_and_marks_the_touched_flags() {
        let base = Model::from_set(
            set(vec![Flag::rollout("a", 10.0).unwrap(), Flag::rollout("b", 10.0).unwrap()]),
            1,
            &Model::default(),
        );
        let delta = Delta {
            upserted_flags: vec![Flag::rollout("a", 50.0).unwrap()],
            deleted_flags: vec!["b".into()],
            ..Delta::default()
        };
        let next = base.apply(delta, 2);
        assert_eq!(next.flags.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(next.changed_at["a"], 2);
        assert_eq!(next.changed_at["b"], 2);
        // The original is untouched: readers of the old snapshot keep their model.
        assert_eq!(base.flags.len(), 2);
    }

    #[test]
    fn a_full_snapshot_marks_only_what_differs() {
        let first = Model::from_set(
            set(vec![Flag::rollout("a", 10.0).unwrap(), Flag::rollout("b", 10.0).unwrap()]),
            1,
            &Model::default(),
        );
        let second = Model::from_set(
            set(vec![Flag::rollout("a", 10.0).unwrap(), Flag::rollout("b", 20.0).unwrap()]),
            5,
            &first,
        );
        assert_eq!(second.changed_at["a"], 1);
        assert_eq!(second.changed_at["b"], 5);
    }

    #[test]
    fn a_segment_change_marks_the_flags_that_use_it() {
        let mut uses = Flag::rollout("uses", 0.0).unwrap();
        uses.rules = serde_json::from_value(serde_json::json!([{
            "clauses": [{ "attribute": "key", "op": "in_segment", "values": ["staff"] }],
            "serve": { "variant": "on" },
        }]))
        .unwrap();
        let staff: Segment =
            serde_json::from_value(serde_json::json!({ "key": "staff", "included": ["u1"] })).unwrap();
        let base = Model::from_set(
            FlagSet {
                flags: vec![uses, Flag::rollout("other", 0.0).unwrap()],
                segments: vec![staff.clone()],
            },
            1,
            &Model::default(),
        );
        let mut wider = staff;
        wider.included.push("u2".into());
        let next = base.apply(Delta { upserted_segments: vec![wider], ..Delta::default() }, 7);
        assert_eq!(next.changed_at["uses"], 7);
        assert_eq!(next.changed_at["other"], 1);
    }
}
