//! The kill switch: one write, then the connected SDKs' acknowledgements.

use anyhow::Context as _;
use flag_core::{AckReport, HistoryEntry};
use flag_proto::{Authorship, Killed as Answer};
use serde::Serialize;

use crate::cli::KillArgs;
use crate::connect::{Server, Wrote};
use crate::failure::Failure;
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::render::{self, WriteReport};

#[derive(Debug, Serialize)]
struct Killed {
    #[serde(flatten)]
    written: WriteReport,
    /// It was killed before: nothing was written, and `written` is the kill in force.
    already_killed: bool,
    /// Who killed it and when, for an `already_killed` answer.
    #[serde(skip)]
    since: String,
    connected: u32,
    acknowledged: u32,
    slowest_ms: u32,
    missing: Vec<String>,
}

impl Killed {
    /// `killed chat (revision 42): 37/37 SDKs acknowledged, slowest 3 ms`.
    fn line(&self, waited: bool) -> String {
        let Killed { written, already_killed, since, connected, acknowledged, slowest_ms, missing } = self;
        let head = if *already_killed {
            format!("{} was already killed ({since}); nothing written", written.key)
        } else {
            format!("killed {} (revision {})", written.key, written.revision)
        };
        if !waited {
            return format!("{head}: not waiting for acknowledgements ({connected} SDKs connected)");
        }
        if *connected == 0 {
            return format!("{head}: no SDKs connected");
        }
        let mut line = format!("{head}: {acknowledged}/{connected} SDKs acknowledged");
        if *acknowledged > 0 {
            line.push_str(&format!(", slowest {slowest_ms} ms"));
        }
        if !missing.is_empty() {
            line.push_str(&format!("\n  not acknowledged: {}", missing.join(", ")));
        }
        line
    }
}

pub(crate) async fn kill(
    server: &Server,
    out: &Output,
    args: KillArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let KillArgs { key, wait, change: _ } = args;
    let request = server.requests().kill(&key, wait, change);
    let response = server
        .admin
        .clone()
        .kill(server.request_waiting(request, wait))
        .await
        .wrote(server, &format!("killing {key}"))
        .await?;
    let Answer { written, acks, already_killed } = Answer::try_from(response).context(MALFORMED)?;
    let AckReport { revision: _, connected, acknowledged, slowest, missing } = acks;
    let slowest_ms = u32::try_from(slowest.as_millis()).unwrap_or(u32::MAX);
    let since = since(&written.entry);
    let written = WriteReport::of(&written);
    let killed = Killed { written, already_killed, since, connected, acknowledged, slowest_ms, missing };
    out.print(&killed, || killed.line(!wait.is_zero()))?;
    if !wait.is_zero() && acknowledged < connected {
        let waited = humantime::format_duration(wait);
        return Err(Failure::Unacknowledged(format!(
            "the kill of {key} is committed, but {} of {connected} SDKs did not acknowledge it within {waited}",
            connected - acknowledged
        ))
        .into());
    }
    Ok(())
}

/// `since version 3, revision 3, by ana 2 min ago: "incident 4711"`.
fn since(entry: &HistoryEntry) -> String {
    let reason = if entry.reason.is_empty() { String::new() } else { format!(": {:?}", entry.reason) };
    format!(
        "since version {}, revision {}, by {} {}{reason}",
        entry.version,
        entry.revision,
        render::by(&entry.actor, entry.on_behalf_of.as_deref()),
        render::ago(entry.timestamp_ms)
    )
}
