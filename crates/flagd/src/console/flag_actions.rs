//! The writes posted from a flag's page: kill, revive, rollout, rollback and promote, each
//! through the Admin service as the signed-in principal. Rollback and promote show what
//! they would change first, and the confirmation carries the version or revision that was
//! shown, so a change made meanwhile is refused rather than overwritten.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use flag_proto::v1::{self, admin_server::Admin};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::{Failure, Posted, wants_json};
use super::flag_view::{applied_markup, changes_table, core_flag, flag_diff};
use super::layout::{csrf_field, shell};
use super::session::SignedIn;

/// How long a kill posted without the script waits for the SDKs before answering.
const KILL_PAGE_WAIT_MS: u32 = 5_000;

fn back_to(key: &str, environment: &str) -> Redirect {
    Redirect::to(&format!("/ui/flags/{key}?env={environment}"))
}

/// An environment and why: a kill's or a revive's form.
#[derive(Debug, Deserialize)]
pub(crate) struct ReasonForm {
    environment: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/flags/{key}/kill`. From the script: answered at the commit with its revision,
/// and the page follows the acknowledgements live (`/ui/acks`). Without it: answered when
/// every SDK acknowledged or after a few seconds, with the report.
pub(crate) async fn kill(
    State(console): State<Shared>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Posted { signed, form }: Posted<ReasonForm>,
) -> Result<Response, Failure> {
    let ReasonForm { environment, reason } = form;
    // As the Admin service reads it, so the follow below is of the environment killed.
    let environment = flag_proto::environment_or_default(&environment).to_owned();
    let script = wants_json(&headers);
    let request = v1::KillRequest {
        environment: environment.clone(),
        key: key.clone(),
        change: signed.change(&reason),
        wait_ms: if script { 0 } else { KILL_PAGE_WAIT_MS },
    };
    let killed = match console.admin.kill(signed.request(request)).await {
        Ok(killed) => killed.into_inner(),
        Err(status) => return Ok(Failure::from(status).respond(script)),
    };
    let revision = killed.write.as_ref().map_or(0, |write| write.revision);
    if script {
        console.kills.start(&console.state.connections, &environment, revision);
        let body = serde_json::json!({
            "environment": environment, "key": key, "revision": revision, "already_killed": killed.already_killed,
        });
        return Ok(Json(body).into_response());
    }
    let acks = killed.acks.unwrap_or_default();
    let page = shell(
        "Killed",
        Some(&signed),
        html! {
            h1 { "Killed " code { (key) } " in " (environment) }
            p #kill-report { (ack_text(acks.acknowledged, acks.connected, acks.slowest_ms, &acks.missing)) }
            p { a href={ "/ui/flags/" (key) "?env=" (environment) } { "Back to the flag" } }
        },
    );
    Ok(page.into_response())
}

/// `37/37 SDKs acknowledged, slowest 3 ms` or `36/37 …; missing: checkout-7`.
pub(crate) fn ack_text(acknowledged: u32, connected: u32, slowest_ms: u32, missing: &[String]) -> String {
    let mut text = format!("{acknowledged}/{connected} SDKs acknowledged, slowest {slowest_ms} ms");
    if !missing.is_empty() {
        text.push_str(&format!("; missing: {}", missing.join(", ")));
    }
    text
}

/// `POST /ui/flags/{key}/revive`.
pub(crate) async fn revive(
    State(console): State<Shared>,
    Path(key): Path<String>,
    Posted { signed, form }: Posted<ReasonForm>,
) -> Result<Redirect, Failure> {
    let ReasonForm { environment, reason } = form;
    let request = v1::ReviveRequest {
        environment: environment.clone(),
        key: key.clone(),
        expected_version: None,
        change: signed.change(&reason),
    };
    console.admin.revive(signed.request(request)).await?;
    Ok(back_to(&key, &environment))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RolloutForm {
    environment: String,
    // Text, parsed here: the refusal then names the field.
    percent: String,
    #[serde(default)]
    dark_percent: String,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/flags/{key}/rollout`.
pub(crate) async fn rollout(
    State(console): State<Shared>,
    Path(key): Path<String>,
    Posted { signed, form }: Posted<RolloutForm>,
) -> Result<Redirect, Failure> {
    let RolloutForm { environment, percent, dark_percent, reason } = form;
    let number = |field: &str, text: &str| {
        text.trim().parse::<f64>().map_err(|_| {
            let message = format!("{field}: expected a number from 0 to 100, got {text:?}");
            Failure::new(axum::http::StatusCode::BAD_REQUEST, message)
        })
    };
    let percent = number("on %", &percent)?;
    let dark_percent =
        if dark_percent.trim().is_empty() { None } else { Some(number("dark %", &dark_percent)?) };
    let request = v1::SetRolloutRequest {
        environment: environment.clone(),
        key: key.clone(),
        percent,
        dark_percent,
        expected_version: None,
        change: signed.change(&reason),
        create_if_missing: false,
    };
    console.admin.set_rollout(signed.request(request)).await?;
    Ok(back_to(&key, &environment))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RollbackTarget {
    environment: String,
    version: u64,
}

/// `GET /ui/flags/{key}/rollback`: what rolling back to a version would change, and the
/// confirmation.
pub(crate) async fn rollback_preview(
    State(console): State<Shared>,
    signed: SignedIn,
    Path(key): Path<String>,
    Query(target): Query<RollbackTarget>,
) -> Result<Markup, Failure> {
    let RollbackTarget { environment, version } = target;
    let read = v1::FlagHistoryRequest {
        environment: environment.clone(),
        key: key.clone(),
        page_size: 1,
        before_version: version.saturating_add(1),
    };
    let then = console.admin.flag_history(signed.request(read)).await?.into_inner();
    let now = console
        .admin
        .get_flag(signed.request(v1::GetFlagRequest { environment: environment.clone(), key: key.clone() }))
        .await?
        .into_inner();
    let then_flag = core_flag(then.entries.first().and_then(|entry| entry.flag.as_ref()));
    let now_flag = core_flag(now.flag.as_ref());
    let current_version = now_flag.as_ref().map_or(0, |flag| flag.version);
    let killed_now = now_flag.as_ref().is_some_and(|flag| !flag.enabled);
    let changes = flag_diff(now_flag.as_ref(), then_flag.as_ref());
    Ok(shell(
        "Roll back",
        Some(&signed),
        html! {
            h1 { "Roll back " code { (key) } " in " (environment) " to version " (version) }
            p { "A new version " (current_version + 1) " with version " (version) "'s content. What would change:" }
            (changes_table(&changes, "version's content is what the flag is now"))
            form method="post" action={ "/ui/flags/" (key) "/rollback" } {
                (csrf_field(&signed))
                input type="hidden" name="environment" value=(environment);
                input type="hidden" name="version" value=(version);
                input type="hidden" name="expected_version" value=(current_version);
                input type="text" name="reason" placeholder="reason" required;
                @if killed_now {
                    label { input type="checkbox" name="allow_revive" value="true"; " the flag is killed now: revive it too" }
                }
                button #confirm-rollback type="submit" { "Roll back" }
                " " a href={ "/ui/flags/" (key) "?env=" (environment) } { "Cancel" }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RollbackForm {
    environment: String,
    version: u64,
    expected_version: u64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    allow_revive: bool,
}

/// `POST /ui/flags/{key}/rollback`: refused if the flag changed since the preview.
pub(crate) async fn rollback(
    State(console): State<Shared>,
    Path(key): Path<String>,
    Posted { signed, form }: Posted<RollbackForm>,
) -> Result<Redirect, Failure> {
    let RollbackForm { environment, version, expected_version, reason, allow_revive } = form;
    let request = v1::RollbackRequest {
        environment: environment.clone(),
        key: key.clone(),
        to_version: Some(version),
        expected_version: Some(expected_version),
        change: signed.change(&reason),
        allow_revive,
    };
    console.admin.rollback(signed.request(request)).await?;
    Ok(back_to(&key, &environment))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PromoteTarget {
    from: String,
    to: String,
}

fn promote_request(key: &str, from: &str, to: &str, dry_run: bool) -> v1::PromoteRequest {
    v1::PromoteRequest {
        from_environment: from.to_owned(),
        to_environment: to.to_owned(),
        keys: vec![key.to_owned()],
        dry_run,
        ..Default::default()
    }
}

/// `GET /ui/flags/{key}/promote`: the promote's dry run, and the confirmation.
pub(crate) async fn promote_preview(
    State(console): State<Shared>,
    signed: SignedIn,
    Path(key): Path<String>,
    Query(target): Query<PromoteTarget>,
) -> Result<Markup, Failure> {
    let PromoteTarget { from, to } = target;
    let planned =
        console.admin.promote(signed.request(promote_request(&key, &from, &to, true))).await?.into_inner();
    let applied = planned.applied.unwrap_or_default();
    Ok(shell(
        "Promote",
        Some(&signed),
        html! {
            h1 { "Promote " code { (key) } " from " (from) " to " (to) }
            p { "Dry run against " (to) " at revision " (applied.revision) ":" }
            div #promote-diff { (applied_markup(&applied)) }
            @if !planned.segments.is_empty() { p.note { "segments that come along: " (planned.segments.join(", ")) } }
            form method="post" action={ "/ui/flags/" (key) "/promote" } {
                (csrf_field(&signed))
                input type="hidden" name="from" value=(from);
                input type="hidden" name="to" value=(to);
                input type="hidden" name="expected_revision" value=(applied.revision);
                input type="text" name="reason" placeholder="reason" required;
                button #confirm-promote type="submit" disabled[applied.changes.is_empty()] { "Promote" }
                " " a href={ "/ui/flags/" (key) "?env=" (from) } { "Cancel" }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PromoteForm {
    from: String,
    to: String,
    expected_revision: u64,
    #[serde(default)]
    reason: String,
}

/// `POST /ui/flags/{key}/promote`: refused if the target changed since the dry run.
pub(crate) async fn promote(
    State(console): State<Shared>,
    Path(key): Path<String>,
    Posted { signed, form }: Posted<PromoteForm>,
) -> Result<Redirect, Failure> {
    let PromoteForm { from, to, expected_revision, reason } = form;
    let mut request = promote_request(&key, &from, &to, false);
    request.expected_revision = Some(expected_revision);
    request.change = signed.change(&reason);
    console.admin.promote(signed.request(request)).await?;
    Ok(back_to(&key, &to))
}
