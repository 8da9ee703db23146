//! Restore: an environment put back to how it was at an earlier revision or time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use flag_proto::{ApplyOutcome, Authorship, Point, RestoreOutcome, RestorePlan};
use serde::Serialize;

use crate::changes::{self, Planned};
use crate::cli::RestoreArgs;
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
use crate::output::Output;
use crate::reads::MALFORMED;

#[derive(Debug, Serialize)]
struct Restored {
    environment: String,
    dry_run: bool,
    /// The revision whose state was brought back, and when it was committed.
    restored_revision: u64,
    restored_at: Option<String>,
    /// The environment's revision afterwards (before, on a dry run).
    revision: u64,
    changes: Vec<Planned>,
    /// Flags the restore would have switched back on and left killed.
    kept_killed: Vec<String>,
}

pub(crate) async fn restore(
    server: &Server,
    out: &Output,
    args: RestoreArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let RestoreArgs {
        environment,
        to_revision,
        at,
        ago,
        to,
        dry_run,
        expect_revision,
        allow_revive,
        change: _,
    } = args;
    let point = match (to_revision, at, ago, to) {
        (Some(revision), ..) => Point::Revision(revision),
        (None, Some(at), ..) => Point::At(unix_ms(at, "--at")?),
        (None, None, Some(ago), _) => {
            let at = SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH);
            Point::At(unix_ms(at, "--ago")?)
        }
        (None, None, None, Some(bookmark)) => Point::Bookmark(bookmark),
        (None, None, None, None) => {
            return Err(Failure::Invalid("give --to-revision, --at, --ago or --to".into()).into());
        }
    };
    let server = server.in_environment(&environment);
    let plan = RestorePlan { allow_revive, dry_run, expected_revision: expect_revision };
    let request = server.requests().point_in_time_restore(point, plan, change);
    let response = server
        .admin
        .clone()
        .point_in_time_restore(server.request(request))
        .await
        .wrote(&server, &format!("restoring {environment}"))
        .await?;
    let RestoreOutcome { restored_revision, restored_at_ms, applied } =
        RestoreOutcome::try_from(response).context(MALFORMED)?;
    let ApplyOutcome { revision, changes, kept_killed } = applied;
    let restored = Restored {
        environment,
        dry_run,
        restored_revision,
        restored_at: restored_at_ms.map(time_text),
        revision,
        changes: changes.into_iter().map(changes::planned).collect(),
        kept_killed,
    };
    out.print(&restored, || summary(&restored))
}

fn unix_ms(at: SystemTime, option: &str) -> Result<i64, Failure> {
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Failure::Invalid(format!("{option}: expected a time after 1970")))?;
    i64::try_from(since.as_millis())
        .map_err(|_| Failure::Invalid(format!("{option}: expected a time before 292 million AD")))
}

fn time_text(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn summary(restored: &Restored) -> String {
    let Restored { environment, dry_run, restored_revision, restored_at, revision, changes, kept_killed } =
        restored;
    let point = match restored_at {
        Some(at) => format!("r{restored_revision} ({at})"),
        None => format!("r{restored_revision} (before its first change)"),
    };
    let mut lines = changes::lines(changes);
    lines.extend(kept_killed.iter().map(|key| {
        format!(
            "  ! flag {key} was live at {point} but is killed now, and stays killed: \
             --allow-revive switches it back on with the rest"
        )
    }));
    let count = changes.len();
    let noun = if count == 1 { "change" } else { "changes" };
    lines.push(match (*dry_run, count) {
        (_, 0) => format!("{environment} already is as it was at {point}: nothing to change"),
        (true, _) => format!(
            "dry run: {count} {noun} would put {environment} back to {point}; nothing written\n\
             (`--expect-revision {revision}` restores exactly this plan, or nothing)"
        ),
        (false, _) => format!("restored {environment} to {point}: {count} {noun} (revision {revision})"),
    });
    lines.join("\n")
}
