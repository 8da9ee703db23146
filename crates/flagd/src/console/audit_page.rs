//! The audit log: every change across environments, filtered, each expandable to what it
//! changed.

use axum::extract::{Query, State};
use flag_proto::v1::{self, admin_server::Admin};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::{Failure, form_encode};
use super::flag_view::{changes_table, core_flag, flag_diff};
use super::layout::{shell, time_text};
use super::session::SignedIn;

/// Entries per page.
const PAGE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditFilter {
    /// An environment, or empty for every one the caller may read.
    #[serde(default)]
    environment: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// `2026-12-03T14:00` (UTC), as a `datetime-local` input sends it.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

/// `2026-12-03T14:00` (taken as UTC) → ms since the epoch.
fn parse_minute(text: &str) -> Result<Option<i64>, Failure> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let with_seconds = if text.len() == 16 { format!("{text}:00Z") } else { format!("{text}Z") };
    humantime::parse_rfc3339(&with_seconds)
        .map(|at| Some(at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)))
        .map_err(|_| {
            Failure::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("time {text:?}: expected YYYY-MM-DDTHH:MM (UTC)"),
            )
        })
}

/// `GET /ui/audit`.
pub(crate) async fn page(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(filter): Query<AuditFilter>,
) -> Result<Markup, Failure> {
    let request = v1::QueryLogRequest {
        environment: filter.environment.clone(),
        all_environments: filter.environment.is_empty(),
        flags: (!filter.flag.is_empty()).then(|| filter.flag.clone()).into_iter().collect(),
        actor: filter.actor.clone(),
        since_unix_ms: parse_minute(&filter.since)?,
        until_unix_ms: parse_minute(&filter.until)?,
        actions: (!filter.action.is_empty()).then(|| filter.action.clone()).into_iter().collect(),
        page_size: PAGE,
        cursor: filter.cursor.clone(),
    };
    let log = console.admin.query_log(signed.request(request)).await?.into_inner();
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/ui/audit" {
            input type="text" name="environment" value=(filter.environment) placeholder="environment (all)";
            input type="text" name="flag" value=(filter.flag) placeholder="flag";
            input type="text" name="actor" value=(filter.actor) placeholder="actor";
            select name="action" {
                option value="" { "any action" }
                @for (_, name) in flag_core::Operation::NAMED {
                    option value=(name) selected[filter.action == name] { (name) }
                }
            }
            label { "since " input type="datetime-local" name="since" value=(filter.since); }
            label { "until " input type="datetime-local" name="until" value=(filter.until); }
            button type="submit" { "Filter" }
        }
        table.audit #audit {
            thead { tr { th { "when (UTC)" } th { "environment" } th { "subject" } th { "action" } th { "by" } th { "why" } } }
            tbody {
                @for logged in &log.entries {
                    @if let Some(entry) = &logged.entry {
                        @let operation = v1::Operation::try_from(entry.operation).map_or("change", |op| op.as_str_name());
                        tr.entry data-key=(entry.key) {
                            td { (time_text(entry.timestamp_ms)) }
                            td { (entry.environment) }
                            td {
                                @if entry.is_segment { "segment " code { (entry.key) } }
                                @else { a href={ "/ui/flags/" (entry.key) "?env=" (entry.environment) } { (entry.key) } }
                                " v" (entry.version)
                            }
                            td { (operation.trim_start_matches("OPERATION_").to_lowercase()) }
                            td { (entry.actor) @if !entry.on_behalf_of.is_empty() { " for " (entry.on_behalf_of) } }
                            td {
                                (entry.reason)
                                @if !entry.is_segment {
                                    details { summary { "before / after" }
                                        (changes_table(&flag_diff(core_flag(logged.flag_before.as_ref()).as_ref(), core_flag(entry.flag.as_ref()).as_ref()), "no field changed"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if log.entries.is_empty() { p.note { "no changes match" } }
        @if !log.next_cursor.is_empty() {
            p { a #older href={ "/ui/audit?environment=" (form_encode(&filter.environment)) "&flag=" (form_encode(&filter.flag)) "&actor=" (form_encode(&filter.actor)) "&action=" (form_encode(&filter.action)) "&since=" (form_encode(&filter.since)) "&until=" (form_encode(&filter.until)) "&cursor=" (form_encode(&log.next_cursor)) } { "Older changes" } }
        }
    };
    Ok(shell("Audit log", Some(&signed), body))
}
