//! Bookmarks: a revision under a name, for `restore --to` and `diff ENV@NAME`.

use std::time::{Duration, UNIX_EPOCH};

use flag_proto::{Authorship, BookmarkInfo};
use serde::Serialize;

use crate::cli::BookmarkArgs;
use crate::connect::Server;
use crate::failure::Failure;
use crate::output::Output;

#[derive(Debug, Serialize)]
struct Shown {
    environment: String,
    name: String,
    revision: u64,
    actor: String,
    reason: String,
    created: String,
}

pub(crate) async fn bookmark(
    server: &Server,
    out: &Output,
    args: BookmarkArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    match args.words.as_slice() {
        [list] if list == "list" => list_bookmarks(server, out, &server.environment).await,
        [list, environment] if list == "list" => list_bookmarks(server, out, environment).await,
        [environment, name] => {
            let target = server.in_environment(environment);
            let request = target.requests().create_bookmark(name, change);
            let made = target
                .admin
                .clone()
                .create_bookmark(target.request(request))
                .await
                .map_err(|status| target.failed(status))?;
            let shown = shown(BookmarkInfo::from(made.into_inner()));
            out.print(&shown, || {
                format!(
                    "bookmarked {} at revision {} as {:?}: `flagctl restore {} --to {}` returns to it",
                    shown.environment, shown.revision, shown.name, shown.environment, shown.name
                )
            })
        }
        _ => Err(Failure::Invalid("expected `bookmark ENV NAME` or `bookmark list [ENV]`".into()).into()),
    }
}

async fn list_bookmarks(server: &Server, out: &Output, environment: &str) -> anyhow::Result<()> {
    let target = server.in_environment(environment);
    let request = target.requests().list_bookmarks();
    let listed = target
        .admin
        .clone()
        .list_bookmarks(target.request(request))
        .await
        .map_err(|status| target.failed(status))?;
    let shown: Vec<Shown> =
        listed.into_inner().bookmarks.into_iter().map(|b| shown(BookmarkInfo::from(b))).collect();
    out.print(&shown, || {
        if shown.is_empty() {
            return format!("{environment} has no bookmarks");
        }
        shown
            .iter()
            .map(|b| {
                let why = if b.reason.is_empty() { String::new() } else { format!(": {}", b.reason) };
                format!("{:<24} r{:<8} {} by {}{why}", b.name, b.revision, b.created, b.actor)
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn shown(bookmark: BookmarkInfo) -> Shown {
    let BookmarkInfo { environment, name, revision, by, created_ms } = bookmark;
    let created = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_millis(u64::try_from(created_ms).unwrap_or(0)),
    )
    .to_string();
    Shown { environment, name, revision, actor: by.actor, reason: by.reason, created }
}
