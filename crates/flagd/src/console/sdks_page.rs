//! The SDKs page: every client connected now, per environment, with how far behind it is.

use std::time::Duration;

use axum::extract::State;
use maud::{Markup, html};

use super::Shared;
use super::extract::Failure;
use super::layout::shell;
use super::session::SignedIn;

fn duration_text(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => format!("{} ms", duration.as_millis()),
        1..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

/// `GET /ui/sdks`.
pub(crate) async fn page(State(console): State<Shared>, signed: SignedIn) -> Result<Markup, Failure> {
    let readable = {
        let console = Shared::clone(&console);
        let signed = signed.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(String, u64)>, Failure> {
            let store = &console.state.store;
            let mut environments = Vec::new();
            for environment in store.environments()?.into_iter().filter(|env| signed.may_read(env)) {
                let revision = store.revision(&environment)?;
                environments.push((environment, revision));
            }
            Ok(environments)
        })
        .await??
    };
    let body = html! {
        h1 { "Connected clients" }
        @for (environment, revision) in &readable {
            @let clients = console.state.connections.clients(environment);
            section.sdks data-environment=(environment) {
                h2 { (environment) " " span.revision { "at revision " (revision) } " · " (clients.len()) " connected" }
                @if clients.is_empty() { p.note { "nobody connected" } } @else {
                    table.clients {
                        thead { tr { th { "kind" } th { "name" } th { "revision" } th { "lag" } th { "last acknowledgement" } th { "connected for" } } }
                        tbody {
                            @for client in &clients {
                                @let lag = revision.saturating_sub(client.revision);
                                tr class=[(lag > 0).then_some("behind")] {
                                    td { (client.kind.name()) @if client.relayed_sdks > 0 { " (" (client.relayed_sdks) " SDKs)" } }
                                    td { @if client.name.is_empty() { span.note { "(unnamed)" } } @else { (client.name) } }
                                    td { (client.revision) }
                                    td { (lag) @if lag > 0 { " behind" } }
                                    td { @match client.last_ack_ago { Some(ago) => { (duration_text(ago)) " ago" }, None => span.note { "—" } } }
                                    td { (duration_text(client.connected_for)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(shell("SDKs", Some(&signed), body))
}
