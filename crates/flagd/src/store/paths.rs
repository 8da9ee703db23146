//! Problem paths that mean something to the writer.
//!
//! Every write is validated as the whole environment's flag set after the change, so that
//! prerequisites, segment references and cycles are checked; flag-core then reports paths
//! like `flags[17].rules[0].serve` — positions in a set the caller never saw. So:
//!
//! - the written flag's (or segment's) problems come first, as `flag.rules[0].serve`
//!   (`segment.rules[0]…`): the same path the caller would get validating that flag alone;
//! - problems in other flags or segments — a prerequisite on a flag being deleted, a cycle
//!   closed through another flag — name them by key: `flags["checkout"].prerequisites[0].flag`.
//!   The key is quoted because keys may be digits (`flags["3"]` is not `flags[3]`).

use flag_core::{FlagSet, SubjectKind, ValidationError};

/// Rewrites `error`'s paths as described above; `written` is the written subject, `set` the
/// flag set that was validated.
pub(super) fn focus(
    mut error: ValidationError,
    set: &FlagSet,
    written: (SubjectKind, &str),
) -> ValidationError {
    for problem in &mut error.problems {
        problem.path = rewrite(&problem.path, set, written);
    }
    let (kind, _) = written;
    let own_prefix = kind.noun();
    let is_own = |path: &str| {
        path.strip_prefix(own_prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    // Stable: each group keeps flag-core's order, which follows the fields.
    error.problems.sort_by_key(|problem| !is_own(&problem.path));
    error
}

/// `path` with a position in `set` replaced by the key there: `flags["checkout"].rules[0]`.
pub(super) fn by_key(path: &str, set: &FlagSet) -> String {
    named(path, set, None)
}

fn rewrite(path: &str, set: &FlagSet, written: (SubjectKind, &str)) -> String {
    named(path, set, Some(written))
}

fn named(path: &str, set: &FlagSet, written: Option<(SubjectKind, &str)>) -> String {
    let (list, keys): (&str, Vec<&str>) = if path.starts_with("flags[") {
        ("flags", set.flags.iter().map(|f| f.key.as_str()).collect())
    } else if path.starts_with("segments[") {
        ("segments", set.segments.iter().map(|s| s.key.as_str()).collect())
    } else {
        return path.to_owned();
    };
    let after_list = &path[list.len() + 1..];
    let Some((index, rest)) = after_list.split_once(']') else {
        return path.to_owned();
    };
    let Some(&subject) = index.parse::<usize>().ok().and_then(|i| keys.get(i)) else {
        return path.to_owned();
    };
    match written {
        Some((kind, key)) if list == list_of(kind) && subject == key => format!("{}{rest}", kind.noun()),
        _ => format!("{list}[{subject:?}]{rest}"),
    }
}

fn list_of(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Flag => "flags",
        SubjectKind::Segment => "segments",
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Flag, Segment};

    use super::*;

    fn problems(error: &ValidationError) -> Vec<&str> {
        error.problems.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn the_written_flag_comes_first_as_flag_and_others_are_named_by_key() {
        let mut broken = Flag::rollout("b-broken", 5.0).unwrap();
        broken.off_variant = Some("nope".into());
        let mut dependent = Flag::rollout("a-dependent", 5.0).unwrap();
        dependent.prerequisites.push(flag_core::Prerequisite { flag: "gone".into(), variant: "on".into() });
        let set = FlagSet { flags: vec![dependent, broken], segments: vec![] };
        let error = set.validate().unwrap_err();
        assert_eq!(problems(&error), ["flags[0].prerequisites[0].flag", "flags[1].off_variant"]);

        let focused = focus(error, &set, (SubjectKind::Flag, "b-broken"));
        assert_eq!(problems(&focused), ["flag.off_variant", "flags[\"a-dependent\"].prerequisites[0].flag"]);
    }

    #[test]
    fn segments_are_focused_too_and_other_paths_are_left_alone() {
        let set = FlagSet {
            flags: vec![Flag::rollout("7", 1.0).unwrap()],
            segments: vec![Segment {
                key: "beta".into(),
                description: String::new(),
                included: vec![],
                excluded: vec![],
                rules: vec![],
            }],
        };
        assert_eq!(rewrite("segments[0].rules[1]", &set, (SubjectKind::Segment, "beta")), "segment.rules[1]");
        assert_eq!(rewrite("segments[0]", &set, (SubjectKind::Flag, "beta")), "segments[\"beta\"]");
        assert_eq!(rewrite("flags[0].key", &set, (SubjectKind::Segment, "beta")), "flags[\"7\"].key");
        assert_eq!(rewrite("flags[9].key", &set, (SubjectKind::Flag, "7")), "flags[9].key");
        assert_eq!(rewrite("flags", &set, (SubjectKind::Flag, "7")), "flags");
    }
}
