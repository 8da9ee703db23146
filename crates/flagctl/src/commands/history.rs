//! History: one flag's versions.

use anyhow::Context as _;
use flag_proto::HistoryPage;

use crate::cli::HistoryArgs;
use crate::connect::{Call, Server};
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::render::Entry;

pub(crate) async fn history(server: &Server, out: &Output, args: HistoryArgs) -> anyhow::Result<()> {
    let HistoryArgs { key, limit } = args;
    let request = server.requests().flag_history(&key, limit, 0);
    let response = server
        .admin
        .clone()
        .flag_history(server.request(request))
        .await
        .called(server, &format!("reading the history of {key}"))?;
    let response = HistoryPage::try_from(response).context(MALFORMED)?;
    if response.entries.is_empty() {
        return Err(crate::failure::Failure::NotFound(format!(
            "flag {key:?} has no history in {}",
            server.environment
        ))
        .into());
    }
    print(out, response)
}

fn print(out: &Output, response: HistoryPage) -> anyhow::Result<()> {
    let entries: Vec<Entry> = response.entries.into_iter().map(Entry::of).collect();
    out.print(&entries, || {
        let mut lines: Vec<String> = entries.iter().map(|e| e.line(false)).collect();
        if lines.is_empty() {
            lines.push("no changes".into());
        }
        if response.next_before != 0 {
            lines.push("… older entries not shown (--limit)".into());
        }
        lines.join("\n")
    })
}
