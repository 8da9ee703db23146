//! The health reports of a relay's SDKs, passed upstream so that the upstream's rollout
//! guards count them, and the upstream's acknowledgements passed back to each SDK.
//!
//! An SDK keeps one report in flight until it is acknowledged, and the upstream counts a
//! report only once per instance and sequence. So the relay keeps each SDK's report in flight
//! too (the newest, by instance), sends it again on every new upstream stream, and forgets it
//! when the upstream acknowledges it or the SDK's stream ends (the SDK then sends it again
//! on its next stream). A report is never counted twice, and none is lost while the upstream
//! is away.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use flag_core::HealthReport;
use flag_proto::{report_ack_frame, report_request, v1};
use tokio::sync::mpsc;

use crate::watch_stream::FrameSender;

/// One followed environment's reports in flight.
#[derive(Debug, Default)]
pub(super) struct Reports {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By instance: the report, and the stream its acknowledgement goes back on.
    in_flight: HashMap<String, (HealthReport, FrameSender)>,
    /// The requests of the upstream stream, while one is up.
    upstream: Option<mpsc::Sender<v1::WatchRequest>>,
}

impl Reports {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An SDK's report: held until acknowledged, and sent upstream now if a stream is up.
    pub(super) fn forward(&self, report: HealthReport, reply: FrameSender) {
        let mut inner = self.inner();
        // The reports of SDKs gone since are sent again by them, wherever they reconnect.
        inner.in_flight.retain(|_, (_, reply)| !reply.is_closed());
        if let Some(upstream) = &inner.upstream {
            // A full request queue drops it: the next upstream stream sends it again.
            let _ = upstream.try_send(report_request(&report));
        }
        inner.in_flight.insert(report.instance.clone(), (report, reply));
    }

    /// A new upstream stream: its requests, and every report in flight to send on it.
    pub(super) fn connected(&self, upstream: mpsc::Sender<v1::WatchRequest>) -> Vec<v1::WatchRequest> {
        let mut inner = self.inner();
        inner.upstream = Some(upstream);
        inner.in_flight.values().map(|(report, _)| report_request(report)).collect()
    }

    /// The upstream stream ended.
    pub(super) fn disconnected(&self) {
        self.inner().upstream = None;
    }

    /// The upstream counted `instance`'s report `sequence`: its SDK hears so.
    pub(super) fn acknowledged(&self, instance: &str, sequence: u64) {
        let mut inner = self.inner();
        let counted = inner.in_flight.get(instance).is_some_and(|(report, _)| report.sequence == sequence);
        if let Some((_, mut reply)) = counted.then(|| inner.in_flight.remove(instance)).flatten() {
            // An SDK too slow to take it sends the report again; it is not counted twice.
            let _ = reply.try_send(report_ack_frame(sequence, instance));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use flag_proto::SyncFrame;
    use flag_proto::v1::watch_request;
    use tokio_stream::StreamExt;

    use super::*;
    use crate::watch_stream::watch_stream;

    fn report(instance: &str, sequence: u64) -> HealthReport {
        HealthReport { instance: instance.into(), sequence, cohorts: vec![] }
    }

    fn sequence_of(request: &v1::WatchRequest) -> (String, u64) {
        match &request.kind {
            Some(watch_request::Kind::Report(report)) => (report.instance.clone(), report.sequence),
            other => panic!("not a report: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_report_goes_upstream_again_on_each_new_stream_until_its_sdk_hears_it_was_counted() {
        let reports = Reports::default();
        let (mut sink, mut sdk) = watch_stream(4);
        // Upstream away: held.
        reports.forward(report("sdk-1", 1), sink.frames().clone());
        let (upstream, mut sent) = mpsc::channel(4);
        let resent: Vec<_> = reports.connected(upstream.clone()).iter().map(sequence_of).collect();
        assert_eq!(resent, [("sdk-1".to_owned(), 1)]);
        // A newer report of the same instance replaces it and goes at once.
        reports.forward(report("sdk-1", 2), sink.frames().clone());
        assert_eq!(sequence_of(&sent.recv().await.unwrap()), ("sdk-1".to_owned(), 2));

        reports.acknowledged("sdk-1", 1); // an old sequence: nothing for the SDK
        reports.acknowledged("sdk-1", 2);
        let frame = SyncFrame::from(sdk.next().await.unwrap().unwrap().decode().unwrap());
        assert!(matches!(frame, SyncFrame::ReportAck { sequence: 2, ref instance } if instance == "sdk-1"));
        reports.disconnected();
        assert!(reports.connected(upstream).is_empty(), "nothing left in flight");
    }

    #[tokio::test]
    async fn a_gone_sdks_report_is_forgotten() {
        let reports = Reports::default();
        let (mut sink, sdk) = watch_stream(4);
        reports.forward(report("sdk-1", 1), sink.frames().clone());
        drop((sink, sdk));
        let (mut other_sink, _other) = watch_stream(4);
        reports.forward(report("sdk-2", 1), other_sink.frames().clone());
        let (upstream, _sent) = mpsc::channel(4);
        let resent: Vec<_> = reports.connected(upstream).iter().map(sequence_of).collect();
        assert_eq!(resent, [("sdk-2".to_owned(), 1)]);
    }
}
