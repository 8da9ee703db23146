//! Log: the changes of one environment or of all, filtered, newest first — as the readable
//! log, as `--json`, or as JSON lines with each change's content before and after.
//!
//! flagd answers a page at a time (at most `MAX_LOG_PAGE`); `--limit` counts what is printed,
//! so this follows pages until it is reached. When more changes are left, the cursor to
//! continue with (`--before CURSOR`) ends the table, or goes to stderr after JSON, which then
//! stays one document (`--json`) or one object per line (`jsonl`) on stdout.

use anyhow::Context as _;
use flag_core::{LoggedChange, Operation, Subject};
use flag_proto::{LogCursor, LogEnvironments, LogPage, LogQuery, MAX_LOG_PAGE};
use serde::Serialize;

use crate::cli::{Limit, LogArgs, LogFormat};
use crate::connect::{Call, Server};
use crate::failure::Failure;
use crate::output::{Output, line};
use crate::reads::MALFORMED;
use crate::render::{Entry, time, time_millis};
use crate::times;

pub(crate) async fn log(server: &Server, out: &Output, args: LogArgs) -> anyhow::Result<()> {
    let LogArgs { flags, actor, since, until, actions, all_environments, limit, all, before, format } = args;
    let limit = if all { Limit::All } else { limit };
    let since_ms = since.as_deref().map(|text| time_argument("--since", text)).transpose()?;
    let until_ms = until.as_deref().map(|text| time_argument("--until", text)).transpose()?;
    if let (Some(since_ms), Some(until_ms)) = (since_ms, until_ms)
        && until_ms < since_ms
    {
        return Err(Failure::Invalid(format!(
            "--until: expected a time at or after --since ({}), found {}",
            time(since_ms),
            time(until_ms)
        ))
        .into());
    }
    let environments = if all_environments {
        LogEnvironments::All
    } else {
        LogEnvironments::One(server.environment.clone())
    };
    let cursor = before
        .map(|text| {
            let cursor = text.parse::<LogCursor>()?;
            cursor.continues(&environments).map(|()| cursor)
        })
        .transpose()
        .map_err(|error| Failure::Invalid(format!("--before: {error}")))?;
    let mut query = LogQuery {
        environments,
        flags,
        actor,
        since_ms,
        until_ms,
        actions: actions.iter().map(|name| action(name)).collect::<Result<_, _>>()?,
        page_size: MAX_LOG_PAGE,
        cursor,
    };
    let mut printer = Printer::new(out, format, all_environments);
    let mut left = match limit {
        Limit::Count(count) => count,
        Limit::All => u64::MAX,
    };
    loop {
        query.page_size = u32::try_from(left.min(u64::from(MAX_LOG_PAGE))).unwrap_or(MAX_LOG_PAGE);
        let LogPage { entries, next } = page(server, &query).await?;
        left = left.saturating_sub(entries.len() as u64);
        printer.page(entries)?;
        query.cursor = next;
        if query.cursor.is_none() || left == 0 {
            break;
        }
    }
    printer.finish(query.cursor.as_ref())
}

async fn page(server: &Server, query: &LogQuery) -> anyhow::Result<LogPage> {
    let request = flag_proto::log_request(query);
    let response =
        server.admin.clone().query_log(server.request(request)).await.called(server, "reading the log")?;
    LogPage::try_from(response).context(MALFORMED)
}

/// `--since`/`--until`: RFC 3339, or a duration ago with or without its `-` (`-1h`, `2h`).
fn time_argument(argument: &str, text: &str) -> Result<i64, Failure> {
    let duration = text.strip_prefix('-').unwrap_or(text);
    times::ago_ms(duration).or_else(|| times::rfc3339_ms(text)).ok_or_else(|| {
        Failure::Invalid(format!(
            "{argument}: expected a time (RFC 3339, 2026-12-01T10:00:00Z) or a duration ago (-1h, 30m), \
             found {text:?}"
        ))
    })
}

fn action(name: &str) -> Result<Operation, Failure> {
    Operation::named(name).ok_or_else(|| {
        let known: Vec<&str> = Operation::NAMED.iter().map(|(_, name)| *name).collect();
        Failure::Invalid(format!("--action: expected one of {}, found {name:?}", known.join(", ")))
    })
}

/// Prints entries a page at a time, in the chosen form.
struct Printer<'a> {
    out: &'a Output,
    format: LogFormat,
    /// Each table line names its environment.
    all_environments: bool,
    /// `--json` prints one document: its entries wait for the last page.
    collected: Vec<Entry>,
    printed: usize,
}

impl<'a> Printer<'a> {
    fn new(out: &'a Output, format: LogFormat, all_environments: bool) -> Printer<'a> {
        Printer { out, format, all_environments, collected: Vec::new(), printed: 0 }
    }

    /// Prints a page's entries (one write for the page, however long).
    fn page(&mut self, entries: Vec<LoggedChange>) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.printed += entries.len();
        let mut lines = Vec::with_capacity(entries.len());
        for logged in entries {
            if self.format == LogFormat::Jsonl {
                lines.push(serde_json::to_string(&LogLine::of(logged))?);
                continue;
            }
            let entry = Entry::of(logged.entry);
            if self.out.json {
                self.collected.push(entry);
                continue;
            }
            let text = entry.line(true);
            lines.push(if self.all_environments {
                format!("{:<10}  {text}", entry.environment)
            } else {
                text
            });
        }
        if lines.is_empty() { Ok(()) } else { line(&lines.join("\n")) }
    }

    /// Ends the output, saying how to go on when changes are left.
    fn finish(self, next: Option<&LogCursor>) -> anyhow::Result<()> {
        let more = next.map(|cursor| format!("… older changes left: continue with --before {cursor}"));
        if self.format == LogFormat::Jsonl || self.out.json {
            if self.format != LogFormat::Jsonl {
                line(&serde_json::to_string_pretty(&self.collected)?)?;
            }
            if let Some(more) = more {
                eprintln!("flagctl: {more}");
            }
            return Ok(());
        }
        if self.printed == 0 {
            line("no changes")?;
        }
        more.map_or(Ok(()), |more| line(&more))
    }
}

/// One line of `--format jsonl`: a change, with its subject's content before and after it,
/// so that applying each line's `after` in order replays the log (README: "Audit log").
/// Keep the README's table in step with the fields.
#[derive(Debug, Serialize)]
struct LogLine {
    environment: String,
    revision: u64,
    version: u64,
    key: String,
    /// `flag` or `segment`.
    kind: &'static str,
    /// The operation as history records it (`set_rollout`): what `--action` takes.
    action: &'static str,
    /// The authenticated principal (or, without tokens, the client's actor).
    actor: String,
    /// Whom the client said it acted for; `null` when nobody else.
    on_behalf_of: Option<String>,
    reason: String,
    /// RFC 3339, UTC, with milliseconds.
    time: String,
    /// The content before the change (the previous version); `null` when there was none.
    before: Option<Content>,
    /// The content after it; `null` for a delete.
    after: Option<Content>,
}

/// A flag or a segment in the flag-file format (docs/flag-model.md), `version` and
/// `metadata` as stored.
#[derive(Debug)]
struct Content(Subject);

impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Subject::Flag(flag) => flag.serialize(serializer),
            Subject::Segment(segment) => segment.serialize(serializer),
        }
    }
}

impl LogLine {
    fn of(logged: LoggedChange) -> LogLine {
        let after = logged.after().map(Content);
        let LoggedChange { entry, before } = logged;
        let flag_core::HistoryEntry {
            environment,
            kind,
            key,
            version,
            revision,
            operation,
            actor,
            on_behalf_of,
            reason,
            timestamp_ms,
            flag: _,
            segment: _,
        } = entry;
        LogLine {
            environment,
            revision,
            version,
            key,
            kind: kind.noun(),
            action: operation.name(),
            actor,
            on_behalf_of,
            reason,
            time: time_millis(timestamp_ms),
            before: before.map(Content),
            after,
        }
    }
}
