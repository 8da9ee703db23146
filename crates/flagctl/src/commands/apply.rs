//! Apply: make the environment match a flag file, showing what changes.

use anyhow::Context as _;
use flag_core::{AppliedChange, FlagSet, Operation, Subject};
use flag_proto::{ApplyOutcome, ApplyPlan, Authorship};
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use crate::cli::ApplyArgs;
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
use crate::flag_file::FlagFile;
use crate::output::Output;
use crate::reads::{self, MALFORMED};
use crate::render::as_in_file;

#[derive(Debug, Serialize)]
struct Planned {
    kind: &'static str,
    key: String,
    operation: &'static str,
    version: u64,
    /// The content before and after, as the file format has it (`null` when absent).
    before: serde_json::Value,
    after: serde_json::Value,
    #[serde(skip)]
    diff: String,
}

#[derive(Debug, Serialize)]
struct Applied {
    dry_run: bool,
    revision: u64,
    changes: Vec<Planned>,
    kept_killed: Vec<String>,
}

pub(crate) async fn apply(
    server: &Server,
    out: &Output,
    args: ApplyArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let ApplyArgs { file, dry_run, prune, expect_revision } = args;
    let file = FlagFile::load(&file)?;
    let (revision, live) = reads::environment(server).await?;
    if let Some(expected) = expect_revision.filter(|expected| *expected != revision) {
        return Err(Failure::Conflict(format!(
            "{} is at revision {revision}, not the expected {expected}; review the plan again (--dry-run)",
            server.environment
        ))
        .into());
    }
    check_locally(&file, &live, prune)?;

    // The plan shown is the plan committed: refused if anything changed since the read.
    let plan = ApplyPlan { prune, dry_run, expected_revision: Some(revision) };
    let request = server.requests().apply(&file.set, plan, change);
    let response = server
        .admin
        .clone()
        .apply(server.request(request))
        .await
        .wrote(server, &format!("applying {}", file.name))
        .await?;
    let ApplyOutcome { revision, changes, kept_killed } =
        ApplyOutcome::try_from(response).context(MALFORMED)?;
    let applied =
        Applied { dry_run, revision, changes: changes.into_iter().map(planned).collect(), kept_killed };
    out.print(&applied, || summary(&applied, &file.name, &server.environment))
}

/// The server validates too; checking here first gives file lines. Without `prune`, the file
/// is checked together with what the server holds, as the result will be.
fn check_locally(file: &FlagFile, live: &FlagSet, prune: bool) -> Result<(), Failure> {
    let mut merged = file.set.clone();
    if !prune {
        let in_file_flag = |key: &str| file.set.flags.iter().any(|f| f.key == key);
        let in_file_segment = |key: &str| file.set.segments.iter().any(|s| s.key == key);
        merged.flags.extend(live.flags.iter().filter(|f| !in_file_flag(&f.key)).cloned());
        merged.segments.extend(live.segments.iter().filter(|s| !in_file_segment(&s.key)).cloned());
    }
    match merged.validate() {
        Ok(()) => Ok(()),
        Err(error) => Err(file.describe(&error, |path| server_path(path, &merged))),
    }
}

/// `flags[7].x` in the merged set → `flags["checkout"].x (on the server)`.
fn server_path(path: &str, merged: &FlagSet) -> String {
    let key_at = |list: &str, keys: Vec<&str>| -> Option<String> {
        let rest = path.strip_prefix(list)?.strip_prefix('[')?;
        let (index, tail) = rest.split_once(']')?;
        let key = keys.get(index.parse::<usize>().ok()?)?;
        Some(format!("{list}[{key:?}]{tail} (on the server)"))
    };
    key_at("flags", merged.flags.iter().map(|f| f.key.as_str()).collect())
        .or_else(|| key_at("segments", merged.segments.iter().map(|s| s.key.as_str()).collect()))
        .unwrap_or_else(|| path.to_owned())
}

fn planned(change: AppliedChange) -> Planned {
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

fn summary(applied: &Applied, file: &str, environment: &str) -> String {
    let kept_killed = applied.kept_killed.iter().map(|key| {
        format!("  ! flag {key} is killed and stays killed: `flagctl revive {key}` switches it back on")
    });
    if applied.changes.is_empty() {
        let revision = applied.revision;
        let mut lines =
            vec![format!("{environment} already matches {file} (revision {revision}): nothing to change")];
        lines.extend(kept_killed);
        return lines.join("\n");
    }
    let mut lines = Vec::new();
    for change in &applied.changes {
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
    lines.extend(kept_killed);
    let count = applied.changes.len();
    let noun = if count == 1 { "change" } else { "changes" };
    lines.push(if applied.dry_run {
        let revision = applied.revision;
        format!(
            "dry run: {count} {noun} planned for {environment} at revision {revision}; nothing written\n\
             (`--expect-revision {revision}` applies exactly this plan, or nothing)"
        )
    } else {
        format!("applied {count} {noun} to {environment} (revision {})", applied.revision)
    });
    lines.join("\n")
}
