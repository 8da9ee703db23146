//! Apply: make the environment match a flag file, showing what changes.

use anyhow::Context as _;
use flag_core::FlagSet;
use flag_proto::{ApplyOutcome, ApplyPlan, Authorship};
use serde::Serialize;

use crate::changes;
use crate::cli::ApplyArgs;
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
use crate::flag_file::{FlagFile, server_path};
use crate::output::Output;
use crate::reads::{self, MALFORMED};

#[derive(Debug, Serialize)]
struct Applied {
    dry_run: bool,
    revision: u64,
    changes: Vec<changes::Planned>,
    kept_killed: Vec<String>,
    /// Parts of a flagd file not applied (`--skip-invalid`), as `path: why`.
    skipped: Vec<String>,
}

pub(crate) async fn apply(
    server: &Server,
    out: &Output,
    args: ApplyArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let ApplyArgs { file, dry_run, prune, expect_revision, format, skip_invalid, change: _ } = args;
    let file = FlagFile::load(&file, format, skip_invalid)?;
    if prune && !file.skipped.is_empty() {
        // Pruning would delete the skipped flags from the environment.
        return Err(Failure::Invalid(format!(
            "--prune with --skip-invalid would delete the {} skipped part(s) of {}; apply without --prune",
            file.skipped.len(),
            file.name
        ))
        .into());
    }
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
    let applied = Applied {
        dry_run,
        revision,
        changes: changes.into_iter().map(changes::planned).collect(),
        kept_killed,
        skipped: file.skipped.clone(),
    };
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

fn summary(applied: &Applied, file: &str, environment: &str) -> String {
    let skipped = applied.skipped.iter().map(|s| format!("skipped (no exact translation) {s}"));
    let kept_killed: Vec<String> =
        applied.kept_killed.iter().map(|key| changes::kept_killed(key)).chain(skipped).collect();
    if applied.changes.is_empty() {
        let revision = applied.revision;
        let mut lines =
            vec![format!("{environment} already matches {file} (revision {revision}): nothing to change")];
        lines.extend(kept_killed);
        return lines.join("\n");
    }
    let mut lines = changes::lines(&applied.changes);
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
