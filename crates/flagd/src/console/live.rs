//! Server-sent events: the change feed the flags table and a flag's page follow, and a
//! kill's acknowledgements as they arrive.
//!
//! Each stream is a task writing into a small channel: it ends when the browser goes (a
//! send fails), when the session ends, or at shutdown, so it never holds the management
//! server open.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use flag_proto::environment_or_default;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Shared;
use super::extract::Failure;
use super::kill_follow::{FOLLOW_FOR, Following};
use super::session::SignedIn;

/// Changes read per environment per wake-up; more than this and the page is told to reload.
const MAX_CHANGES_SENT: usize = 200;

type Events = Sse<KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Since {
    /// `production:42,staging:7`: the revisions the page was rendered at.
    #[serde(default)]
    since: String,
}

fn parse_since(text: &str) -> HashMap<String, u64> {
    text.split(',')
        .filter_map(|pair| {
            let (environment, revision) = pair.rsplit_once(':')?;
            Some((environment.to_owned(), revision.parse().ok()?))
        })
        .collect()
}

fn json_event(kind: &str, data: serde_json::Value) -> Result<Event, Infallible> {
    Ok(Event::default().event(kind).data(data.to_string()))
}

/// `GET /ui/events`: a `flag` event (environment, key, revision) for every change to a flag
/// the caller may read after the revisions given in `since`.
pub(crate) async fn changes(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(since): Query<Since>,
) -> Events {
    let (sender, receiver) = mpsc::channel(64);
    let mut seen = parse_since(&since.since);
    tokio::spawn(async move {
        let mut commits = console.state.hub.commits();
        let mut stopped = console.stopped.clone();
        loop {
            // The caller as the principals in force now: a token narrowed by a reload reads
            // less from its next change on, a removed one ends the stream.
            let Some(signed) = console.sessions.resolve(&signed.id, &console.state.access) else { return };
            if *stopped.borrow() {
                return;
            }
            let read = {
                let console = Shared::clone(&console);
                let seen = seen.clone();
                tokio::task::spawn_blocking(move || changed_flags(&console, &signed, &seen)).await
            };
            let Ok((events, revisions)) = read else { return };
            for event in events {
                if sender.send(event).await.is_err() {
                    return;
                }
            }
            seen.extend(revisions);
            tokio::select! {
                changed = commits.changed() => if changed.is_err() { return },
                _ = stopped.changed() => return,
                // The page went away: nothing tells the task otherwise until its next event.
                () = sender.closed() => return,
                // A wake-up now and then notices a session ended without a change.
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    });
    Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default())
}

/// The events for changes after `seen` in every readable environment, and the revisions
/// now. An environment first seen here starts at its current revision.
fn changed_flags(
    console: &Shared,
    signed: &SignedIn,
    seen: &HashMap<String, u64>,
) -> (Vec<Result<Event, Infallible>>, HashMap<String, u64>) {
    let store = &console.state.store;
    let mut events = Vec::new();
    let mut revisions = HashMap::new();
    for environment in store.environments().unwrap_or_default().into_iter().filter(|env| signed.may_read(env))
    {
        let Ok(revision) = store.revision(&environment) else { continue };
        let Some(&last) = seen.get(&environment) else {
            revisions.insert(environment, revision);
            continue;
        };
        if revision <= last {
            continue;
        }
        let entries = store.environment_history(&environment, None, MAX_CHANGES_SENT).unwrap_or_default();
        let newer: Vec<_> = entries.iter().filter(|entry| entry.revision > last).collect();
        if newer.len() == MAX_CHANGES_SENT {
            events.push(json_event("reload", serde_json::json!({ "environment": environment })));
        }
        for entry in newer.into_iter().rev().filter(|entry| entry.kind == flag_core::SubjectKind::Flag) {
            let data = serde_json::json!({
                "environment": environment, "key": entry.key, "revision": entry.revision,
                "operation": entry.operation.name(), "actor": entry.actor,
            });
            events.push(json_event("flag", data));
        }
        revisions.insert(environment, revision);
    }
    (events, revisions)
}

fn report_event(kind: &str, report: &flag_core::AckReport) -> Result<Event, Infallible> {
    json_event(
        kind,
        serde_json::json!({
            "revision": report.revision,
            "connected": report.connected,
            "acknowledged": report.acknowledged,
            "slowest_ms": report.slowest.as_millis() as u64,
            "missing": report.missing,
            "open_feature_streams": report.open_feature_streams,
            "open_feature_sent": report.open_feature_sent,
        }),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckTarget {
    environment: String,
    revision: u64,
}

/// `GET /ui/acks`: `progress` events with the acknowledgements of `revision` so far, then
/// one `done` event with the final report (every connected SDK acknowledged, or a minute
/// passed). A progress step the page missed is skipped; the final report never is.
pub(crate) async fn acks(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(target): Query<AckTarget>,
) -> Result<Events, Failure> {
    let AckTarget { environment, revision } = target;
    if !signed.may_read(&environment) {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            format!("{} may not read environment {environment:?}", signed.name),
        ));
    }
    let environment = environment_or_default(&environment).to_owned();
    let followed = console.kills.progress(&environment, revision);
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut stopped = console.stopped.clone();
        let stopping = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        tokio::select! {
            () = follow(&console, &environment, revision, followed, &sender) => {}
            () = stopping => {}
            () = sender.closed() => {}
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default()))
}

/// Sends a kill's progress, then its final report: from the follow its post started (counted
/// from the commit), or, for a revision this console did not kill (or let go), waited for
/// from now, for as long as the page listens.
async fn follow(
    console: &Shared,
    environment: &str,
    revision: u64,
    followed: Option<Following>,
    sender: &mpsc::Sender<Result<Event, Infallible>>,
) {
    let Some(mut progress) = followed else {
        let wait = console.state.connections.wait_reporting(environment, revision, FOLLOW_FOR, |report| {
            // A full channel only drops a progress step: the final report is always sent.
            let _ = sender.try_send(report_event("progress", report));
        });
        let report = wait.await;
        let _ = sender.send(report_event("done", &report)).await;
        return;
    };
    loop {
        let current = progress.borrow_and_update().clone();
        if let Some((report, done)) = current {
            let event = report_event(if done { "done" } else { "progress" }, &report);
            if sender.send(event).await.is_err() || done {
                return;
            }
        }
        if progress.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_each_environment_revision() {
        let since = parse_since("production:42,staging:7,bad,x:y");
        assert_eq!(since.get("production"), Some(&42));
        assert_eq!(since.get("staging"), Some(&7));
        assert_eq!(since.len(), 2);
    }
}
