//! History: one flag's versions, newest first, a page at a time.
//!
//! flagd answers at most [`PAGE`] versions per call; `--limit` counts what is printed, so
//! this follows pages until it is reached (or to the first version with `--all`), printing
//! each page as it arrives. When versions are left, the way on (`--before VERSION`) ends the
//! text, or goes to stderr after `--json`, which stays one document.

use anyhow::Context as _;
use flag_proto::HistoryPage;

use crate::cli::{HistoryArgs, Limit};
use crate::connect::{Call, Server};
use crate::failure::Failure;
use crate::output::{Output, line};
use crate::reads::MALFORMED;
use crate::render::Entry;

/// The most versions flagd sends in one answer.
const PAGE: u64 = 1000;

pub(crate) async fn history(server: &Server, out: &Output, args: HistoryArgs) -> anyhow::Result<()> {
    let HistoryArgs { key, limit, all, before } = args;
    let mut left = match (all, limit) {
        (true, _) | (false, Limit::All) => u64::MAX,
        (false, Limit::Count(count)) => count,
    };
    let asked_before = before;
    let mut before = before.unwrap_or(0);
    let mut collected = Vec::new();
    let mut printed = 0;
    loop {
        let page_size = u32::try_from(left.min(PAGE)).unwrap_or(u32::MAX);
        let request = server.requests().flag_history(&key, page_size, before);
        let response = server
            .admin
            .clone()
            .flag_history(server.request(request))
            .await
            .called(server, &format!("reading the history of {key}"))?;
        let HistoryPage { entries, next_before } = HistoryPage::try_from(response).context(MALFORMED)?;
        left = left.saturating_sub(entries.len() as u64);
        printed += entries.len();
        let entries = entries.into_iter().map(Entry::of);
        if out.json {
            collected.extend(entries);
        } else {
            let lines: Vec<String> = entries.map(|entry| entry.line(false)).collect();
            if !lines.is_empty() {
                line(&lines.join("\n"))?;
            }
        }
        before = next_before;
        if before == 0 || left == 0 {
            break;
        }
    }
    if printed == 0 {
        let environment = &server.environment;
        let what =
            asked_before.map_or("no history".to_owned(), |version| format!("no version before {version}"));
        return Err(Failure::NotFound(format!("flag {key:?} has {what} in {environment}")).into());
    }
    let more = (before != 0).then(|| format!("… older versions left: continue with --before {before}"));
    if out.json {
        line(&serde_json::to_string_pretty(&collected)?)?;
        if let Some(more) = more {
            eprintln!("flagctl: {more}");
        }
        return Ok(());
    }
    more.map_or(Ok(()), |more| line(&more))
}
