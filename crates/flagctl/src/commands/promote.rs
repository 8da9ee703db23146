//! Promote: chosen flags of one environment made so in another.

use anyhow::Context as _;
use flag_proto::{ApplyOutcome, Authorship, PromoteAsk, PromoteOutcome};
use serde::Serialize;

use crate::changes::{self, Planned};
use crate::cli::PromoteArgs;
use crate::connect::{Server, Wrote};
use crate::output::Output;
use crate::reads::MALFORMED;

#[derive(Debug, Serialize)]
struct Promoted {
    from: String,
    to: String,
    dry_run: bool,
    /// The source's revision the promote read.
    from_revision: u64,
    /// The target's revision afterwards (before, on a dry run).
    revision: u64,
    changes: Vec<Planned>,
    /// Segments brought along because promoted flags name them.
    segments: Vec<String>,
    /// Promoted flags whose kill state differs: the target's was kept.
    kill_state_kept: Vec<String>,
}

pub(crate) async fn promote(
    server: &Server,
    out: &Output,
    args: PromoteArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let PromoteArgs { keys, all, from, to, only, except, dry_run, expect_revision, change: _ } = args;
    let ask = PromoteAsk { from, to, keys, all, except, only, dry_run, expected_revision: expect_revision };
    let target = server.in_environment(&ask.to);
    let request = flag_proto::promote_request(&ask, change);
    let response = target
        .admin
        .clone()
        .promote(target.request(request))
        .await
        .wrote(&target, &format!("promoting from {} to {}", ask.from, ask.to))
        .await?;
    let PromoteOutcome { from_revision, applied, segments, kill_state_kept } =
        PromoteOutcome::try_from(response).context(MALFORMED)?;
    let ApplyOutcome { revision, changes, kept_killed: _ } = applied;
    let promoted = Promoted {
        from: ask.from,
        to: ask.to,
        dry_run,
        from_revision,
        revision,
        changes: changes.into_iter().map(changes::planned).collect(),
        segments,
        kill_state_kept,
    };
    out.print(&promoted, || summary(&promoted))
}

fn summary(promoted: &Promoted) -> String {
    let Promoted { from, to, dry_run, from_revision, revision, changes, segments, kill_state_kept } =
        promoted;
    let mut lines = changes::lines(changes);
    if !segments.is_empty() {
        lines.push(format!("  segments the promoted flags need came along: {}", segments.join(", ")));
    }
    lines.extend(kill_state_kept.iter().map(|key| {
        format!("  ! flag {key}: its kill state differs; {to}'s is kept (a promote never kills or revives)")
    }));
    let count = changes.len();
    let noun = if count == 1 { "change" } else { "changes" };
    let source = format!("{from}@r{from_revision}");
    lines.push(match (*dry_run, count) {
        (_, 0) => format!("{to} already has what {source} has for these flags: nothing to change"),
        (true, _) => format!(
            "dry run: {count} {noun} from {source} planned for {to} at revision {revision}; nothing written\n\
             (`--expect-revision {revision}` promotes exactly this plan, or nothing)"
        ),
        (false, _) => format!("promoted {count} {noun} from {source} to {to} (revision {revision})"),
    });
    lines.join("\n")
}
