//! What differs between two flag sets, flag by flag and segment by segment, field by field.
//!
//! Two environments (or one at two points in time) are compared by content: what the store
//! stamps itself — a flag's `version` and its `metadata.created_at/updated_at` — differs
//! between any two environments and says nothing about what users get, so it is left out.
//! A changed subject lists each differing field by its path in the flag-file format
//! (`rules[0].clauses[1].values`), the same paths validation errors use, with the value on
//! each side as JSON.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::Value as Json;

use crate::model::{Flag, FlagSet, Metadata, Segment};

/// The differences from one flag set to another.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetDiff {
    /// Flags that differ, sorted by key.
    pub flags: Vec<SubjectDiff>,
    /// Segments that differ, sorted by key.
    pub segments: Vec<SubjectDiff>,
    /// Flags on both sides with the same content.
    pub unchanged_flags: usize,
    /// Segments on both sides with the same content.
    pub unchanged_segments: usize,
}

impl SetDiff {
    /// Whether both sides have the same content.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty() && self.segments.is_empty()
    }
}

/// How one flag or segment differs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SubjectDiff {
    /// Only the `to` side has it.
    Added {
        /// Its key.
        key: String,
    },
    /// Only the `from` side has it.
    Removed {
        /// Its key.
        key: String,
    },
    /// Both sides have it, with different content.
    Changed {
        /// Its key.
        key: String,
        /// Each field that differs, fields of an object by name, list items by position.
        fields: Vec<FieldChange>,
    },
}

impl SubjectDiff {
    /// The flag's or segment's key.
    pub fn key(&self) -> &str {
        match self {
            SubjectDiff::Added { key } | SubjectDiff::Removed { key } | SubjectDiff::Changed { key, .. } => {
                key
            }
        }
    }
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// Its path in the flag-file format: `enabled`, `rules[0].clauses[1].values`.
    pub path: String,
    /// Its value on the `from` side; `None` where only the `to` side has the field.
    pub from: Option<Json>,
    /// Its value on the `to` side; `None` where only the `from` side has the field.
    pub to: Option<Json>,
}

/// What differs from `from` to `to`; with `keys` non-empty, only those flags and segments.
pub fn diff(from: &FlagSet, to: &FlagSet, keys: &[&str]) -> SetDiff {
    let wanted = |key: &str| keys.is_empty() || keys.contains(&key);
    let (flags, unchanged_flags) =
        diff_lists(&from.flags, &to.flags, &wanted, |f| &f.key, same_flag, flag_json);
    let (segments, unchanged_segments) =
        diff_lists(&from.segments, &to.segments, &wanted, |s| &s.key, |a, b| a == b, segment_json);
    SetDiff { flags, segments, unchanged_flags, unchanged_segments }
}

fn diff_lists<T>(
    from: &[T],
    to: &[T],
    wanted: &dyn Fn(&str) -> bool,
    key_of: impl Fn(&T) -> &String,
    same: impl Fn(&T, &T) -> bool,
    json: impl Fn(&T) -> Json,
) -> (Vec<SubjectDiff>, usize) {
    let (from, to) = (sorted(from, wanted, &key_of), sorted(to, wanted, &key_of));
    let (mut diffs, mut unchanged) = (Vec::new(), 0);
    let (mut i, mut j) = (0, 0);
    while i < from.len() || j < to.len() {
        let order = match (from.get(i), to.get(j)) {
            (Some(a), Some(b)) => key_of(a).cmp(key_of(b)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                diffs.push(SubjectDiff::Removed { key: key_of(from[i]).clone() });
                i += 1;
            }
            Ordering::Greater => {
                diffs.push(SubjectDiff::Added { key: key_of(to[j]).clone() });
                j += 1;
            }
            Ordering::Equal => {
                let (a, b) = (from[i], to[j]);
                if same(a, b) {
                    unchanged += 1;
                } else {
                    let mut fields = Vec::new();
                    compare(String::new(), Some(&json(a)), Some(&json(b)), &mut fields);
                    diffs.push(SubjectDiff::Changed { key: key_of(a).clone(), fields });
                }
                i += 1;
                j += 1;
            }
        }
    }
    (diffs, unchanged)
}

/// The wanted items of `list`, sorted by key.
fn sorted<'l, T>(
    list: &'l [T],
    wanted: &dyn Fn(&str) -> bool,
    key_of: &impl Fn(&T) -> &String,
) -> Vec<&'l T> {
    let mut list: Vec<&T> = list.iter().filter(|item| wanted(key_of(item))).collect();
    list.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    list
}

/// Equal apart from what the store stamps. Every field is named, so a new one must be
/// placed on one side or the other.
fn same_flag(a: &Flag, b: &Flag) -> bool {
    let Flag {
        key,
        description,
        variants,
        enabled,
        off_variant,
        rules,
        default,
        prerequisites,
        version: _,
        metadata,
    } = a;
    let Metadata { owner, tags, kind, created_at: _, updated_at: _ } = metadata;
    *key == b.key
        && *description == b.description
        && *variants == b.variants
        && *enabled == b.enabled
        && *off_variant == b.off_variant
        && *rules == b.rules
        && *default == b.default
        && *prerequisites == b.prerequisites
        && *owner == b.metadata.owner
        && *tags == b.metadata.tags
        && *kind == b.metadata.kind
}

/// The flag as its file would show it, without what the store stamps.
fn flag_json(flag: &Flag) -> Json {
    let mut flag = flag.clone();
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    to_json(&flag)
}

fn segment_json(segment: &Segment) -> Json {
    to_json(segment)
}

fn to_json(value: &impl Serialize) -> Json {
    // Model types are plain data with string keys: serializing them to a `Value` cannot fail.
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// Appends every leaf that differs between `from` and `to` under `path`.
fn compare(path: String, from: Option<&Json>, to: Option<&Json>, out: &mut Vec<FieldChange>) {
    match (from, to) {
        (Some(Json::Object(a)), Some(Json::Object(b))) => {
            // Sorted here rather than in map order, which a serde_json feature can change.
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                compare(path, a.get(name), b.get(name), out);
            }
        }
        (Some(Json::Array(a)), Some(Json::Array(b))) => {
            for index in 0..a.len().max(b.len()) {
                compare(format!("{path}[{index}]"), a.get(index), b.get(index), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldChange { path, from: a.cloned(), to: b.cloned() }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Bucketing, Serve};

    fn flag(value: Json) -> Flag {
        serde_json::from_value(value).unwrap()
    }

    fn chat(percent_on: u32) -> Flag {
        flag(json!({
            "key": "chat",
            "variants": [{ "name": "on", "value": true }, { "name": "off", "value": false }],
            "off_variant": "off",
            "rules": [{
                "clauses": [{ "attribute": "country", "op": "in", "values": ["NZ", "AU"] }],
                "serve": { "variant": "on" },
            }],
            "default": { "split": { "weights": [
                { "variant": "on", "weight": percent_on * 1000 },
                { "variant": "off", "weight": 100_000 - percent_on * 1000 },
            ] } },
        }))
    }

    fn set(flags: Vec<Flag>) -> FlagSet {
        FlagSet { flags, segments: vec![] }
    }

    #[test]
    fn store_stamps_are_not_differences() {
        let mut stored = chat(5);
        stored.version = 7;
        stored.metadata.created_at = Some("2026-11-01T10:00:00.000Z".into());
        stored.metadata.updated_at = Some("2026-12-01T10:00:00.000Z".into());
        let diff = diff(&set(vec![chat(5)]), &set(vec![stored]), &[]);
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(diff.unchanged_flags, 1);
    }

    #[test]
    fn changed_fields_are_named_by_path_with_both_values() {
        let mut to = chat(25);
        to.enabled = false;
        to.rules[0].clauses[0].values.pop();
        let diff = diff(&set(vec![chat(5)]), &set(vec![to]), &[]);
        let [SubjectDiff::Changed { key, fields }] = diff.flags.as_slice() else { panic!("{diff:?}") };
        assert_eq!(key, "chat");
        let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "default.split.weights[0].weight",
                "default.split.weights[1].weight",
                "enabled",
                "rules[0].clauses[0].values[1]"
            ]
        );
        assert_eq!((&fields[0].from, &fields[0].to), (&Some(json!(5000)), &Some(json!(25000))));
        assert_eq!((&fields[2].from, &fields[2].to), (&Some(json!(true)), &Some(json!(false))));
        assert_eq!((&fields[3].from, &fields[3].to), (&Some(json!("AU")), &None));
    }

    #[test]
    fn subjects_on_one_side_only_and_a_key_filter() {
        let mut other = chat(5);
        other.key = "search".into();
        let from = set(vec![chat(5), other.clone()]);
        let mut beta = chat(5);
        beta.key = "beta".into();
        let to = set(vec![beta, chat(50)]);
        let all = diff(&from, &to, &[]);
        let shape: Vec<(&str, &str)> = all
            .flags
            .iter()
            .map(|d| match d {
                SubjectDiff::Added { key } => ("added", key.as_str()),
                SubjectDiff::Removed { key } => ("removed", key.as_str()),
                SubjectDiff::Changed { key, .. } => ("changed", key.as_str()),
            })
            .collect();
        assert_eq!(shape, [("added", "beta"), ("changed", "chat"), ("removed", "search")]);
        let only = diff(&from, &to, &["search"]);
        assert_eq!(only.flags, [SubjectDiff::Removed { key: "search".into() }]);
        assert_eq!(only.unchanged_flags, 0);
    }

    #[test]
    fn bucketing_the_caller_s_default_and_a_dropped_off_variant_are_differences() {
        let mut to = chat(5);
        to.off_variant = None;
        to.rules[0].serve = Serve::CallerDefault;
        let Serve::Split(split) = &mut to.default else { panic!("chat splits") };
        split.bucketing = Bucketing::FlagdV3;
        let diff = diff(&set(vec![chat(5)]), &set(vec![to]), &[]);
        let [SubjectDiff::Changed { fields, .. }] = diff.flags.as_slice() else { panic!("{diff:?}") };
        let changes: Vec<(&str, &Option<Json>, &Option<Json>)> =
            fields.iter().map(|f| (f.path.as_str(), &f.from, &f.to)).collect();
        assert_eq!(
            changes,
            [
                ("default.split.bucketing", &None, &Some(json!("flagd-v3"))),
                ("off_variant", &Some(json!("off")), &None),
                ("rules[0].serve.caller_default", &None, &Some(json!(true))),
                ("rules[0].serve.variant", &Some(json!("on")), &None),
            ]
        );
    }

    #[test]
    fn segments_are_compared_too() {
        let segment = |included: &[&str]| Segment {
            key: "beta-testers".into(),
            description: String::new(),
            included: included.iter().map(|s| (*s).to_owned()).collect(),
            excluded: vec![],
            rules: vec![],
        };
        let from = FlagSet { flags: vec![], segments: vec![segment(&["ana"])] };
        let to = FlagSet { flags: vec![], segments: vec![segment(&["ana", "ben"])] };
        let diff = diff(&from, &to, &[]);
        let [SubjectDiff::Changed { fields, .. }] = diff.segments.as_slice() else { panic!("{diff:?}") };
        assert_eq!(fields[0].path, "included[1]");
        assert_eq!(fields[0].to, Some(json!("ben")));
    }
}
