//! The flags page: one row per flag, a column per environment, following the change feed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flag_core::{Flag, HistoryEntry, RolloutState, Serve, Value};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::Failure;
use super::layout::{ago, shell, time_text};
use super::session::SignedIn;

/// The span the evaluations-per-second column averages over.
const RATE_SPAN: Duration = Duration::from_secs(60);

/// The filters of the page, from its query string (so a filtered view can be linked).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    state: String,
}

/// What one flag is in one environment, as a cell shows it.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) flag: Flag,
    pub(crate) last_change: HistoryEntry,
    /// `running step 2/4`, when a rollout plan drives the flag.
    pub(crate) plan: Option<String>,
    pub(crate) per_second: f64,
}

/// The state a cell is filtered by and coloured as.
pub(crate) fn state_class(flag: &Flag) -> &'static str {
    if !flag.enabled {
        return "killed";
    }
    match &flag.default {
        Serve::Variant(variant) => {
            match flag.variants.iter().find(|v| &v.name == variant).map(|v| &v.value) {
                Some(Value::Bool(true)) => "on",
                Some(Value::Bool(false)) => "off",
                _ if variant == flag_core::ON => "on",
                _ if variant == flag_core::OFF => "off",
                _ => "serving",
            }
        }
        Serve::Split(_) if flag_core::dark_cohort_text(flag).is_some() => "dark",
        Serve::Split(_) => "rollout",
        Serve::CallerDefault => "serving",
    }
}

/// The environments the caller may read, with their revisions, and each flag's cells
/// (`None` where the flag is not in that environment); `only` narrows it to one key.
pub(crate) struct Table {
    pub(crate) environments: Vec<(String, u64)>,
    pub(crate) flags: BTreeMap<String, Vec<Option<Cell>>>,
}

/// Reads the table off the runtime: one read transaction per environment.
pub(crate) async fn load(
    console: &Shared,
    signed: &SignedIn,
    only: Option<String>,
) -> Result<Table, Failure> {
    let console = Shared::clone(console);
    let signed = signed.clone();
    tokio::task::spawn_blocking(move || {
        let store = &console.state.store;
        let names = store.environments()?;
        let names: Vec<String> = names.into_iter().filter(|name| signed.may_read(name)).collect();
        let mut environments = Vec::new();
        let mut flags: BTreeMap<String, Vec<Option<Cell>>> = BTreeMap::new();
        for (column, environment) in names.iter().enumerate() {
            let (revision, records) = match &only {
                None => store.flag_records(environment),
                Some(key) => store
                    .revision(environment)
                    .and_then(|revision| Ok((revision, store.flag(environment, key)?.into_iter().collect()))),
            }?;
            let plans: HashMap<String, String> = store
                .rollouts(Some(environment))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|planned| plan_text(&planned.rollout).map(|text| (planned.key, text)))
                .collect();
            let rates = console.state.health.evaluations_by_flag(environment, only.as_deref(), RATE_SPAN);
            for record in records {
                let key = record.flag.key.clone();
                let cells =
                    flags.entry(key.clone()).or_insert_with(|| (0..names.len()).map(|_| None).collect());
                cells[column] = Some(Cell {
                    plan: plans.get(&key).cloned(),
                    per_second: rates.get(&key).copied().unwrap_or(0) as f64 / RATE_SPAN.as_secs_f64(),
                    flag: record.flag,
                    last_change: record.last_change,
                });
            }
            environments.push((environment.clone(), revision));
        }
        Ok(Table { environments, flags })
    })
    .await?
}

/// `running step 2/4 (25%)`, for a plan still in charge of its flag.
fn plan_text(rollout: &flag_core::Rollout) -> Option<String> {
    let state = match &rollout.state {
        RolloutState::Running => "running",
        RolloutState::Paused { .. } => "paused",
        _ => return None,
    };
    Some(format!("{state} {}", step_text(rollout)))
}

/// `step 2/4 (25% on)`.
pub(crate) fn step_text(rollout: &flag_core::Rollout) -> String {
    let step = rollout.plan.steps.get(rollout.step).copied().unwrap_or_default();
    format!("step {}/{} ({step}% on)", rollout.step + 1, rollout.plan.steps.len())
}

fn matches(filter: &Filter, key: &str, cells: &[Option<Cell>]) -> bool {
    let present = || cells.iter().flatten();
    let q = filter.q.trim().to_lowercase();
    let text = q.is_empty()
        || key.to_lowercase().contains(&q)
        || present().any(|cell| cell.flag.description.to_lowercase().contains(&q));
    let tag = filter.tag.is_empty() || present().any(|cell| cell.flag.metadata.tags.contains(&filter.tag));
    let state = filter.state.is_empty() || present().any(|cell| state_class(&cell.flag) == filter.state);
    text && tag && state
}

/// One flag's row.
pub(crate) fn row_markup(key: &str, cells: &[Option<Cell>]) -> Markup {
    let tags: Vec<&str> = cells
        .iter()
        .flatten()
        .flat_map(|cell| cell.flag.metadata.tags.iter().map(String::as_str))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let description =
        cells.iter().flatten().map(|cell| cell.flag.description.as_str()).find(|d| !d.is_empty());
    html! {
        tr id={ "flag-" (key) } data-key=(key) {
            th scope="row" {
                a href={ "/ui/flags/" (key) } { (key) }
                @if let Some(description) = description { div.description { (description) } }
                @for tag in &tags { span.tag { (tag) } }
            }
            @for cell in cells {
                @match cell {
                    None => td.absent { "—" },
                    Some(cell) => td data-state=(state_class(&cell.flag)) {
                        span class={ "state " (state_class(&cell.flag)) } { (flag_core::state_text(&cell.flag)) }
                        @if let Some(plan) = &cell.plan { div.plan { "plan " (plan) } }
                        div.meta {
                            "v" (cell.flag.version) " · r" (cell.last_change.revision) " · "
                            span title=(time_text(cell.last_change.timestamp_ms)) { (ago(cell.last_change.timestamp_ms)) }
                            " by " (cell.last_change.actor)
                        }
                        @if !cell.last_change.reason.is_empty() { div.reason { (cell.last_change.reason) } }
                        div.rate { (format!("{:.1}", cell.per_second)) " eval/s" }
                    },
                }
            }
        }
    }
}

/// `GET /ui/flags`.
pub(crate) async fn page(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(filter): Query<Filter>,
) -> Result<Markup, Failure> {
    let table = load(&console, &signed, None).await?;
    let shown: Vec<(&String, &Vec<Option<Cell>>)> =
        table.flags.iter().filter(|(key, cells)| matches(&filter, key, cells)).collect();
    let body = html! {
        h1 { "Flags" }
        form.filters method="get" action="/ui/flags" {
            input #search type="search" name="q" value=(filter.q) placeholder="key or description";
            input #tag type="text" name="tag" value=(filter.tag) placeholder="tag";
            select #state name="state" {
                @for (value, label) in [("", "any state"), ("on", "on"), ("off", "off"), ("killed", "killed"), ("rollout", "rollout"), ("dark", "dark launch"), ("serving", "serving a variant")] {
                    option value=(value) selected[filter.state == value] { (label) }
                }
            }
            button type="submit" { "Filter" }
            span.count #flag-count { (shown.len()) " of " (table.flags.len()) " flags" }
        }
        table.flags #flags data-live="flags" {
            thead { tr {
                th scope="col" { "Flag" }
                @for (environment, revision) in &table.environments {
                    th scope="col" data-environment=(environment) data-revision=(revision) { (environment) span.revision { " r" (revision) } }
                }
            } }
            tbody {
                @for (key, cells) in &shown { (row_markup(key, cells)) }
            }
        }
        @if table.environments.is_empty() { p.note { "You may not read any environment." } }
    };
    Ok(shell("Flags", Some(&signed), body))
}

/// `GET /ui/flags/{key}/row`: the one row, for the page's script to swap in after a change;
/// 204 when the page's filter (the same query) no longer shows it, 404 once the flag is in no
/// environment.
pub(crate) async fn row(
    State(console): State<Shared>,
    signed: SignedIn,
    Path(key): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    match load(&console, &signed, Some(key.clone())).await {
        Ok(table) => match table.flags.get(&key) {
            Some(cells) if matches(&filter, &key, cells) => row_markup(&key, cells).into_response(),
            // Still there, but the page's filter no longer shows it.
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => (StatusCode::NOT_FOUND, "no such flag\n").into_response(),
        },
        Err(failure) => failure.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_name_what_the_flag_serves() {
        let mut flag = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
        assert_eq!(state_class(&flag), "dark");
        flag.default = Flag::rollout("chat", 25.0).unwrap().default;
        assert_eq!(state_class(&flag), "rollout");
        flag.default = Serve::Variant("on".into());
        assert_eq!(state_class(&flag), "on");
        flag.enabled = false;
        assert_eq!(state_class(&flag), "killed");
    }
}
