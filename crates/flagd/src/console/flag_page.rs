//! One flag: its environments side by side with the differences marked, the kill button and
//! the other writes, its charts, and its history with rollback.

use axum::extract::{Path, Query, State};
use flag_core::{HistoryEntry, Rollout};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::Failure;
use super::figures::charts;
use super::flag_view::{rules_markup, serve_markup, variants_markup};
use super::flags_page::{state_class, step_text};
use super::layout::{ago, csrf_field, shell, time_text};
use super::session::SignedIn;
use crate::store::FlagRecord;

/// History entries shown.
const HISTORY_SHOWN: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Shown {
    /// The environment whose history and charts are shown; the first with the flag if none.
    #[serde(default)]
    env: String,
}

struct Loaded {
    /// Every environment the caller may read, with the flag as it is there.
    columns: Vec<(String, Option<FlagRecord>)>,
    /// Each column's environment revision, read with it: where the page's change feed starts.
    revisions: Vec<u64>,
    selected: String,
    history: Vec<HistoryEntry>,
    rollout: Option<Rollout>,
}

async fn load(console: &Shared, signed: &SignedIn, key: String, wanted: String) -> Result<Loaded, Failure> {
    let console = Shared::clone(console);
    let signed = signed.clone();
    tokio::task::spawn_blocking(move || {
        let store = &console.state.store;
        let (mut columns, mut revisions) = (Vec::new(), Vec::new());
        for environment in store.environments()?.into_iter().filter(|name| signed.may_read(name)) {
            // The revision first: a change in between is then sent again, never missed.
            revisions.push(store.revision(&environment)?);
            let record = store.flag(&environment, &key)?;
            columns.push((environment, record));
        }
        let present = |name: &str| columns.iter().any(|(env, record)| env == name && record.is_some());
        let selected = if present(&wanted) {
            wanted
        } else {
            let first = columns.iter().find(|(_, record)| record.is_some()).map(|(env, _)| env.clone());
            first.ok_or_else(|| {
                Failure::new(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("no flag {key:?} in any environment you may read"),
                )
            })?
        };
        let history = store.flag_history(&selected, &key, None, HISTORY_SHOWN)?;
        let rollout = store.rollout(&selected, &key)?;
        Ok(Loaded { columns, revisions, selected, history, rollout })
    })
    .await?
}

/// One aspect of the flag per row, a column per environment; a cell that differs from the
/// first environment having the flag is marked.
fn side_by_side(columns: &[(String, Option<FlagRecord>)], revisions: &[u64]) -> Markup {
    type Aspect = (&'static str, fn(&FlagRecord) -> (String, Markup));
    let aspects: [Aspect; 6] = [
        ("state", |r| {
            let text = flag_core::state_text(&r.flag);
            let badge = html! { span class={ "state " (state_class(&r.flag)) } { (text) } };
            (text, badge)
        }),
        ("serves", |r| (format!("{:?}", r.flag.default), serve_markup(&r.flag.default))),
        ("rules", |r| (format!("{:?}{:?}", r.flag.rules, r.flag.prerequisites), rules_markup(&r.flag))),
        ("variants", |r| {
            (format!("{:?}{:?}", r.flag.variants, r.flag.off_variant), variants_markup(&r.flag))
        }),
        ("version", |r| {
            (String::new(), html! { "v" (r.flag.version) " · revision " (r.last_change.revision) })
        }),
        ("last change", |r| {
            let entry = &r.last_change;
            (
                String::new(),
                html! {
                    (entry.operation.name()) " by " (entry.actor) ", "
                    span title=(time_text(entry.timestamp_ms)) { (ago(entry.timestamp_ms)) }
                    @if !entry.reason.is_empty() { div.reason { (entry.reason) } }
                },
            )
        }),
    ];
    html! {
        table.side-by-side #side-by-side {
            thead { tr { th {} @for ((environment, _), revision) in columns.iter().zip(revisions) {
                th scope="col" data-environment=(environment) data-revision=(revision) { (environment) }
            } } }
            tbody {
                @for (name, aspect) in &aspects {
                    @let texts: Vec<Option<String>> = columns.iter().map(|(_, r)| r.as_ref().map(|r| aspect(r).0)).collect();
                    @let first = texts.iter().flatten().next().cloned();
                    tr data-aspect=(name) {
                        th scope="row" { (name) }
                        @for ((_, record), text) in columns.iter().zip(&texts) {
                            @match record {
                                None => td.absent { "not in this environment" },
                                Some(record) => {
                                    @let differs = !text.as_deref().unwrap_or_default().is_empty() && text.as_ref() != first.as_ref();
                                    td class=[differs.then_some("differs")] { (aspect(record).1) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The writes offered for one environment: only where the caller may write (the server
/// checks again on every post).
fn actions(signed: &SignedIn, key: &str, environment: &str, record: &FlagRecord) -> Markup {
    let killed = !record.flag.enabled;
    html! {
        section.actions id={ "actions-" (environment) } data-environment=(environment) {
            h3 { (environment) }
            @if killed {
                form.revive method="post" action={ "/ui/flags/" (key) "/revive" } {
                    (csrf_field(signed))
                    input type="hidden" name="environment" value=(environment);
                    input type="text" name="reason" placeholder="reason" required;
                    button.revive type="submit" { "Revive" }
                }
            } @else {
                form.kill method="post" action={ "/ui/flags/" (key) "/kill" } data-kill=(environment)
                    data-confirm={ "Kill " (key) " in " (environment) "? Everyone gets its off variant." } {
                    (csrf_field(signed))
                    input type="hidden" name="environment" value=(environment);
                    input.reason type="text" name="reason" placeholder="why (recorded in history)" required;
                    button.kill type="submit" { "Kill" }
                }
            }
            output.kill-progress id={ "kill-progress-" (environment) } aria-live="polite" {}
            form.rollout method="post" action={ "/ui/flags/" (key) "/rollout" } {
                (csrf_field(signed))
                input type="hidden" name="environment" value=(environment);
                label { "on %" input type="number" name="percent" min="0" max="100" step="any" required; }
                label { "dark %" input type="number" name="dark_percent" min="0" max="100" step="any"; }
                input type="text" name="reason" placeholder="reason";
                button type="submit" { "Set rollout" }
            }
        }
    }
}

fn history_markup(key: &str, environment: &str, history: &[HistoryEntry], may_write: bool) -> Markup {
    let newest = history.first().map(|entry| entry.version);
    html! {
        table.history #history {
            thead { tr { th { "version" } th { "change" } th { "by" } th { "when" } th { "why" } th { "state after" } th {} } }
            tbody {
                @for entry in history {
                    tr data-version=(entry.version) {
                        td { (entry.version) }
                        td { (entry.operation.name()) }
                        td { (entry.actor) @if let Some(on_behalf) = &entry.on_behalf_of { " for " (on_behalf) } }
                        td title=(time_text(entry.timestamp_ms)) { (ago(entry.timestamp_ms)) }
                        td { (entry.reason) }
                        td { @if let Some(flag) = &entry.flag { (flag_core::state_text(flag)) } @else { "deleted" } }
                        td {
                            @if may_write && Some(entry.version) != newest && entry.flag.is_some() {
                                a.rollback href={ "/ui/flags/" (key) "/rollback?environment=" (environment) "&version=" (entry.version) } { "Roll back to this" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/flags/{key}`.
pub(crate) async fn page(
    State(console): State<Shared>,
    signed: SignedIn,
    Path(key): Path<String>,
    Query(shown): Query<Shown>,
) -> Result<Markup, Failure> {
    let Loaded { columns, revisions, selected, history, rollout } =
        load(&console, &signed, key.clone(), shown.env).await?;
    let description = columns.iter().filter_map(|(_, r)| r.as_ref()).map(|r| &r.flag).next();
    let may_write_selected = signed.may_write(&selected);
    let targets: Vec<&String> =
        columns.iter().map(|(env, _)| env).filter(|env| **env != selected && signed.may_write(env)).collect();
    let charts = charts(&console.state.health, &selected, &key, rollout.as_ref(), &history);
    let body = html! {
        h1 data-live-flag=(key) { "Flag " code { (key) } }
        @if let Some(flag) = description {
            @if !flag.description.is_empty() { p.description { (flag.description) } }
            p.meta {
                @if !flag.metadata.owner.is_empty() { "owner " (flag.metadata.owner) " · " }
                @for tag in &flag.metadata.tags { span.tag { (tag) } }
            }
        }
        (side_by_side(&columns, &revisions))
        section.all-actions {
            @for (environment, record) in &columns {
                @if let Some(record) = record {
                    @if signed.may_write(environment) { (actions(&signed, &key, environment, record)) }
                }
            }
        }
        nav.environments {
            "Figures and history of "
            @for (environment, record) in &columns {
                @if record.is_some() {
                    a href={ "/ui/flags/" (key) "?env=" (environment) } class=[(*environment == selected).then_some("selected")] { (environment) }
                }
            }
        }
        section.figures {
            h2 { "Figures in " (selected) }
            @if let Some(rollout) = &rollout { p.plan #plan { (rollout_text(rollout)) } }
            (charts)
        }
        @if !targets.is_empty() {
            section.promote {
                h2 { "Promote" }
                form method="get" action={ "/ui/flags/" (key) "/promote" } {
                    input type="hidden" name="from" value=(selected);
                    "from " strong { (selected) } " to "
                    select name="to" #promote-to { @for target in &targets { option value=(target) { (target) } } }
                    button #promote-preview type="submit" { "Show what would change" }
                }
            }
        }
        section {
            h2 { "History in " (selected) }
            (history_markup(&key, &selected, &history, may_write_selected))
        }
    };
    Ok(shell(&key, Some(&signed), body))
}

/// `rollout plan running — step 2/4 (25% on), steps [5, 25, 50, 100], held since …`.
fn rollout_text(rollout: &Rollout) -> String {
    let state = match &rollout.state {
        flag_core::RolloutState::Running => "running".to_owned(),
        flag_core::RolloutState::Paused { why } => format!("paused: {why}"),
        flag_core::RolloutState::RolledBack { why } => format!("rolled back: {why}"),
        flag_core::RolloutState::Aborted { why } => format!("aborted: {why}"),
        other => format!("{other:?}").to_lowercase(),
    };
    format!(
        "rollout plan {state} — {}, steps {:?}, held since {}",
        step_text(rollout),
        rollout.plan.steps,
        time_text(rollout.holding_since_ms)
    )
}
