//! Watch: follow the environment's change stream and print each change as it commits.
//!
//! The stream says *what* changed; the history says who and why. So each frame is followed
//! by a read of the log entries it covers. The watch subscribes as an observer, so kill
//! reports do not count it as an SDK (nor wait for a terminal piped into a paused pager).
//! When the stream breaks (flagd restarts, the network blips), the watch reconnects and
//! resumes from the last revision it printed, so nothing is skipped or printed twice: to the
//! next address of `--server` at once when there are several (replicas of one store), with
//! backoff once every address has failed in turn.

use std::time::Duration;

use flag_proto::{Subscription, SyncFrame, ack_request, subscribe_request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::connect::Server;
use crate::failure::Failure;
use crate::output::{Output, line};
use crate::reads::log_page;
use crate::render::Entry;

/// Most log entries read per frame; more are summarised.
const MAX_ENTRIES: u64 = 1000;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(crate) async fn watch(server: &Server, out: &Output) -> anyhow::Result<()> {
    let mut revision = current_revision(server).await?;
    if !out.json {
        line(&format!("watching {} from revision {revision} (Ctrl-C to stop)", server.environment))?;
    }
    let mut server = server.clone();
    let mut backoff = Duration::from_millis(500);
    // Addresses that failed since one last sent a frame, or since the last pause.
    let mut failed_in_round = 0;
    loop {
        let mut followed = false;
        let result = follow(&server, out, &mut revision, &mut followed).await;
        // A restart or a network blip during an incident: resume from the last revision
        // printed rather than leave the operator with a dead terminal.
        match result {
            Err(error) if matches!(error.downcast_ref::<Failure>(), Some(Failure::Unreachable { .. })) => {
                if followed {
                    backoff = Duration::from_millis(500);
                    failed_in_round = 0;
                }
                failed_in_round += 1;
                let next = server.next();
                if failed_in_round < server.addresses() {
                    // Another replica of the same store: no reason to wait.
                    eprintln!("flagctl: {error:#}; trying {}", next.address);
                } else {
                    failed_in_round = 0;
                    let pause = humantime::format_duration(backoff);
                    eprintln!("flagctl: {error:#}; reconnecting to {} in {pause}", next.address);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                server = next;
            }
            other => return other,
        }
    }
}

/// Follows one stream from `revision`, printing what each frame covers; `followed` turns true
/// once a frame arrived.
async fn follow(
    server: &Server,
    out: &Output,
    revision: &mut u64,
    followed: &mut bool,
) -> anyhow::Result<()> {
    let (requests, outgoing) = mpsc::channel(16);
    let subscribe = subscribe_request(Subscription {
        environment: server.environment.clone(),
        since_revision: *revision,
        client_name: "flagctl watch".into(),
        store_id: String::new(),
        // Not an SDK: a kill should not wait for an operator's terminal.
        observer: true,
        relay: false,
    });
    // The channel is empty and open: this send cannot fail.
    let _ = requests.send(subscribe).await;
    let mut frames = match server.sync().watch(ReceiverStream::new(outgoing)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(lost(server, status)),
    };
    loop {
        let frame = match frames.message().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(stream_ended(server, "the server closed the stream")),
            Err(status) => return Err(lost(server, status)),
        };
        *followed = true;
        let Some(latest) = SyncFrame::from(frame).revision() else { continue };
        if latest > *revision {
            print_entries(server, out, *revision, latest).await?;
            *revision = latest;
        }
        if requests.send(ack_request(*revision)).await.is_err() {
            return Err(stream_ended(server, "the stream's request side closed"));
        }
    }
}

/// A failed stream as an error: unreachable (so the watch reconnects) unless the answer
/// would repeat on a new stream. A connection that dropped reads as `Unknown` ("transport
/// error", "error reading a body"), whether the server died before it answered the
/// subscription or after.
fn lost(server: &Server, status: tonic::Status) -> anyhow::Error {
    if is_permanent(status.code()) { server.failed(status) } else { stream_ended(server, status.message()) }
}

fn is_permanent(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unauthenticated | PermissionDenied | InvalidArgument | NotFound | Unimplemented)
}

fn stream_ended(server: &Server, cause: &str) -> anyhow::Error {
    Failure::Unreachable { address: server.address.clone(), cause: cause.into() }.into()
}

async fn current_revision(server: &Server) -> anyhow::Result<u64> {
    let log = log_page(server, 1, 0).await?;
    Ok(log.entries.first().map_or(0, |entry| entry.revision))
}

/// Prints the log entries after `from` up to `to`, oldest first.
async fn print_entries(server: &Server, out: &Output, from: u64, to: u64) -> anyhow::Result<()> {
    let count = (to - from).min(MAX_ENTRIES);
    let log = log_page(server, u32::try_from(count).unwrap_or(u32::MAX), to + 1).await?;
    let skipped = to - from - count;
    if skipped > 0 {
        let text = format!("… {skipped} earlier changes not shown");
        line(&if out.json { serde_json::json!({ "skipped": skipped }).to_string() } else { text })?;
    }
    for entry in log.entries.into_iter().rev().filter(|e| e.revision > from).map(Entry::of) {
        line(&if out.json { serde_json::to_string(&entry)? } else { entry.line(true) })?;
    }
    Ok(())
}
