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
    /// OpenFeature providers' streams, which cannot acknowledge: how many there were, and
    /// how many were sent the kill.
    open_feature_streams: u32,
    open_feature_sent: u32,
}

impl Killed {
    /// `killed chat (revision 42): 37/37 SDKs acknowledged, slowest 3 ms; 12 OpenFeature
    /// streams sent the change`.
    fn line(&self, waited: bool) -> String {
        let Killed {
            written,
            already_killed,
            since,
            connected,
            acknowledged,
            slowest_ms,
            missing,
            open_feature_streams,
            open_feature_sent,
        } = self;
        let head = if *already_killed {
            format!("{} was already killed ({since}); nothing written", written.key)
        } else {
            format!("killed {} (revision {})", written.key, written.revision)
        };
        if !waited {
            return format!("{head}: not waiting for acknowledgements ({connected} SDKs connected)");
        }
        let mut line = if *connected == 0 {
            format!("{head}: no SDKs connected")
        } else {
            format!("{head}: {acknowledged}/{connected} SDKs acknowledged")
        };
        if *acknowledged > 0 {
            line.push_str(&format!(", slowest {slowest_ms} ms"));
        }
        match (*open_feature_streams, *open_feature_sent) {
            (0, _) => {}
            (streams, sent) if sent == streams => {
                line.push_str(&format!("; {streams} OpenFeature streams sent the change"))
            }
            (streams, sent) => {
                line.push_str(&format!("; {sent} of {streams} OpenFeature streams sent the change"))
            }
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
    let AckReport {
        revision: _,
        connected,
        acknowledged,
        slowest,
        missing,
        open_feature_streams,
        open_feature_sent,
    } = acks;
    let slowest_ms = u32::try_from(slowest.as_millis()).unwrap_or(u32::MAX);
    let since = since(&written.entry);
    let written = WriteReport::of(&written);
    let killed = Killed {
        written,
        already_killed,
        since,
        connected,
        acknowledged,
        slowest_ms,
        missing,
        open_feature_streams,
        open_feature_sent,
    };
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
