//! The background task that follows flagd's `Sync.Watch` stream: subscribe from the last
//! applied revision, apply each snapshot or change, acknowledge it, and reconnect when the
//! stream fails or falls silent — to the next endpoint at once, with backoff after a whole
//! round of them failed (`failover`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flag_core::ChangeBatch;
use flag_proto::v1::sync_client::SyncClient;
use flag_proto::{
    Bearer, EncodedChanges, EncodedSnapshot, HEALTH_REPORTS_KEY, MAX_MESSAGE_BYTES, Snapshot, Subscription,
    SyncFrame, ack_request, error_chain, report_request, subscribe_request,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::Backoff;
use crate::failover::Rotation;
use crate::files::Applied;
use crate::model::{Delta, Model};
use crate::reporter::Reporter;
use crate::shared::{Live, Shared};
use crate::status::{Status, SyncCounters};

/// One server the follower may follow.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// As the application gave it, for logs and [`Client::endpoint`](crate::Client::endpoint).
    pub(crate) address: String,
    pub(crate) endpoint: Endpoint,
}

/// How the follower connects and when it gives up on a stream.
#[derive(Debug, Clone)]
pub(crate) struct FollowSettings {
    /// Replicas of one store, tried in order; never empty.
    pub(crate) targets: Vec<Target>,
    /// A connection to share instead of opening one per attempt (to the first target: no
    /// failover).
    pub(crate) channel: Option<Channel>,
    pub(crate) token: Bearer,
    pub(crate) environment: String,
    pub(crate) client_name: String,
    /// Silence after which a stream counts as dead (at least three announced heartbeats).
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// How often health figures go to flagd.
    pub(crate) report_interval: Duration,
}

/// Why one stream ended; the follower reconnects after any of them.
#[derive(Debug, thiserror::Error)]
enum StreamEnd {
    // With its causes: the transport error alone says only "transport error", and the
    // cause (refused, an untrusted certificate) is what an operator needs.
    #[error("cannot connect: {}", error_chain(.0))]
    Connect(#[from] tonic::transport::Error),
    #[error("flagd refused the stream: {}", .0.message())]
    Refused(tonic::Status),
    #[error("the stream failed: {}", .0.message())]
    Failed(tonic::Status),
    #[error("flagd ended the stream")]
    Ended,
    #[error("flagd did not answer the subscription within {0:?}")]
    NoAnswer(Duration),
    #[error("no message for {0:?}: the stream is dead")]
    Silent(Duration),
    #[error("flagd sent a change from revision {from} to a client at {held}")]
    OutOfStep { from: u64, held: u64 },
    #[error("flagd sent flags this client cannot use: {0}")]
    Unusable(String),
}

/// How long an acknowledgement waits after its change is applied (see `follow_once`): a kill
/// report waits this much longer for it, at most.
const ACK_DELAY: Duration = Duration::from_millis(2);

/// The most flags and segments an environment may hold, counting those a change brings, for
/// the change to be applied on the runtime rather than on a blocking thread (see
/// `Follower::apply`).
const APPLY_HERE_MAX: usize = 64;

/// Follows the stream until the client is dropped (the task is then aborted).
pub(crate) struct Follower {
    pub(crate) shared: Arc<Shared>,
    pub(crate) settings: FollowSettings,
    /// Newest applied state for the cache writer, if there is a cache file.
    pub(crate) cache: Option<watch::Sender<Option<Applied>>>,
    /// The last error, for a start that times out to explain why.
    pub(crate) last_error: watch::Sender<Option<String>>,
    /// Set when flagd refuses the subscription in a way retrying will not fix, so a start
    /// told to fail can say so at once.
    pub(crate) refused: watch::Sender<Option<String>>,
    /// Health reports, sent on the stream's request side next to the acknowledgements.
    pub(crate) reporter: Arc<Reporter>,
}

/// Marks the flags stale when the follower stops for good — its runtime shut down while a
/// client lives on — so the status never claims `Ready` for flags nobody follows.
struct StaleOnDrop(Arc<Shared>);

impl Drop for StaleOnDrop {
    fn drop(&mut self) {
        if matches!(*self.0.status.borrow(), Status::Ready) {
            self.0.set_status(Status::Stale { since: Instant::now() });
        }
    }
}

impl Follower {
    pub(crate) async fn run(self) {
        let _stale_on_drop = StaleOnDrop(Arc::clone(&self.shared));
        let backoff = Backoff::new(self.settings.backoff_min, self.settings.backoff_max);
        // A shared channel reaches one server whatever the target says.
        let targets = match self.settings.channel {
            Some(_) => &self.settings.targets[..self.settings.targets.len().min(1)],
            None => &self.settings.targets[..],
        };
        let mut rotation = Rotation::new(targets.len(), backoff);
        // Each target's last error, for a start that times out to name them all.
        let mut errors: Vec<Option<String>> = vec![None; targets.len()];
        let mut attempt = 0u64;
        loop {
            let Some(target) = targets.get(rotation.current()) else { return };
            let (environment, endpoint) = (&self.settings.environment, &target.address);
            let span = if attempt == 0 {
                info_span!("connect", %environment, %endpoint)
            } else {
                info_span!("reconnect", %environment, %endpoint, attempt)
            };
            let end = self.follow_once(target, &mut rotation, &mut errors).instrument(span).await;
            self.shared.set_endpoint(None);
            attempt += 1;
            SyncCounters::bump(&self.shared.sync.reconnects);
            if matches!(*self.shared.status.borrow(), Status::Ready) {
                self.shared.set_status(Status::Stale { since: Instant::now() });
            }
            metrics::gauge!("flag_sdk_stream_status", "environment" => self.settings.environment.clone())
                .set(self.shared.status.borrow().gauge());
            if let StreamEnd::Refused(status) = &end
                && matches!(
                    status.code(),
                    Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument
                )
            {
                self.refused.send_replace(Some(status.message().to_owned()));
            }
            if let Some(error) = errors.get_mut(rotation.current()) {
                *error = Some(format!("{endpoint}: {end}"));
            }
            self.last_error
                .send_replace(Some(errors.iter().flatten().cloned().collect::<Vec<_>>().join("; ")));
            let delay = rotation.failed();
            let next = targets.get(rotation.current()).map_or("", |next| next.address.as_str());
            warn!(%endpoint, error = %end, %next, retry_in = ?delay, "flag stream lost; serving the last flags");
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// One stream to `target`, from connecting to its end. Once it serves flags, `rotation`
    /// and `errors` learn that this target works.
    async fn follow_once(
        &self,
        target: &Target,
        rotation: &mut Rotation,
        errors: &mut [Option<String>],
    ) -> StreamEnd {
        let settings = &self.settings;
        let channel = match &settings.channel {
            Some(channel) => channel.clone(),
            None => match target.endpoint.connect().await {
                Ok(channel) => channel,
                Err(error) => return StreamEnd::Connect(error),
            },
        };
        let mut client = SyncClient::with_interceptor(channel, settings.token.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let (requests, outbound) = mpsc::channel(8);
        let since = self.shared.live.load().revision;
        let subscribe = subscribe_request(Subscription {
            environment: settings.environment.clone(),
            since_revision: since,
            client_name: settings.client_name.clone(),
            store_id: self.shared.store_id(),
            observer: false,
            relay: false,
        });
        // The channel has room: this cannot wait.
        let _ = requests.try_send(subscribe);
        // Bounded: a proxy that accepts the connection with no server behind it, or a wedged
        // flagd, would otherwise hold the follower here for good.
        let answer =
            tokio::time::timeout(settings.heartbeat_timeout, client.watch(ReceiverStream::new(outbound)));
        let (reports_taken, mut stream) = match answer.await {
            Ok(Ok(response)) => (response.metadata().contains_key(HEALTH_REPORTS_KEY), response.into_inner()),
            Ok(Err(status)) => return StreamEnd::Refused(status),
            Err(_) => return StreamEnd::NoAnswer(settings.heartbeat_timeout),
        };
        // A report the last stream sent without an acknowledgement goes again, with its
        // sequence: flagd counts it only if it had not already. The channel has room.
        if let Some(report) = self.reporter.unacknowledged().filter(|_| reports_taken) {
            let _ = requests.try_send(report_request(&report));
        }
        info!(since, "following flagd");
        self.shared.set_endpoint(Some(&target.address));
        let mut silence = settings.heartbeat_timeout;
        let mut heard = tokio::time::Instant::now();
        let interval = settings.report_interval;
        let mut report_ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        report_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The revision applied but not yet acknowledged, and when its acknowledgement goes.
        let mut unacknowledged = None;
        let acknowledge = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(acknowledge);
        loop {
            let message = tokio::select! {
                message = tokio::time::timeout_at(heard + silence, stream.message()) => message,
                () = &mut acknowledge, if unacknowledged.is_some() => {
                    if let Some(revision) = unacknowledged.take()
                        && requests.send(ack_request(revision)).await.is_err()
                    {
                        return StreamEnd::Ended;
                    }
                    continue;
                }
                _ = report_ticks.tick(), if reports_taken => {
                    if let Some(report) = self.reporter.next_report(&self.shared)
                        && requests.send(report_request(&report)).await.is_err()
                    {
                        return StreamEnd::Ended;
                    }
                    continue;
                }
            };
            heard = tokio::time::Instant::now();
            let frame = match message {
                Err(_) => return StreamEnd::Silent(silence),
                Ok(Err(status)) => return StreamEnd::Failed(status),
                Ok(Ok(None)) => return StreamEnd::Ended,
                Ok(Ok(Some(message))) => SyncFrame::from(message),
            };
            let frame = match frame {
                SyncFrame::Heartbeat { revision, interval } => {
                    debug!(revision, "heartbeat");
                    silence = settings.heartbeat_timeout.max(interval.saturating_mul(3));
                    continue;
                }
                SyncFrame::ReportAck { sequence, .. } => {
                    debug!(sequence, "report acknowledged");
                    self.reporter.acknowledged(sequence);
                    continue;
                }
                SyncFrame::Snapshot(snapshot) => Frame::Snapshot(snapshot),
                SyncFrame::Changes(changes) => Frame::Changes(changes),
                // A kind this client does not know (a newer flagd): nothing to apply.
                _ => continue,
            };
            let revision = match self.apply(frame).await {
                Ok(revision) => revision,
                Err(end) => return end,
            };
            // Acknowledged a moment later: when one change reaches many clients at once,
            // their acknowledgements then reach flagd after its fan-out instead of competing
            // with it, and a burst of changes is acknowledged once, at its newest revision.
            if unacknowledged.replace(revision).is_none() {
                acknowledge.as_mut().reset(tokio::time::Instant::now() + ACK_DELAY);
            }
            rotation.served();
            errors.fill(None);
            self.last_error.send_replace(None);
            self.shared.set_status(Status::Ready);
        }
    }

    /// Applies one frame on a blocking thread: converting, validating and compiling an
    /// environment of tens of thousands of flags takes tens of milliseconds, which would stall
    /// every other task on this runtime worker (the application's, too) if done here. A change
    /// to a small environment is applied here: it takes microseconds, less than the hop to a
    /// blocking thread, of which a process with many clients would make one per client.
    async fn apply(&self, frame: Frame) -> Result<u64, StreamEnd> {
        let inline = match &frame {
            Frame::Changes(changes) => {
                self.shared.live.load().model.len() + changes.upserted() <= APPLY_HERE_MAX
            }
            Frame::Snapshot(_) => false,
        };
        let shared = Arc::clone(&self.shared);
        let apply = move || {
            let started = Instant::now();
            let applied = match frame {
                Frame::Snapshot(snapshot) => apply_snapshot(&shared, snapshot),
                Frame::Changes(changes) => apply_changes(&shared, changes),
            };
            shared.sync.record_apply(started.elapsed());
            applied
        };
        let applied = if inline {
            // A panic is the stream's end, as on a blocking thread, not the follower's.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(apply))
                .map_err(|_| StreamEnd::Unusable("applying the flags failed: it panicked".into()))??
        } else {
            tokio::task::spawn_blocking(apply)
                .await
                .map_err(|error| StreamEnd::Unusable(format!("applying the flags failed: {error}")))??
        };
        if let (Some(cache), Some(live)) = (&self.cache, applied.live) {
            cache.send_replace(Some((live.revision, self.shared.store_id(), Arc::clone(&live.model))));
        }
        Ok(applied.revision)
    }
}

/// A frame that changes the flags, still encoded: converted on the blocking thread.
enum Frame {
    Snapshot(EncodedSnapshot),
    Changes(EncodedChanges),
}

/// The revision a frame brought the client to, and the state installed for it (`None` when
/// the frame changed nothing).
struct Installed {
    revision: u64,
    live: Option<Arc<Live>>,
}

fn apply_snapshot(shared: &Shared, snapshot: EncodedSnapshot) -> Result<Installed, StreamEnd> {
    let Snapshot { revision, store_id, set } =
        snapshot.decode().map_err(|error| StreamEnd::Unusable(error.to_string()))?;
    let previous = Arc::clone(&shared.live.load().model);
    shared.set_store_id(store_id);
    let live = install(shared, Model::from_set(set, revision, &previous), revision)?;
    SyncCounters::bump(&shared.sync.full_snapshots);
    info!(revision, "applied a full snapshot");
    Ok(Installed { revision, live: Some(live) })
}

fn apply_changes(shared: &Shared, changes: EncodedChanges) -> Result<Installed, StreamEnd> {
    let (from_revision, revision) = (changes.from_revision(), changes.revision());
    let live = shared.live.load_full();
    if from_revision != live.revision {
        return Err(StreamEnd::OutOfStep { from: from_revision, held: live.revision });
    }
    SyncCounters::bump(&shared.sync.changes);
    if revision == live.revision {
        // An empty catch-up: already current.
        return Ok(Installed { revision, live: None });
    }
    let ChangeBatch {
        from_revision: _,
        revision: _,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
    } = changes.decode().map_err(|error| StreamEnd::Unusable(error.to_string()))?;
    let delta = Delta { upserted_flags, deleted_flags, upserted_segments, deleted_segments };
    let installed = install(shared, live.model.apply(delta, revision), revision)?;
    debug!(from_revision, revision, "applied changes");
    Ok(Installed { revision, live: Some(installed) })
}

fn install(shared: &Shared, model: Model, revision: u64) -> Result<Arc<Live>, StreamEnd> {
    shared.install(model, revision).map_err(|error| StreamEnd::Unusable(error.to_string()))
}
