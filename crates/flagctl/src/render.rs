//! Flags, serves, rules, history and write reports as a person reads them (and as `--json`
//! prints them): the one place every command renders from, so no command reaches into
//! another's module for its output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flag_core::{Clause, Flag, HistoryEntry, Operation, Serve, Split, SubjectKind, Value};
use serde::Serialize;

/// `5000` of 100 000 → `5%`, `12500` → `12.5%`, `1` of 4 → `25%`.
pub(crate) fn percent(weight: i64, total: i64) -> String {
    let hundredths_of_thousandths = weight as f64 * 100.0 / total.max(1) as f64;
    let text = format!("{hundredths_of_thousandths:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// What a serve gives: `5% on, 45% dark, 50% off`, `everyone gets "blue"`.
pub(crate) fn serve(serve: &Serve) -> String {
    match serve {
        Serve::Variant(variant) => format!("everyone gets {variant:?}"),
        Serve::Split(split) => split_text(split),
        Serve::CallerDefault => "everyone gets the caller's default".to_owned(),
    }
}

/// What a flag serves while killed: `"off"`, or the caller's default.
pub(crate) fn off_variant(flag: &Flag) -> String {
    flag.off_variant.as_ref().map_or_else(|| "the caller's default".to_owned(), |off| format!("{off:?}"))
}

fn split_text(split: &Split) -> String {
    let parts: Vec<String> = split
        .weights
        .iter()
        .filter(|w| w.weight > 0)
        .map(|w| format!("{} {}", percent(w.weight, split.total_weight()), w.variant))
        .collect();
    let mut text = if parts.is_empty() { "nobody (all weights 0)".to_owned() } else { parts.join(", ") };
    if let Some(by) = &split.by {
        text.push_str(&format!(" (bucketed by {by})"));
    }
    text
}

/// The on and dark shares (`5%`, `45%`) of a live dark launch with a dark cohort.
pub(crate) fn dark_cohort(flag: &Flag) -> Option<(String, String)> {
    let Serve::Split(split) = &flag.default else { return None };
    let weight = |name: &str| split.weights.iter().find(|w| w.variant == name).map_or(0, |w| w.weight);
    let dark = weight(flag_core::DARK);
    let total = split.total_weight();
    (flag.enabled && dark > 0).then(|| (percent(weight(flag_core::ON), total), percent(dark, total)))
}

/// One line for a flag's state: what it serves, or that it is killed.
pub(crate) fn state(flag: &Flag) -> String {
    if flag.enabled { serve(&flag.default) } else { format!("KILLED: everyone gets {}", off_variant(flag)) }
}

/// `country in ["NZ", "AU"]`, `not plan starts_with ["trial"]`.
pub(crate) fn clause(clause: &Clause) -> String {
    let op =
        serde_json::to_value(clause.op).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let values: Vec<String> = clause.values.iter().map(|v| format!("{:?}", v.0)).collect();
    let negate = if clause.negate { "not " } else { "" };
    format!("{negate}{} {op} [{}]", clause.attribute, values.join(", "))
}

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

#[cfg(test)]
mod tests {
    use flag_core::TOTAL_WEIGHT;

    use super::*;

    #[test]
    fn percentages_print_without_trailing_zeros() {
        let total = i64::from(TOTAL_WEIGHT);
        assert_eq!(percent(5_000, total), "5%");
        assert_eq!(percent(12_500, total), "12.5%");
        assert_eq!(percent(1, total), "0.001%");
        assert_eq!(percent(100_000, total), "100%");
        assert_eq!(percent(1, 4), "25%");
        assert_eq!(percent(1, 3), "33.333%");
    }

    #[test]
    fn a_dark_launch_split_reads_as_its_three_cohorts() {
        let flag = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
        assert_eq!(state(&flag), "5% on, 45% dark, 50% off");
        let mut killed = flag;
        killed.enabled = false;
        assert_eq!(state(&killed), "KILLED: everyone gets \"off\"");
        killed.off_variant = None;
        assert_eq!(state(&killed), "KILLED: everyone gets the caller's default");
    }
}
