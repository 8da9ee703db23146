//! The environments page: each environment with its bookmarks, a diff of two, and restore
//! to a bookmark or revision with its dry run shown first.

use axum::extract::{Query, State};
use axum::response::Redirect;
use flag_proto::v1::{self, admin_server::Admin, point_in_time_restore_request::Point};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::{Failure, Posted};
use super::flag_view::applied_markup;
use super::layout::{csrf_field, shell, time_text};
use super::session::SignedIn;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DiffPair {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn diff_markup(diff: &v1::DiffResponse) -> Markup {
    html! {
        p { "from revision " (diff.from_revision) " to revision " (diff.to_revision) ": "
            (diff.flags.len()) " flags differ, " (diff.unchanged_flags) " the same" }
        table.diff #environment-diff {
            thead { tr { th { "flag" } th { "change" } th { "field" } th { "from" } th { "to" } } }
            tbody {
                @for subject in &diff.flags {
                    @let change = v1::subject_diff::Change::try_from(subject.change).map_or("changed", |c| c.as_str_name());
                    @if subject.fields.is_empty() {
                        tr { td { (subject.key) } td { (change.to_lowercase()) } td {} td {} td {} }
                    }
                    @for field in &subject.fields {
                        tr {
                            td { (subject.key) } td { (change.to_lowercase()) } td { code { (field.path) } }
                            td.from { code { (field.from_json.as_deref().unwrap_or("—")) } }
                            td.to { code { (field.to_json.as_deref().unwrap_or("—")) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/environments`.
pub(crate) async fn page(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(pair): Query<DiffPair>,
) -> Result<Markup, Failure> {
    let listed = console
        .admin
        .list_environments(signed.request(v1::ListEnvironmentsRequest { include_deleted: false }))
        .await?;
    let environments = listed.into_inner().environments;
    let mut bookmarks = Vec::new();
    for environment in &environments {
        let request = v1::ListBookmarksRequest { environment: environment.name.clone() };
        let listed = console.admin.list_bookmarks(signed.request(request)).await?.into_inner();
        bookmarks.push(listed.bookmarks);
    }
    let diff = if pair.from.is_empty() || pair.to.is_empty() {
        None
    } else {
        let side =
            |environment: &str| Some(v1::DiffSide { environment: environment.to_owned(), point: None });
        let request = v1::DiffRequest { from: side(&pair.from), to: side(&pair.to), keys: Vec::new() };
        Some(console.admin.diff(signed.request(request)).await?.into_inner())
    };
    let writable: Vec<&str> =
        environments.iter().map(|e| e.name.as_str()).filter(|name| signed.may_write(name)).collect();
    let body = html! {
        h1 { "Environments" }
        table.environments {
            thead { tr { th { "environment" } th { "revision" } th { "flags" } th { "segments" } th { "SDKs" } th { "bookmarks" } } }
            tbody {
                @for (environment, marks) in environments.iter().zip(&bookmarks) {
                    tr data-environment=(environment.name) {
                        td { (environment.name) }
                        td { (environment.revision) }
                        td { (environment.flag_count) }
                        td { (environment.segment_count) }
                        td { (environment.connected_sdks.len()) }
                        td {
                            @for mark in marks {
                                div.bookmark {
                                    code { (mark.name) } " at r" (mark.revision) ", " (time_text(mark.created_unix_ms)) " by " (mark.actor)
                                    @if signed.may_write(&environment.name) {
                                        " " a.restore href={ "/ui/environments/restore?environment=" (environment.name) "&bookmark=" (mark.name) } { "Restore…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Diff two environments" }
            form method="get" action="/ui/environments" {
                select name="from" { @for e in &environments { option value=(e.name) selected[pair.from == e.name] { (e.name) } } }
                " → "
                select name="to" { @for e in &environments { option value=(e.name) selected[pair.to == e.name] { (e.name) } } }
                button type="submit" { "Diff" }
            }
            @if let Some(diff) = &diff { (diff_markup(diff)) }
        }
        @if !writable.is_empty() {
            section {
                h2 { "Restore to a revision" }
                form method="get" action="/ui/environments/restore" {
                    select name="environment" { @for name in &writable { option value=(name) { (name) } } }
                    input type="number" name="revision" min="0" placeholder="revision" required;
                    button type="submit" { "Show what would change" }
                }
            }
        }
    };
    Ok(shell("Environments", Some(&signed), body))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RestorePoint {
    environment: String,
    #[serde(default)]
    bookmark: String,
    #[serde(default)]
    revision: Option<u64>,
}

impl RestorePoint {
    fn point(&self) -> Result<Point, Failure> {
        match (&self.revision, self.bookmark.as_str()) {
            (Some(revision), "") => Ok(Point::ToRevision(*revision)),
            (None, bookmark) if !bookmark.is_empty() => Ok(Point::Bookmark(bookmark.to_owned())),
            _ => Err(Failure::new(
                axum::http::StatusCode::BAD_REQUEST,
                "restore needs a revision or a bookmark",
            )),
        }
    }

    fn text(&self) -> String {
        match self.revision {
            Some(revision) => format!("revision {revision}"),
            None => format!("bookmark {:?}", self.bookmark),
        }
    }
}

/// `GET /ui/environments/restore`: the restore's dry run, and the confirmation.
pub(crate) async fn restore_preview(
    State(console): State<Shared>,
    signed: SignedIn,
    Query(point): Query<RestorePoint>,
) -> Result<Markup, Failure> {
    let request = v1::PointInTimeRestoreRequest {
        environment: point.environment.clone(),
        point: Some(point.point()?),
        dry_run: true,
        ..Default::default()
    };
    let planned = console.admin.point_in_time_restore(signed.request(request)).await?.into_inner();
    let applied = planned.applied.unwrap_or_default();
    Ok(shell(
        "Restore",
        Some(&signed),
        html! {
            h1 { "Restore " (point.environment) " to " (point.text()) }
            p { "As it was at revision " (planned.restored_revision) " (" (time_text(planned.restored_at_unix_ms)) "). Dry run against revision " (applied.revision) ":" }
            div #restore-diff { (applied_markup(&applied)) }
            form method="post" action="/ui/environments/restore" {
                (csrf_field(&signed))
                input type="hidden" name="environment" value=(point.environment);
                input type="hidden" name="bookmark" value=(point.bookmark);
                @if let Some(revision) = point.revision { input type="hidden" name="revision" value=(revision); }
                input type="hidden" name="expected_revision" value=(applied.revision);
                input type="text" name="reason" placeholder="reason" required;
                label { input type="checkbox" name="allow_revive" value="true"; " revive flags killed since" }
                button #confirm-restore type="submit" disabled[applied.changes.is_empty()] { "Restore" }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RestoreForm {
    environment: String,
    #[serde(default)]
    bookmark: String,
    #[serde(default)]
    revision: Option<u64>,
    expected_revision: u64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    allow_revive: bool,
}

/// `POST /ui/environments/restore`: refused if the environment changed since the dry run.
pub(crate) async fn restore(
    State(console): State<Shared>,
    Posted { signed, form }: Posted<RestoreForm>,
) -> Result<Redirect, Failure> {
    let RestoreForm { environment, bookmark, revision, expected_revision, reason, allow_revive } = form;
    let point = RestorePoint { environment: environment.clone(), bookmark, revision }.point()?;
    let request = v1::PointInTimeRestoreRequest {
        environment,
        point: Some(point),
        allow_revive,
        dry_run: false,
        expected_revision: Some(expected_revision),
        change: signed.change(&reason),
    };
    console.admin.point_in_time_restore(signed.request(request)).await?;
    Ok(Redirect::to("/ui/audit"))
}
