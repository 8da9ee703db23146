//! What a delivery's body says: the change as JSON, or one line of text for a chat hook.
//!
//! The JSON carries a summary of the subject before and after the change — the fields an
//! on-call reader or a bot acts on (kill state, default serve, counts of rules, variants
//! and prerequisites) — rather than the whole content, so a body stays small whatever the
//! flag's size; the full content of any version is in `Admin.FlagHistory` under
//! (environment, key, version).

use std::time::{Duration, UNIX_EPOCH};

use flag_core::{Flag, HistoryEntry, Operation, Segment, Serve, SubjectKind};
use serde::Serialize;

use crate::store::OutboxEntry;

/// A change as a webhook's JSON body.
#[derive(Debug, Serialize)]
struct Body<'a> {
    webhook: &'a str,
    /// Revisions are comparable only within one store.
    store_id: &'a str,
    environment: &'a str,
    revision: u64,
    kind: SubjectKind,
    key: &'a str,
    /// The subject's version after the change.
    version: u64,
    /// flag-core's `Operation`, snake case (`kill`, `set_rollout`, …).
    action: Operation,
    /// The authenticated principal (or, on a server without tokens, the client's actor).
    actor: &'a str,
    /// Whom the client said it acted for, when that is someone else; `null` otherwise.
    on_behalf_of: Option<&'a str>,
    reason: &'a str,
    /// When the change was committed, RFC 3339 UTC.
    time: String,
    /// `null` when the subject did not exist before (created) …
    before: Option<Summary<'a>>,
    /// … or does not exist after (deleted).
    after: Option<Summary<'a>>,
}

/// A flag's or a segment's state, in brief.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Summary<'a> {
    Flag(FlagSummary<'a>),
    Segment(SegmentSummary),
}

#[derive(Debug, Serialize)]
struct FlagSummary<'a> {
    version: u64,
    enabled: bool,
    /// `!enabled`, said the way incidents say it.
    killed: bool,
    /// In the flag file's form: `{"variant": "on"}` or `{"split": {"weights": […]}}`.
    default: &'a Serve,
    /// `null` for a flag that serves the caller's default while killed.
    off_variant: Option<&'a str>,
    variants: Vec<&'a str>,
    rules: usize,
    prerequisites: usize,
}

#[derive(Debug, Serialize)]
struct SegmentSummary {
    version: u64,
    rules: usize,
    included: usize,
    excluded: usize,
}

fn summary(entry: &HistoryEntry) -> Option<Summary<'_>> {
    if let Some(flag) = &entry.flag {
        return Some(Summary::Flag(flag_summary(flag, entry.version)));
    }
    entry.segment.as_ref().map(|segment| Summary::Segment(segment_summary(segment, entry.version)))
}

fn flag_summary(flag: &Flag, version: u64) -> FlagSummary<'_> {
    FlagSummary {
        version,
        enabled: flag.enabled,
        killed: !flag.enabled,
        default: &flag.default,
        off_variant: flag.off_variant.as_deref(),
        variants: flag.variants.iter().map(|variant| variant.name.as_str()).collect(),
        rules: flag.rules.len(),
        prerequisites: flag.prerequisites.len(),
    }
}

fn segment_summary(segment: &Segment, version: u64) -> SegmentSummary {
    SegmentSummary {
        version,
        rules: segment.rules.len(),
        included: segment.included.len(),
        excluded: segment.excluded.len(),
    }
}

/// RFC 3339 UTC with milliseconds, from ms since the Unix epoch (before 1970: the epoch).
pub(crate) fn rfc3339(timestamp_ms: i64) -> String {
    let since = Duration::from_millis(u64::try_from(timestamp_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(UNIX_EPOCH + since).to_string()
}

/// The JSON body of `change` for webhook `webhook`.
pub(crate) fn json(
    webhook: &str,
    store_id: &str,
    change: &OutboxEntry,
) -> Result<Vec<u8>, serde_json::Error> {
    let OutboxEntry { entry, before } = change;
    let body = Body {
        webhook,
        store_id,
        environment: &entry.environment,
        revision: entry.revision,
        kind: entry.kind,
        key: &entry.key,
        version: entry.version,
        action: entry.operation,
        actor: &entry.actor,
        on_behalf_of: entry.on_behalf_of.as_deref(),
        reason: &entry.reason,
        time: rfc3339(entry.timestamp_ms),
        before: before.as_ref().and_then(summary),
        after: summary(entry),
    };
    serde_json::to_vec(&body)
}

/// The chat body: `{"text": "ana killed chat in production: incident 4711"}`.
pub(crate) fn slack(change: &OutboxEntry) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&serde_json::json!({ "text": escape(&sentence(&change.entry)) }))
}

/// One line an on-call reader understands without the docs.
pub(crate) fn sentence(entry: &HistoryEntry) -> String {
    let subject = match entry.kind {
        SubjectKind::Flag => entry.key.clone(),
        SubjectKind::Segment => format!("segment {}", entry.key),
    };
    let did = match entry.operation {
        Operation::Create => format!("created {subject}"),
        Operation::Update => format!("updated {subject}"),
        Operation::Delete => format!("deleted {subject}"),
        Operation::Kill => format!("killed {subject}"),
        Operation::Revive => format!("revived {subject}"),
        Operation::Rollback => format!("rolled back {subject} to an earlier version"),
        Operation::SetRollout => match rollout(entry.flag.as_ref()) {
            Some((on, dark)) if dark > on => format!("set {subject} to {on} % (dark launch to {dark} %)"),
            Some((on, _)) => format!("set {subject} to {on} %"),
            None => format!("changed the rollout of {subject}"),
        },
        Operation::ServeVariant => match entry.flag.as_ref().map(|flag| &flag.default) {
            Some(Serve::Variant(variant)) => format!("made {subject} serve {variant}"),
            _ => format!("changed what {subject} serves"),
        },
        _ => format!("changed {subject}"),
    };
    let actor = match (entry.actor.as_str(), &entry.on_behalf_of) {
        ("", _) => "someone".to_owned(),
        (actor, Some(them)) => format!("{actor} on behalf of {them}"),
        (actor, None) => actor.to_owned(),
    };
    let mut line = format!("{actor} {did} in {}", entry.environment);
    if !entry.reason.is_empty() {
        line.push_str(": ");
        line.push_str(&entry.reason);
    }
    line
}

/// The rollout and dark-launch percentages of a dark-launch default.
fn rollout(flag: Option<&Flag>) -> Option<(f64, f64)> {
    match &flag?.default {
        Serve::Split(split) => split.dark_launch_percentages(),
        Serve::Variant(_) | Serve::CallerDefault => None,
    }
}

/// Slack's three control characters, escaped as its message format asks.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(operation: Operation, flag: Option<Flag>) -> HistoryEntry {
        HistoryEntry {
            environment: "production".into(),
            kind: SubjectKind::Flag,
            key: "chat".into(),
            version: 3,
            revision: 42,
            operation,
            actor: "ana".into(),
            on_behalf_of: None,
            reason: "incident 4711".into(),
            timestamp_ms: 1_798_761_600_123,
            flag,
            segment: None,
        }
    }

    #[test]
    fn the_slack_line_reads_as_a_sentence() {
        let mut killed = Flag::rollout("chat", 5.0).unwrap();
        killed.enabled = false;
        assert_eq!(
            sentence(&entry(Operation::Kill, Some(killed))),
            "ana killed chat in production: incident 4711"
        );
        let ramp = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
        assert_eq!(
            sentence(&entry(Operation::SetRollout, Some(ramp))),
            "ana set chat to 5 % (dark launch to 50 %) in production: incident 4711"
        );
        let mut quiet = entry(Operation::Delete, None);
        (quiet.actor, quiet.reason, quiet.kind) = (String::new(), String::new(), SubjectKind::Segment);
        assert_eq!(sentence(&quiet), "someone deleted segment chat in production");
        let mut for_ana = entry(Operation::Revive, None);
        (for_ana.actor, for_ana.on_behalf_of) = ("ci-bot".into(), Some("ana".into()));
        assert_eq!(sentence(&for_ana), "ci-bot on behalf of ana revived chat in production: incident 4711");
    }

    #[test]
    fn slack_bodies_escape_its_control_characters() {
        let mut change = OutboxEntry { entry: entry(Operation::Update, None), before: None };
        change.entry.reason = "a<b & c>d".into();
        let body: serde_json::Value = serde_json::from_slice(&slack(&change).unwrap()).unwrap();
        assert_eq!(body["text"], "ana updated chat in production: a&lt;b &amp; c&gt;d");
    }

    #[test]
    fn json_bodies_summarise_before_and_after() {
        let before = Flag::rollout("chat", 5.0).unwrap();
        let mut after = before.clone();
        after.enabled = false;
        let change = OutboxEntry {
            entry: entry(Operation::Kill, Some(after)),
            before: Some(HistoryEntry { version: 2, ..entry(Operation::SetRollout, Some(before)) }),
        };
        let body: serde_json::Value =
            serde_json::from_slice(&json("wh-1", "00ff", &change).unwrap()).unwrap();
        assert_eq!(body["action"], "kill");
        assert_eq!(body["kind"], "flag");
        assert_eq!(body["time"], "2027-01-01T00:00:00.123Z");
        assert_eq!(
            (body["before"]["killed"].clone(), body["after"]["killed"].clone()),
            (false.into(), true.into())
        );
        assert_eq!(body["before"]["version"], 2);
        assert_eq!(body["after"]["variants"], serde_json::json!(["on", "dark", "off"]));
        assert!(body["after"]["default"]["split"]["weights"].is_array(), "{body}");
    }
}
