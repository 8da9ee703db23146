//! Server-side records on the wire: history entries and acknowledgement reports. (The flag
//! model's conversions live in flag-proto.)

use flag_proto::v1;

use crate::acks::AckReport;
use crate::store::{AppliedChange, HistoryEntry, Operation, Subject, SubjectKind};
use crate::sync::millis;

pub(crate) fn history_entry(entry: &HistoryEntry) -> v1::HistoryEntry {
    let HistoryEntry {
        environment,
        kind,
        key,
        version,
        revision,
        operation,
        actor,
        reason,
        timestamp_ms,
        flag,
        segment,
    } = entry;
    v1::HistoryEntry {
        environment: environment.clone(),
        key: key.clone(),
        is_segment: *kind == SubjectKind::Segment,
        version: *version,
        revision: *revision,
        operation: operation_to_proto(*kind, *operation) as i32,
        actor: actor.clone(),
        reason: reason.clone(),
        timestamp_ms: *timestamp_ms,
        flag: flag.as_ref().map(v1::Flag::from),
        segment: segment.as_ref().map(v1::Segment::from),
    }
}

fn operation_to_proto(kind: SubjectKind, operation: Operation) -> v1::Operation {
    match (kind, operation) {
        (SubjectKind::Segment, Operation::Delete) => v1::Operation::DeleteSegment,
        (SubjectKind::Segment, _) => v1::Operation::PutSegment,
        (SubjectKind::Flag, Operation::Create) => v1::Operation::Create,
        (SubjectKind::Flag, Operation::Update) => v1::Operation::Update,
        (SubjectKind::Flag, Operation::Delete) => v1::Operation::Delete,
        (SubjectKind::Flag, Operation::Kill) => v1::Operation::Kill,
        (SubjectKind::Flag, Operation::Revive) => v1::Operation::Revive,
        (SubjectKind::Flag, Operation::Rollback) => v1::Operation::Rollback,
        (SubjectKind::Flag, Operation::SetRollout) => v1::Operation::SetRollout,
        (SubjectKind::Flag, Operation::ServeVariant) => v1::Operation::ServeVariant,
    }
}

pub(crate) fn ack_report(report: &AckReport) -> v1::AckReport {
    let AckReport { revision, connected, acknowledged, slowest, missing } = report;
    v1::AckReport {
        revision: *revision,
        connected: *connected,
        acknowledged: *acknowledged,
        slowest_ms: millis(*slowest),
        missing: missing.clone(),
    }
}

pub(crate) fn applied_change(change: &AppliedChange) -> v1::AppliedChange {
    let AppliedChange { kind, key, operation, version, before, after } = change;
    let flag = |subject: &Option<Subject>| match subject {
        Some(Subject::Flag(flag)) => Some(v1::Flag::from(flag)),
        _ => None,
    };
    let segment = |subject: &Option<Subject>| match subject {
        Some(Subject::Segment(segment)) => Some(v1::Segment::from(segment)),
        _ => None,
    };
    v1::AppliedChange {
        key: key.clone(),
        is_segment: *kind == SubjectKind::Segment,
        // An apply only creates, updates or deletes, segments included.
        operation: operation_to_proto(SubjectKind::Flag, *operation) as i32,
        version: *version,
        flag_before: flag(before),
        flag_after: flag(after),
        segment_before: segment(before),
        segment_after: segment(after),
    }
}
