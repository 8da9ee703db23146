//! Health reports on the `Sync.Watch` stream ⇄ flag-core's [`HealthReport`](core::HealthReport):
//! the SDK's figures one way, flagd's acknowledgement of a sequence number the other.

use flag_core as core;

use super::{InvalidMessage, Path};
use crate::WatchFrame;
use crate::v1::{self, watch_request, watch_response};

/// A report as the client sends it.
pub fn report_request(report: &core::HealthReport) -> v1::WatchRequest {
    let core::HealthReport { instance, sequence, cohorts } = report;
    let cohorts = cohorts.iter().map(cohort_to_proto).collect();
    let report = v1::HealthReport { instance: instance.clone(), sequence: *sequence, cohorts };
    v1::WatchRequest { kind: Some(watch_request::Kind::Report(report)) }
}

fn cohort_to_proto(cohort: &core::CohortReport) -> v1::CohortReport {
    let core::CohortReport { flag, variant, revision, figures } = cohort;
    let core::CohortFigures { evaluations, successes, errors, latency } = figures;
    // Trailing empty buckets are left out: most cohorts' latencies fill a few buckets.
    let used = latency.counts.iter().rposition(|count| *count > 0).map_or(0, |last| last + 1);
    v1::CohortReport {
        flag: flag.clone(),
        variant: variant.clone(),
        revision: *revision,
        evaluations: *evaluations,
        successes: *successes,
        errors: *errors,
        latency_counts: latency.counts[..used].to_vec(),
    }
}

/// A received report as flag-core's; refused with the path of a bucket list that is longer
/// than the histogram.
pub(crate) fn report_from_proto(report: v1::HealthReport) -> Result<core::HealthReport, InvalidMessage> {
    let v1::HealthReport { instance, sequence, cohorts } = report;
    let path = Path::Root("report");
    let cohorts_path = path.field("cohorts");
    let cohorts = cohorts
        .into_iter()
        .enumerate()
        .map(|(index, cohort)| cohort_from_proto(cohort, &cohorts_path.index(index)))
        .collect::<Result<_, _>>()?;
    Ok(core::HealthReport { instance, sequence, cohorts })
}

fn cohort_from_proto(
    cohort: v1::CohortReport,
    path: &Path<'_>,
) -> Result<core::CohortReport, InvalidMessage> {
    let v1::CohortReport { flag, variant, revision, evaluations, successes, errors, latency_counts } = cohort;
    let mut latency = core::LatencyHistogram::default();
    if latency_counts.len() > core::LATENCY_BUCKETS {
        return Err(path.field("latency_counts").invalid(format!(
            "at most {} buckets, got {}",
            core::LATENCY_BUCKETS,
            latency_counts.len()
        )));
    }
    latency.counts[..latency_counts.len()].copy_from_slice(&latency_counts);
    let figures = core::CohortFigures { evaluations, successes, errors, latency };
    Ok(core::CohortReport { flag, variant, revision, figures })
}

/// flagd's answer to `instance`'s report `sequence`: it is counted (now or before).
pub fn report_ack_frame(sequence: u64, instance: &str) -> WatchFrame {
    let ack = v1::ReportAck { sequence, instance: instance.to_owned() };
    WatchFrame::encode(&v1::WatchResponse { kind: Some(watch_response::Kind::ReportAck(ack)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientMessage, SyncFrame};

    #[test]
    fn a_report_reads_back_as_it_was_sent_and_an_ack_names_its_sequence() {
        let mut figures =
            core::CohortFigures { evaluations: 9, successes: 7, errors: 2, ..Default::default() };
        figures.latency.record(120);
        let report = core::HealthReport {
            instance: "i-1".into(),
            sequence: 3,
            cohorts: vec![core::CohortReport {
                flag: "chat".into(),
                variant: "on".into(),
                revision: 4,
                figures,
            }],
        };
        let wire = report_request(&report);
        let Some(watch_request::Kind::Report(sent)) = &wire.kind else { panic!("not a report") };
        assert_eq!(sent.cohorts[0].latency_counts.len(), 4, "trailing empty buckets are left out");
        assert_eq!(ClientMessage::try_from(wire).unwrap(), ClientMessage::Report(report));
        let frame = SyncFrame::from(report_ack_frame(3, "i-1").decode().unwrap());
        assert!(
            matches!(frame, SyncFrame::ReportAck { sequence: 3, ref instance } if instance == "i-1"),
            "{frame:?}"
        );
    }

    #[test]
    fn a_report_with_more_buckets_than_the_histogram_is_refused_with_its_path() {
        let cohort =
            v1::CohortReport { latency_counts: vec![1; core::LATENCY_BUCKETS + 1], ..Default::default() };
        let report = v1::HealthReport { instance: "i".into(), sequence: 1, cohorts: vec![cohort] };
        let error = report_from_proto(report).unwrap_err();
        assert_eq!(error.path, "report.cohorts[0].latency_counts");
        assert!(error.expected.contains("at most 32 buckets"), "{error}");
    }
}
