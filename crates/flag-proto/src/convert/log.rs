//! `QueryLog`: the audit log's filters and cursor in the request, its entries (each with the
//! content before and after the change) in the answer.
//!
//! The request is checked here, as the server reads it, so every refusal names the request
//! field: an unknown action, `until` before `since`, a page size out of range, a cursor that
//! is not one. The cursor travels as text (`production=42,staging=17`): for each environment
//! still to read, the revision its next entry is at or below. A position per environment,
//! rather than one (time, environment, revision) key, makes a page boundary exact whatever
//! the clocks did: each environment's entries are walked in revision order, so the next page
//! starts exactly where this one stopped.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use flag_core as core;

use super::records::history_entry_from_proto;
use super::{InvalidMessage, Path, flag_from_proto, segment_from_proto};
use crate::v1;

/// The largest page `QueryLog` answers.
pub const MAX_LOG_PAGE: u32 = 1000;

/// Which environments a log query reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnvironments {
    /// One ("production" when empty, as the server reads it).
    One(String),
    /// Every environment that has a log.
    All,
}

/// What a `QueryLog` asks for. Filters combine: an entry is listed when it passes every one.
#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    /// The environments read.
    pub environments: LogEnvironments,
    /// Only these flags' changes (segments left out); every change when empty.
    pub flags: Vec<String>,
    /// Only changes by this actor, exactly.
    pub actor: Option<String>,
    /// Only changes committed at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only changes committed at or before this time (ms since the Unix epoch).
    pub until_ms: Option<i64>,
    /// Only these operations; every one when empty.
    pub actions: Vec<core::Operation>,
    /// At most this many entries, 1 to [`MAX_LOG_PAGE`].
    pub page_size: u32,
    /// Where the previous page stopped; the newest entries when `None`.
    pub cursor: Option<LogCursor>,
}

/// Where a log query continues: for each environment with entries left, the revision its
/// next entry is at or below. Written as `production=42,staging=17`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogCursor {
    positions: BTreeMap<String, u64>,
}

impl LogCursor {
    /// A cursor from (environment, revision) positions; revisions of 0 (nothing left) are
    /// left out. `None` when no position is left: the log is read to its end.
    pub fn new(positions: impl IntoIterator<Item = (String, u64)>) -> Option<LogCursor> {
        let positions: BTreeMap<String, u64> =
            positions.into_iter().filter(|(_, revision)| *revision > 0).collect();
        (!positions.is_empty()).then_some(LogCursor { positions })
    }

    /// Each environment with entries left and the revision its next entry is at or below,
    /// by name.
    pub fn positions(&self) -> impl Iterator<Item = (&str, u64)> {
        self.positions.iter().map(|(environment, revision)| (environment.as_str(), *revision))
    }
}

impl fmt::Display for LogCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (environment, revision)) in self.positions.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(f, "{separator}{environment}={revision}")?;
        }
        Ok(())
    }
}

impl LogCursor {
    /// Refused unless this cursor can continue a query of `environments`: a one-environment
    /// query's cursor names that environment alone (a cursor of all environments continues
    /// exactly the environments it names).
    pub fn continues(&self, environments: &LogEnvironments) -> Result<(), InvalidCursor> {
        let LogEnvironments::One(environment) = environments else { return Ok(()) };
        match self.positions().find(|(named, _)| named != environment) {
            Some((other, _)) => Err(InvalidCursor::OtherEnvironment {
                environment: environment.clone(),
                other: other.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// Why a text is not a [`LogCursor`], or not one for the query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCursor {
    /// Not a cursor.
    #[error("expected a cursor as the previous page gave it (ENV=REVISION,…), found {found:?}")]
    Malformed {
        /// The text.
        found: String,
    },
    /// A cursor of another environment's log.
    #[error("expected a cursor of environment {environment:?}'s log, found one that continues {other:?}'s")]
    OtherEnvironment {
        /// The environment queried.
        environment: String,
        /// An environment the cursor continues.
        other: String,
    },
}

impl FromStr for LogCursor {
    type Err = InvalidCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCursor::Malformed { found: text.to_owned() };
        let mut positions = BTreeMap::new();
        for position in text.split(',') {
            let (environment, revision) = position.split_once('=').ok_or_else(invalid)?;
            let revision: u64 = revision.parse().map_err(|_| invalid())?;
            if environment.is_empty()
                || revision == 0
                || positions.insert(environment.to_owned(), revision).is_some()
            {
                return Err(invalid());
            }
        }
        Ok(LogCursor { positions })
    }
}

/// `QueryLog` of `query`.
pub fn log_request(query: &LogQuery) -> v1::QueryLogRequest {
    let LogQuery { environments, flags, actor, since_ms, until_ms, actions, page_size, cursor } = query;
    let (environment, all_environments) = match environments {
        LogEnvironments::One(environment) => (environment.clone(), false),
        LogEnvironments::All => (String::new(), true),
    };
    v1::QueryLogRequest {
        environment,
        all_environments,
        flags: flags.clone(),
        actor: actor.clone().unwrap_or_default(),
        since_unix_ms: *since_ms,
        until_unix_ms: *until_ms,
        actions: actions.iter().map(|operation| operation.name().to_owned()).collect(),
        page_size: *page_size,
        cursor: cursor.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

/// `QueryLog`'s request as the server reads it; refused, naming the field, with both an
/// environment and all environments, an empty flag key, an unknown action, `until` before
/// `since`, a page size of 0 or over [`MAX_LOG_PAGE`], or a cursor that is not one (or that
/// continues a query of other environments).
pub fn log_request_from_proto(request: v1::QueryLogRequest) -> Result<LogQuery, InvalidMessage> {
    let v1::QueryLogRequest {
        environment,
        all_environments,
        flags,
        actor,
        since_unix_ms,
        until_unix_ms,
        actions,
        page_size,
        cursor,
    } = request;
    let environments = match (all_environments, environment.is_empty()) {
        (true, false) => {
            return Err(Path::Root("all_environments")
                .invalid(format!("not set together with an environment ({environment:?})")));
        }
        (true, true) => LogEnvironments::All,
        (false, _) => LogEnvironments::One(crate::environment_or_default(&environment).to_owned()),
    };
    let root = Path::Root("flags");
    if let Some(empty) = flags.iter().position(String::is_empty) {
        return Err(root.index(empty).invalid("a flag key, found \"\""));
    }
    let root = Path::Root("actions");
    let actions = actions
        .iter()
        .enumerate()
        .map(|(i, name)| {
            core::Operation::named(name).ok_or_else(|| {
                let known: Vec<&str> = core::Operation::NAMED.iter().map(|(_, name)| *name).collect();
                root.index(i).invalid(format!("one of {}, found {name:?}", known.join(", ")))
            })
        })
        .collect::<Result<_, _>>()?;
    if let (Some(since), Some(until)) = (since_unix_ms, until_unix_ms)
        && until < since
    {
        return Err(Path::Root("until_unix_ms")
            .invalid(format!("a time at or after since_unix_ms ({since}), found {until}")));
    }
    if !(1..=MAX_LOG_PAGE).contains(&page_size) {
        return Err(Path::Root("page_size").invalid(format!("1 to {MAX_LOG_PAGE}, found {page_size}")));
    }
    let cursor = cursor_from_proto(&cursor, &environments)?;
    Ok(LogQuery {
        environments,
        flags,
        actor: (!actor.is_empty()).then_some(actor),
        since_ms: since_unix_ms,
        until_ms: until_unix_ms,
        actions,
        page_size,
        cursor,
    })
}

fn cursor_from_proto(
    text: &str,
    environments: &LogEnvironments,
) -> Result<Option<LogCursor>, InvalidMessage> {
    if text.is_empty() {
        return Ok(None);
    }
    let path = Path::Root("cursor");
    let cursor = LogCursor::from_str(text).map_err(|error| path.invalid(error.to_string()))?;
    cursor.continues(environments).map_err(|error| path.invalid(error.to_string()))?;
    Ok(Some(cursor))
}

/// The answer to `QueryLog`: `entries` newest first, and where the next page starts
/// (`None`: nothing is left).
pub fn log_response(entries: &[core::LoggedChange], next: Option<&LogCursor>) -> v1::QueryLogResponse {
    v1::QueryLogResponse {
        entries: entries.iter().map(v1::LogEntry::from).collect(),
        next_cursor: next.map(ToString::to_string).unwrap_or_default(),
    }
}

impl From<&core::LoggedChange> for v1::LogEntry {
    fn from(change: &core::LoggedChange) -> Self {
        let core::LoggedChange { entry, before } = change;
        let (flag_before, segment_before) = match before {
            Some(core::Subject::Flag(flag)) => (Some(v1::Flag::from(flag)), None),
            Some(core::Subject::Segment(segment)) => (None, Some(v1::Segment::from(segment))),
            None => (None, None),
        };
        v1::LogEntry { entry: Some(v1::HistoryEntry::from(entry)), flag_before, segment_before }
    }
}

/// A page of the log as the client reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogPage {
    /// Newest first.
    pub entries: Vec<core::LoggedChange>,
    /// Pass as the next query's cursor; `None` when nothing is left.
    pub next: Option<LogCursor>,
}

impl TryFrom<v1::QueryLogResponse> for LogPage {
    type Error = InvalidMessage;

    fn try_from(response: v1::QueryLogResponse) -> Result<Self, Self::Error> {
        let v1::QueryLogResponse { entries, next_cursor } = response;
        let root = Path::Root("entries");
        let entries = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| logged_change_from_proto(entry, &root.index(i)))
            .collect::<Result<_, _>>()?;
        let next = if next_cursor.is_empty() {
            None
        } else {
            let cursor = LogCursor::from_str(&next_cursor);
            Some(cursor.map_err(|error| Path::Root("next_cursor").invalid(error.to_string()))?)
        };
        Ok(LogPage { entries, next })
    }
}

fn logged_change_from_proto(
    entry: v1::LogEntry,
    path: &Path<'_>,
) -> Result<core::LoggedChange, InvalidMessage> {
    let v1::LogEntry { entry, flag_before, segment_before } = entry;
    let entry_path = path.field("entry");
    let entry = entry.ok_or_else(|| entry_path.invalid("the change"))?;
    let mut entry = history_entry_from_proto(entry, &entry_path)?;
    let before = match (entry.kind, flag_before, segment_before) {
        (core::SubjectKind::Flag, Some(flag), _) => {
            Some(core::Subject::Flag(flag_from_proto(flag, &path.field("flag_before"))?))
        }
        (core::SubjectKind::Segment, _, Some(segment)) => {
            Some(core::Subject::Segment(segment_from_proto(segment, &path.field("segment_before"))?))
        }
        _ => None,
    };
    // The wire calls every segment write that leaves content a put, which reads back as an
    // update; with nothing before it, it was a create (the store records it so).
    if entry.kind == core::SubjectKind::Segment
        && entry.operation == core::Operation::Update
        && before.is_none()
        && entry.segment.is_some()
    {
        entry.operation = core::Operation::Create;
    }
    Ok(core::LoggedChange { entry, before })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> LogQuery {
        LogQuery {
            environments: LogEnvironments::One("staging".into()),
            flags: vec!["chat".into(), "search".into()],
            actor: Some("ana".into()),
            since_ms: Some(1_700_000_000_000),
            until_ms: Some(1_700_000_360_000),
            actions: vec![core::Operation::Kill, core::Operation::SetRollout],
            page_size: 50,
            cursor: LogCursor::new([("staging".to_owned(), 42)]),
        }
    }

    #[test]
    fn a_query_survives_the_wire() {
        let query = query();
        let wire = log_request(&query);
        assert_eq!(wire.actions, ["kill", "set_rollout"]);
        assert_eq!(wire.cursor, "staging=42");
        assert_eq!(log_request_from_proto(wire).unwrap(), query);
        let all = LogQuery { environments: LogEnvironments::All, cursor: None, actor: None, ..query };
        assert_eq!(log_request_from_proto(log_request(&all)).unwrap(), all);
        let default = v1::QueryLogRequest { page_size: 1, ..Default::default() };
        assert_eq!(
            log_request_from_proto(default).unwrap().environments,
            LogEnvironments::One("production".into())
        );
    }

    #[test]
    fn bad_filters_are_refused_naming_the_field() {
        let refused = |change: fn(&mut v1::QueryLogRequest)| {
            let mut wire = log_request(&query());
            change(&mut wire);
            log_request_from_proto(wire).unwrap_err()
        };
        let error = refused(|wire| wire.actions.push("explode".into()));
        assert_eq!(error.path, "actions[2]");
        assert!(error.expected.contains("one of create, update, delete, kill"), "{error}");
        assert!(error.expected.contains("found \"explode\""), "{error}");
        let error = refused(|wire| wire.until_unix_ms = Some(1_600_000_000_000));
        assert_eq!(error.path, "until_unix_ms");
        assert!(error.expected.contains("at or after since_unix_ms (1700000000000)"), "{error}");
        for size in [0, MAX_LOG_PAGE + 1] {
            let mut wire = log_request(&query());
            wire.page_size = size;
            let error = log_request_from_proto(wire).unwrap_err();
            assert_eq!(error.path, "page_size");
            assert_eq!(error.expected, format!("1 to 1000, found {size}"));
        }
        assert_eq!(refused(|wire| wire.all_environments = true).path, "all_environments");
        assert_eq!(refused(|wire| wire.flags.push(String::new())).path, "flags[2]");
        for cursor in ["staging", "staging=0", "staging=x", "=4", "staging=4,staging=5", "staging=4,"] {
            let mut wire = log_request(&query());
            wire.cursor = cursor.into();
            assert_eq!(log_request_from_proto(wire).unwrap_err().path, "cursor", "{cursor}");
        }
        let error = refused(|wire| wire.cursor = "production=7".into());
        assert!(error.expected.contains("continues \"production\"'s"), "{error}");
    }

    #[test]
    fn a_cursor_is_its_positions_by_environment_and_none_when_nothing_is_left() {
        let cursor = LogCursor::new([("staging".to_owned(), 17), ("production".to_owned(), 42)]).unwrap();
        assert_eq!(cursor.to_string(), "production=42,staging=17");
        assert_eq!(cursor.to_string().parse::<LogCursor>().unwrap(), cursor);
        assert_eq!(LogCursor::new([("production".to_owned(), 0)]), None);
    }

    #[test]
    fn entries_keep_both_sides_and_a_segment_put_over_nothing_reads_as_a_create() {
        let entry =
            |kind, operation, flag: Option<core::Flag>, segment: Option<core::Segment>| core::HistoryEntry {
                environment: "production".into(),
                kind,
                key: "chat".into(),
                version: 2,
                revision: 9,
                operation,
                actor: "ci-bot".into(),
                on_behalf_of: Some("ana".into()),
                reason: "ramp".into(),
                timestamp_ms: 1_700_000_000_000,
                flag,
                segment,
            };
        let flag = |percent| core::Flag::rollout("chat", percent).unwrap();
        let ramp = core::LoggedChange {
            entry: entry(core::SubjectKind::Flag, core::Operation::SetRollout, Some(flag(50.0)), None),
            before: Some(core::Subject::Flag(flag(5.0))),
        };
        let segment = core::Segment {
            key: "staff".into(),
            description: String::new(),
            included: vec!["ana".into()],
            excluded: vec![],
            rules: vec![],
        };
        let created = core::LoggedChange {
            entry: entry(core::SubjectKind::Segment, core::Operation::Create, None, Some(segment.clone())),
            before: None,
        };
        let updated = core::LoggedChange {
            entry: entry(core::SubjectKind::Segment, core::Operation::Update, None, Some(segment.clone())),
            before: Some(core::Subject::Segment(segment)),
        };
        let next = LogCursor::new([("production".to_owned(), 8)]);
        let sent = [ramp, created, updated];
        let page = LogPage::try_from(log_response(&sent, next.as_ref())).unwrap();
        assert_eq!(page, LogPage { entries: sent.to_vec(), next });
        assert_eq!(page.entries[0].after(), Some(core::Subject::Flag(flag(50.0))));
    }
}
