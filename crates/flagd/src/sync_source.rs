//! What a `Sync.Watch` stream is served from: a flagd's own store, or a relay's mirror of
//! its upstream's (see `relay`). The stream itself (`sync`) is the same for both.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flag_core::HealthReport;
use flag_proto::{WatchFrame, changes_frame, report_ack_frame, snapshot_frame};
use tonic::Status;
use tracing::{debug, warn};

use crate::acks::Connections;
use crate::auth::Access;
use crate::fanout::Hub;
use crate::health::count_report;
use crate::state::State;
use crate::status::RequestError;
use crate::watch_stream::FrameSender;

/// How streams pace and buffer their frames.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamSettings {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) slow_client_timeout: Duration,
    pub(crate) stream_buffer: usize,
}

/// Whether a catch-up is the changes since the client's revision or a whole snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FrameKind {
    Change,
    Snapshot,
}

/// A catch-up frame and the revision it brings the client to.
pub(crate) struct CatchUp {
    pub(crate) revision: u64,
    pub(crate) frame: WatchFrame,
    pub(crate) kind: FrameKind,
}

/// Where streams read their environment from.
pub(crate) trait SyncSource: Send + Sync + 'static {
    fn settings(&self) -> StreamSettings;
    fn access(&self) -> &Access;
    fn hub(&self) -> &Hub;
    fn connections(&self) -> &Arc<Connections>;
    /// Whether streams take SDK health reports (the header that says so is sent when yes).
    fn counts_reports(&self) -> bool;

    /// Readies `environment` for a new stream, and answers the store its revisions count in.
    fn open(self: &Arc<Self>, environment: &str) -> impl Future<Output = Result<String, Status>> + Send;

    /// The frame that brings a client holding `since` to the environment's newest revision.
    fn catch_up(
        self: &Arc<Self>,
        environment: &str,
        since: u64,
    ) -> impl Future<Output = Result<CatchUp, Status>> + Send;

    /// Counts a health report from a client that was sent `sent`, and answers its sequence
    /// on `reply` once counted.
    fn count_report(self: &Arc<Self>, environment: &str, sent: u64, report: HealthReport, reply: FrameSender);
}

impl SyncSource for State {
    fn settings(&self) -> StreamSettings {
        StreamSettings {
            heartbeat_interval: self.config.heartbeat_interval,
            slow_client_timeout: self.config.slow_client_timeout,
            stream_buffer: self.config.stream_buffer,
        }
    }

    fn access(&self) -> &Access {
        &self.access
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    fn counts_reports(&self) -> bool {
        true
    }

    async fn open(self: &Arc<Self>, _environment: &str) -> Result<String, Status> {
        Ok(self.store.id().to_owned())
    }

    async fn catch_up(self: &Arc<Self>, environment: &str, since: u64) -> Result<CatchUp, Status> {
        let (store, environment) = (self.store.clone(), environment.to_owned());
        let read = tokio::task::spawn_blocking(move || -> Result<CatchUp, RequestError> {
            // Encoded on this blocking thread: a snapshot of many flags takes a while.
            match store.changes_since(&environment, since)?.into_batch() {
                Some(batch) => Ok(CatchUp {
                    revision: batch.revision,
                    frame: changes_frame(&batch),
                    kind: FrameKind::Change,
                }),
                None => {
                    let (revision, set) = store.snapshot(&environment)?;
                    let frame = snapshot_frame(revision, store.id(), &set);
                    Ok(CatchUp { revision, frame, kind: FrameKind::Snapshot })
                }
            }
        })
        .await;
        read.map_err(RequestError::from).and_then(|read| read).map_err(Status::from)
    }

    /// On a task of its own: reading the environment's flags for a new revision must not
    /// hold the stream's next change (a kill) back. A client has one report in flight at a
    /// time, so its reports are still counted in order.
    fn count_report(
        self: &Arc<Self>,
        environment: &str,
        sent: u64,
        report: HealthReport,
        mut reply: FrameSender,
    ) {
        let (state, environment) = (Arc::clone(self), environment.to_owned());
        tokio::spawn(async move {
            let (sequence, instance) = (report.sequence, report.instance.clone());
            match count_report(&state, &environment, sent, report).await {
                Ok(applied) => {
                    debug!(%environment, sequence, ?applied, "health report");
                    // A client too slow to take it is dropped by its stream anyway.
                    let timeout = state.config.slow_client_timeout;
                    let _ = reply.send_timeout(report_ack_frame(sequence, &instance), timeout).await;
                }
                // Unacknowledged, the report is sent again on the client's next stream.
                Err(error) => warn!(%environment, sequence, %error, "health report not counted"),
            }
        });
    }
}
