//! Flags, serves, rules, history and write reports as a person reads them (and as `--json`
//! prints them): the one place every command renders from, so no command reaches into
//! another's module for its output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flag_core::{Flag, HistoryEntry, Operation, SubjectKind, Value};
use serde::Serialize;

// The wording is flag-core's, shared with the console.
pub(crate) use flag_core::{
    clause_text as clause, dark_cohort_text as dark_cohort, off_variant_text as off_variant,
    serve_text as serve, state_text as state,
};

pub(crate) fn value(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".into())
}

/// A served value as JSON (`null` when none was served).
pub(crate) fn value_json(value: Option<&Value>) -> serde_json::Value {
    value.and_then(|value| serde_json::to_value(value).ok()).unwrap_or_default()
}

/// `flag` without what the store sets itself, as a file holds it.
pub(crate) fn as_in_file(mut flag: Flag) -> Flag {
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    flag
}

/// Milliseconds since the epoch → `2026-11-22T02:30:01Z`.
pub(crate) fn time(timestamp_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(timestamp_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Milliseconds since the epoch → `2026-11-22T02:30:01.123Z`: exact, for machines.
pub(crate) fn time_millis(timestamp_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(timestamp_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// How long ago, roughly: `3 min ago`.
pub(crate) fn ago(timestamp_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(timestamp_ms).unwrap_or(0));
    let Ok(elapsed) = SystemTime::now().duration_since(at) else { return "just now".into() };
    let secs = elapsed.as_secs();
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The operation's name as history shows it; a segment's write is a put or a delete.
pub(crate) fn operation(kind: SubjectKind, operation: Operation) -> &'static str {
    match (kind, operation) {
        (SubjectKind::Segment, Operation::Delete) => "delete-segment",
        (SubjectKind::Segment, _) => "put-segment",
        (SubjectKind::Flag, Operation::Create) => "create",
        (SubjectKind::Flag, Operation::Update) => "update",
        (SubjectKind::Flag, Operation::Delete) => "delete",
        (SubjectKind::Flag, Operation::Kill) => "kill",
        (SubjectKind::Flag, Operation::Revive) => "revive",
        (SubjectKind::Flag, Operation::Rollback) => "rollback",
        (SubjectKind::Flag, Operation::SetRollout) => "set-rollout",
        (SubjectKind::Flag, Operation::ServeVariant) => "serve-variant",
        (SubjectKind::Flag, _) => "unknown",
    }
}

/// Who made a change: the actor, and whom it said it acted for when that is someone else
/// (`ci-bot on behalf of ana`).
pub(crate) fn by(actor: &str, on_behalf_of: Option<&str>) -> String {
    match on_behalf_of {
        Some(them) => format!("{actor} on behalf of {them}"),
        None => actor.to_owned(),
    }
}

/// A history entry for people and for `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    pub(crate) environment: String,
    pub(crate) revision: u64,
    pub(crate) key: String,
    pub(crate) kind: &'static str,
    pub(crate) version: u64,
    pub(crate) operation: &'static str,
    pub(crate) actor: String,
    /// Whom the actor (a principal) said it acted for; absent when nobody else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) on_behalf_of: Option<String>,
    pub(crate) reason: String,
    pub(crate) time: String,
    /// What the subject then served; absent for segments and deletes.
    pub(crate) state: Option<String>,
    #[serde(skip)]
    pub(crate) timestamp_ms: i64,
}

impl Entry {
    pub(crate) fn of(entry: HistoryEntry) -> Entry {
        let HistoryEntry {
            environment,
            kind,
            key,
            version,
            revision,
            operation: op,
            actor,
            on_behalf_of,
            reason,
            timestamp_ms,
            flag,
            segment: _,
        } = entry;
        Entry {
            environment,
            revision,
            key,
            kind: if kind == SubjectKind::Segment { "segment" } else { "flag" },
            version,
            operation: operation(kind, op),
            actor,
            on_behalf_of,
            reason,
            time: time(timestamp_ms),
            state: flag.as_ref().map(state),
            timestamp_ms,
        }
    }

    /// `v3  2026-11-22T02:30:01Z  kill  by ana: "incident 4711"` and what it then served.
    pub(crate) fn line(&self, with_key: bool) -> String {
        let subject = if with_key {
            let kind = if self.kind == "segment" { "segment " } else { "" };
            format!("r{:<4} {kind}{} v{}", self.revision, self.key, self.version)
        } else {
            format!("v{:<3} r{}", self.version, self.revision)
        };
        let reason = if self.reason.is_empty() { String::new() } else { format!(": {:?}", self.reason) };
        let state = self.state.as_deref().map(|s| format!("\n        → {s}")).unwrap_or_default();
        format!("{subject}  {}  {} by {}{reason}{state}", self.time, self.operation, self.by())
    }

    /// `ana`, or `ci-bot on behalf of ana`.
    pub(crate) fn by(&self) -> String {
        by(&self.actor, self.on_behalf_of.as_deref())
    }
}

/// What a write did, for people and for `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct WriteReport {
    pub(crate) key: String,
    pub(crate) operation: &'static str,
    pub(crate) version: u64,
    pub(crate) revision: u64,
    /// What the flag now serves; absent after a delete.
    pub(crate) state: Option<String>,
    pub(crate) enabled: Option<bool>,
    /// The on and dark shares of a dark launch with a dark cohort (`5%`, `45%`).
    #[serde(skip)]
    pub(crate) dark: Option<(String, String)>,
}

impl WriteReport {
    pub(crate) fn of(written: &flag_proto::Written) -> WriteReport {
        let flag_proto::Written { revision, entry } = written;
        let flag = entry.flag.as_ref();
        WriteReport {
            key: entry.key.clone(),
            operation: operation(entry.kind, entry.operation),
            version: entry.version,
            revision: *revision,
            state: flag.map(state),
            enabled: flag.map(|flag| flag.enabled),
            dark: flag.and_then(dark_cohort),
        }
    }

    /// `created chat (version 1, revision 7): 5% on, 95% off`.
    pub(crate) fn line(&self, verb: &str) -> String {
        self.line_with(verb, "", true)
    }

    pub(crate) fn line_with(&self, verb: &str, detail: &str, revive_hint: bool) -> String {
        let state = self.state.as_deref().map(|s| format!(": {s}")).unwrap_or_default();
        let mut line = format!(
            "{verb} {}{detail} (version {}, revision {}){state}",
            self.key, self.version, self.revision
        );
        if self.enabled == Some(false) && revive_hint {
            line.push_str(&format!("\n  still killed; `flagctl revive {}` switches it back on", self.key));
        }
        line
    }
}
