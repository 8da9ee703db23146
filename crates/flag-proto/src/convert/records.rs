//! History entries, applied changes and acknowledgement reports ⇄ flags.v1.
//!
//! The wire names segment writes apart (`PUT_SEGMENT`, `DELETE_SEGMENT`) and marks the
//! subject with `is_segment`; flag-core keeps one [`core::Operation`] and a
//! [`core::SubjectKind`]. A segment's put reads back as an update.

use std::time::Duration;

use flag_core as core;

use super::{InvalidMessage, Path, flag_from_proto, segment_from_proto};
use crate::v1;

/// `Duration` in whole milliseconds for the wire (saturating).
pub(crate) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn operation_to_proto(kind: core::SubjectKind, operation: core::Operation) -> v1::Operation {
    use core::Operation as Op;
    use core::SubjectKind as Kind;
    match (kind, operation) {
        (Kind::Segment, Op::Delete) => v1::Operation::DeleteSegment,
        (Kind::Segment, _) => v1::Operation::PutSegment,
        (Kind::Flag, Op::Create) => v1::Operation::Create,
        (Kind::Flag, Op::Update) => v1::Operation::Update,
        (Kind::Flag, Op::Delete) => v1::Operation::Delete,
        (Kind::Flag, Op::Kill) => v1::Operation::Kill,
        (Kind::Flag, Op::Revive) => v1::Operation::Revive,
        (Kind::Flag, Op::Rollback) => v1::Operation::Rollback,
        (Kind::Flag, Op::SetRollout) => v1::Operation::SetRollout,
        (Kind::Flag, Op::ServeVariant) => v1::Operation::ServeVariant,
        // flag-core's enum is non-exhaustive; an operation added there reads as
        // "unspecified" until the contract names it.
        (Kind::Flag, _) => v1::Operation::Unspecified,
    }
}

fn operation_from_proto(operation: i32, path: &Path<'_>) -> Result<core::Operation, InvalidMessage> {
    use core::Operation as Op;
    Ok(match v1::Operation::try_from(operation) {
        Ok(v1::Operation::Create) => Op::Create,
        Ok(v1::Operation::Update | v1::Operation::PutSegment) => Op::Update,
        Ok(v1::Operation::Delete | v1::Operation::DeleteSegment) => Op::Delete,
        Ok(v1::Operation::Kill) => Op::Kill,
        Ok(v1::Operation::Revive) => Op::Revive,
        Ok(v1::Operation::Rollback) => Op::Rollback,
        Ok(v1::Operation::SetRollout) => Op::SetRollout,
        Ok(v1::Operation::ServeVariant) => Op::ServeVariant,
        Ok(v1::Operation::Unspecified) | Err(_) => {
            return Err(path.invalid(format!("a known operation (OPERATION_CREATE …), found {operation}")));
        }
    })
}

fn kind_of(is_segment: bool) -> core::SubjectKind {
    if is_segment { core::SubjectKind::Segment } else { core::SubjectKind::Flag }
}

impl From<&core::HistoryEntry> for v1::HistoryEntry {
    fn from(entry: &core::HistoryEntry) -> Self {
        let core::HistoryEntry {
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
            flag,
            segment,
        } = entry;
        v1::HistoryEntry {
            environment: environment.clone(),
            key: key.clone(),
            is_segment: *kind == core::SubjectKind::Segment,
            version: *version,
            revision: *revision,
            operation: operation_to_proto(*kind, *operation) as i32,
            actor: actor.clone(),
            reason: reason.clone(),
            timestamp_ms: *timestamp_ms,
            flag: flag.as_ref().map(v1::Flag::from),
            segment: segment.as_ref().map(v1::Segment::from),
            on_behalf_of: on_behalf_of.clone().unwrap_or_default(),
        }
    }
}

impl TryFrom<v1::HistoryEntry> for core::HistoryEntry {
    type Error = InvalidMessage;

    fn try_from(entry: v1::HistoryEntry) -> Result<Self, Self::Error> {
        history_entry_from_proto(entry, &Path::Root("entry"))
    }
}

pub(crate) fn history_entry_from_proto(
    entry: v1::HistoryEntry,
    path: &Path<'_>,
) -> Result<core::HistoryEntry, InvalidMessage> {
    let v1::HistoryEntry {
        environment,
        key,
        is_segment,
        version,
        revision,
        operation,
        actor,
        reason,
        timestamp_ms,
        flag,
        segment,
        on_behalf_of,
    } = entry;
    let flag = flag.map(|flag| flag_from_proto(flag, &path.field("flag"))).transpose()?;
    let segment = segment.map(|segment| segment_from_proto(segment, &path.field("segment"))).transpose()?;
    Ok(core::HistoryEntry {
        environment,
        kind: kind_of(is_segment),
        key,
        version,
        revision,
        operation: operation_from_proto(operation, &path.field("operation"))?,
        actor,
        on_behalf_of: (!on_behalf_of.is_empty()).then_some(on_behalf_of),
        reason,
        timestamp_ms,
        flag,
        segment,
    })
}

impl From<&core::AppliedChange> for v1::AppliedChange {
    fn from(change: &core::AppliedChange) -> Self {
        let core::AppliedChange { kind, key, operation, version, before, after } = change;
        let flag = |subject: &Option<core::Subject>| match subject {
            Some(core::Subject::Flag(flag)) => Some(v1::Flag::from(flag)),
            _ => None,
        };
        let segment = |subject: &Option<core::Subject>| match subject {
            Some(core::Subject::Segment(segment)) => Some(v1::Segment::from(segment)),
            _ => None,
        };
        v1::AppliedChange {
            key: key.clone(),
            is_segment: *kind == core::SubjectKind::Segment,
            // An apply only creates, updates or deletes, segments included.
            operation: operation_to_proto(core::SubjectKind::Flag, *operation) as i32,
            version: *version,
            flag_before: flag(before),
            flag_after: flag(after),
            segment_before: segment(before),
            segment_after: segment(after),
        }
    }
}

impl TryFrom<v1::AppliedChange> for core::AppliedChange {
    type Error = InvalidMessage;

    fn try_from(change: v1::AppliedChange) -> Result<Self, Self::Error> {
        applied_change_from_proto(change, &Path::Root("change"))
    }
}

pub(crate) fn applied_change_from_proto(
    change: v1::AppliedChange,
    path: &Path<'_>,
) -> Result<core::AppliedChange, InvalidMessage> {
    let v1::AppliedChange {
        key,
        is_segment,
        operation,
        version,
        flag_before,
        flag_after,
        segment_before,
        segment_after,
    } = change;
    let subject = |flag: Option<v1::Flag>, segment: Option<v1::Segment>, side: &'static str| {
        let side = path.field(side);
        match (is_segment, flag, segment) {
            (false, Some(flag), _) => {
                flag_from_proto(flag, &side).map(|flag| Some(core::Subject::Flag(flag)))
            }
            (true, _, Some(segment)) => {
                segment_from_proto(segment, &side).map(|segment| Some(core::Subject::Segment(segment)))
            }
            _ => Ok(None),
        }
    };
    Ok(core::AppliedChange {
        kind: kind_of(is_segment),
        key,
        operation: operation_from_proto(operation, &path.field("operation"))?,
        version,
        before: subject(
            flag_before,
            segment_before,
            if is_segment { "segment_before" } else { "flag_before" },
        )?,
        after: subject(flag_after, segment_after, if is_segment { "segment_after" } else { "flag_after" })?,
    })
}

impl From<&core::AckReport> for v1::AckReport {
    fn from(report: &core::AckReport) -> Self {
        let core::AckReport {
            revision,
            connected,
            acknowledged,
            slowest,
            missing,
            open_feature_streams,
            open_feature_sent,
        } = report;
        v1::AckReport {
            revision: *revision,
            connected: *connected,
            acknowledged: *acknowledged,
            slowest_ms: millis(*slowest),
            missing: missing.clone(),
            open_feature_streams: *open_feature_streams,
            open_feature_sent: *open_feature_sent,
        }
    }
}

impl From<v1::AckReport> for core::AckReport {
    fn from(report: v1::AckReport) -> Self {
        let v1::AckReport {
            revision,
            connected,
            acknowledged,
            slowest_ms,
            missing,
            open_feature_streams,
            open_feature_sent,
        } = report;
        core::AckReport {
            revision,
            connected,
            acknowledged,
            slowest: Duration::from_millis(u64::from(slowest_ms)),
            missing,
            open_feature_streams,
            open_feature_sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: core::SubjectKind, operation: core::Operation) -> core::HistoryEntry {
        core::HistoryEntry {
            environment: "staging".into(),
            kind,
            key: "chat".into(),
            version: 3,
            revision: 9,
            operation,
            actor: "ana".into(),
            on_behalf_of: None,
            reason: "incident 4711".into(),
            timestamp_ms: 1_700_000_000_000,
            flag: (kind == core::SubjectKind::Flag).then(|| core::Flag::rollout("chat", 5.0).unwrap()),
            segment: None,
        }
    }

    #[test]
    fn a_history_entry_survives_a_round_trip() {
        for operation in [core::Operation::Create, core::Operation::Kill, core::Operation::ServeVariant] {
            let entry = entry(core::SubjectKind::Flag, operation);
            assert_eq!(core::HistoryEntry::try_from(v1::HistoryEntry::from(&entry)).unwrap(), entry);
        }
    }

    #[test]
    fn whom_a_principal_acted_for_survives_a_round_trip_and_empty_is_nobody() {
        let mut entry = entry(core::SubjectKind::Flag, core::Operation::Kill);
        entry.actor = "ci-bot".into();
        entry.on_behalf_of = Some("ana".into());
        let wire = v1::HistoryEntry::from(&entry);
        assert_eq!((wire.actor.as_str(), wire.on_behalf_of.as_str()), ("ci-bot", "ana"));
        assert_eq!(core::HistoryEntry::try_from(wire).unwrap(), entry);
        let mut wire = v1::HistoryEntry::from(&entry);
        wire.on_behalf_of.clear();
        assert_eq!(core::HistoryEntry::try_from(wire).unwrap().on_behalf_of, None);
    }

    #[test]
    fn segment_writes_are_puts_and_deletes_on_the_wire() {
        let put = v1::HistoryEntry::from(&entry(core::SubjectKind::Segment, core::Operation::Create));
        assert_eq!((put.operation, put.is_segment), (v1::Operation::PutSegment as i32, true));
        assert_eq!(core::HistoryEntry::try_from(put).unwrap().operation, core::Operation::Update);
        let delete = v1::HistoryEntry::from(&entry(core::SubjectKind::Segment, core::Operation::Delete));
        assert_eq!(delete.operation, v1::Operation::DeleteSegment as i32);
    }

    #[test]
    fn an_unknown_operation_names_the_field() {
        let mut wire = v1::HistoryEntry::from(&entry(core::SubjectKind::Flag, core::Operation::Update));
        wire.operation = 99;
        assert_eq!(core::HistoryEntry::try_from(wire).unwrap_err().path, "entry.operation");
    }

    #[test]
    fn an_applied_change_keeps_its_sides() {
        let change = core::AppliedChange {
            kind: core::SubjectKind::Flag,
            key: "chat".into(),
            operation: core::Operation::Update,
            version: 4,
            before: Some(core::Subject::Flag(core::Flag::rollout("chat", 5.0).unwrap())),
            after: Some(core::Subject::Flag(core::Flag::rollout("chat", 50.0).unwrap())),
        };
        let wire = v1::AppliedChange::from(&change);
        assert!(wire.segment_before.is_none() && wire.flag_after.is_some());
        assert_eq!(core::AppliedChange::try_from(wire).unwrap(), change);
    }

    #[test]
    fn an_ack_report_counts_in_whole_milliseconds() {
        let report = core::AckReport {
            revision: 7,
            connected: 3,
            acknowledged: 2,
            slowest: Duration::from_micros(12_345),
            missing: vec!["stuck".into()],
            open_feature_streams: 4,
            open_feature_sent: 3,
        };
        let wire = v1::AckReport::from(&report);
        assert_eq!(wire.slowest_ms, 12);
        let back = core::AckReport::from(wire);
        assert_eq!((back.open_feature_streams, back.open_feature_sent), (4, 3));
        assert_eq!((back.slowest, back.missing), (Duration::from_millis(12), report.missing));
    }
}
