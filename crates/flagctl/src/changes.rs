//! Planned or committed changes of an apply, a restore or a promote, as a person reads them
//! (a line per subject, a diff of each update) and as `--json` gives them.

use flag_core::{AppliedChange, Operation, Subject};
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use crate::render::as_in_file;

/// One subject's change.
#[derive(Debug, Serialize)]
pub(crate) struct Planned {
    pub(crate) kind: &'static str,
    pub(crate) key: String,
    pub(crate) operation: &'static str,
    pub(crate) version: u64,
    /// The content before and after, as the file format has it (`null` when absent).
    pub(crate) before: serde_json::Value,
    pub(crate) after: serde_json::Value,
    #[serde(skip)]
    pub(crate) diff: String,
}

pub(crate) fn planned(change: AppliedChange) -> Planned {
    let AppliedChange { kind, key, operation, version, before, after } = change;
    let operation = match operation {
        Operation::Create => "create",
        Operation::Delete => "delete",
        _ => "update",
    };
    let json = |subject: Option<Subject>| match subject {
        Some(Subject::Flag(flag)) => to_json(&as_in_file(flag)),
        Some(Subject::Segment(segment)) => to_json(&segment),
        None => serde_json::Value::Null,
    };
    let (before, after) = (json(before), json(after));
    let diff = diff(&yaml(&before), &yaml(&after));
    Planned {
        kind: if kind == flag_core::SubjectKind::Segment { "segment" } else { "flag" },
        key,
        operation,
        version,
        before,
        after,
        diff,
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

fn yaml(value: &serde_json::Value) -> String {
    if value.is_null() { String::new() } else { serde_yaml_ng::to_string(value).unwrap_or_default() }
}

/// The changed lines with two lines of context around each, `-` before and `+` after.
fn diff(before: &str, after: &str) -> String {
    let diff = TextDiff::from_lines(before, after);
    let mut lines = Vec::new();
    for (index, group) in diff.grouped_ops(2).iter().enumerate() {
        if index > 0 {
            lines.push("      …".to_owned());
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                lines.push(format!("      {sign} {}", change.value().trim_end()));
            }
        }
    }
    lines.join("\n")
}

/// A line per change, each update followed by its diff.
pub(crate) fn lines(changes: &[Planned]) -> Vec<String> {
    let mut lines = Vec::new();
    for change in changes {
        let sign = match change.operation {
            "create" => '+',
            "delete" => '-',
            _ => '~',
        };
        lines.push(format!("  {sign} {} {} ({})", change.kind, change.key, change.operation));
        if change.operation == "update" && !change.diff.is_empty() {
            lines.push(change.diff.clone());
        }
    }
    lines
}

/// The line for a killed flag that a change left killed.
pub(crate) fn kept_killed(key: &str) -> String {
    format!("  ! flag {key} is killed and stays killed: `flagctl revive {key}` switches it back on")
}
