//! The `Sync.Watch` stream: one task per stream following its environment's [`Hub`] channel,
//! served from a [`SyncSource`]: a flagd's store, or a relay's mirror of its upstream.

use std::sync::Arc;
use std::time::Duration;

use flag_proto::v1;
use flag_proto::{
    ClientMessage, HEALTH_REPORTS_KEY, Subscription, WatchFrame, environment_or_default, heartbeat_frame,
};
use tokio::time::MissedTickBehavior;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, instrument, warn};

use crate::acks::{ClientKind, Registration};
use crate::auth::{Caller, StreamAccess};
use crate::fanout::Frame;
use crate::status::RequestError;
use crate::store::WriteError;
use crate::sync_source::{CatchUp, FrameKind, SyncSource};
use crate::watch_stream::{NotSent, WatchSink, WatchStream, watch_stream};

/// Serves `flags.v1.Sync`.
#[derive(Debug)]
pub(crate) struct SyncService<S> {
    source: Arc<S>,
}

impl<S> SyncService<S> {
    pub(crate) fn new(source: Arc<S>) -> Self {
        SyncService { source }
    }
}

#[tonic::async_trait]
impl<S: SyncSource> flag_proto::shared_sync::sync_server::Sync for SyncService<S> {
    type WatchStream = WatchStream;

    #[instrument(skip_all)]
    async fn watch(
        &self,
        request: Request<Streaming<v1::WatchRequest>>,
    ) -> Result<Response<WatchStream>, Status> {
        // Answer at once and read `subscribe` in the stream's task: a client may open the
        // stream before sending anything, and waiting here would hold its headers back.
        let (sink, stream) = watch_stream(self.source.settings().stream_buffer);
        // Set by the interceptor; none (it did not run) is refused when the stream opens.
        let caller = Caller::of(&request).cloned();
        tokio::spawn(open_stream(Arc::clone(&self.source), sink, request.into_inner(), caller));
        let mut response = Response::new(stream);
        if self.source.counts_reports() {
            response
                .metadata_mut()
                .insert(HEALTH_REPORTS_KEY, tonic::metadata::MetadataValue::from_static("1"));
        }
        Ok(response)
    }
}

/// How long a new stream may take to send `subscribe`.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

async fn open_stream<S: SyncSource>(
    source: Arc<S>,
    sink: WatchSink,
    mut inbound: Streaming<v1::WatchRequest>,
    caller: Option<Caller>,
) {
    let subscription = match tokio::time::timeout(SUBSCRIBE_TIMEOUT, inbound.message()).await {
        Ok(Ok(Some(request))) => match ClientMessage::try_from(request) {
            Ok(ClientMessage::Subscribe(subscription)) => subscription,
            _ => return sink.close_with(RequestError::NotSubscribe.into()),
        },
        Ok(Ok(None) | Err(_)) => return,
        Err(_) => return sink.close_with(RequestError::NoSubscribe(SUBSCRIBE_TIMEOUT).into()),
    };
    let Subscription { environment, since_revision, client_name, store_id, observer, relay } = subscription;
    let environment = environment_or_default(&environment).to_owned();
    if !crate::store::is_environment_name(&environment) {
        // The store's own refusal, so the wording and the code match a refused write.
        return sink.close_with(WriteError::InvalidEnvironment { environment }.into());
    }
    let unauthenticated = || RequestError::Unauthenticated("the stream was not authenticated".into());
    let followed =
        caller.ok_or_else(unauthenticated).and_then(|caller| source.access().follow(&caller, &environment));
    let access = match followed {
        Ok(access) => access,
        Err(refused) => return sink.close_with(refused.into()),
    };
    // Names are for reports; a bounded length keeps a client from growing server memory.
    let name: String =
        if client_name.is_empty() { "unnamed".into() } else { client_name.chars().take(128).collect() };
    let source_store = match source.open(&environment).await {
        Ok(store) => store,
        Err(status) => return sink.close_with(status),
    };
    let since_revision = if store_id.is_empty() || store_id == source_store {
        since_revision
    } else {
        // The client's revision counts another store's writes: only a snapshot is safe.
        info!(%environment, client = %name, %store_id, "client resumes from another store; sending a snapshot");
        0
    };
    // Observers (`flagctl watch`) are not SDKs: listed, but a kill does not wait for them;
    // it waits for the SDKs a relay forwards acknowledgements of.
    let kind = match (observer, relay) {
        (true, _) => ClientKind::Watcher,
        (false, true) => ClientKind::Relay,
        (false, false) => ClientKind::Sdk,
    };
    let task = StreamTask {
        registration: source.connections().register_as(&environment, &name, kind),
        source,
        environment,
        name,
        sent: since_revision,
    };
    task.run(sink, inbound, access).await;
}

/// Why a stream ended.
enum End {
    /// The client left or the server is shutting down: nothing to say.
    Quietly,
    /// End with this status.
    With(Status),
}

struct StreamTask<S> {
    source: Arc<S>,
    /// An SDK's, a relay's or an observer's (which no kill waits for).
    registration: Registration,
    environment: String,
    name: String,
    /// The revision the client holds once it has applied everything sent so far.
    sent: u64,
}

impl<S: SyncSource> StreamTask<S> {
    #[instrument(skip_all, fields(environment = %self.environment, client = %self.name))]
    async fn run(
        mut self,
        mut sink: WatchSink,
        mut inbound: Streaming<v1::WatchRequest>,
        mut access: StreamAccess,
    ) {
        info!(since = self.sent, "sdk connected");
        let mut updates = self.source.hub().subscribe(&self.environment);
        updates.borrow_and_update();
        // Boxed, here and below: a catch-up's read and send are rare, and unboxed they would
        // take room in every idle stream's task.
        let end = match Box::pin(self.catch_up(&mut sink)).await {
            Err(end) => end,
            Ok(()) => self.follow(&mut sink, &mut inbound, &mut updates, &mut access).await,
        };
        match end {
            End::Quietly => drop(sink),
            End::With(status) => {
                warn!(status = %status.message(), "closing sdk stream");
                sink.close_with(status);
            }
        }
        info!("sdk disconnected");
    }

    async fn follow(
        &mut self,
        sink: &mut WatchSink,
        inbound: &mut Streaming<v1::WatchRequest>,
        updates: &mut tokio::sync::watch::Receiver<Option<Arc<crate::fanout::Published>>>,
        access: &mut StreamAccess,
    ) -> End {
        let interval = self.source.settings().heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A client may close its request side (no more acks) and keep reading.
        let mut inbound_open = true;
        // A change since the last tick makes that tick's heartbeat needless. A flag rather
        // than `Interval::reset` after each change: a reset moves a timer-wheel entry, once
        // per stream per change, and the silence a client sees stays under 2 intervals.
        let mut sent_since_tick = false;
        loop {
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        if self.source.hub().is_closed() {
                            return End::Quietly; // the server is shutting down
                        }
                        let environment = self.environment.clone();
                        return End::With(RequestError::EnvironmentDeleted { environment }.into());
                    }
                    let latest = updates.borrow_and_update().clone();
                    if latest.as_ref().is_some_and(|p| p.store_replaced) {
                        return End::With(Status::unavailable(format!(
                            "environment {:?} now comes from another store (restored or replaced): subscribe again for a snapshot of it",
                            self.environment
                        )));
                    }
                    let Some(latest) = latest.filter(|p| p.revision > self.sent) else { continue };
                    let sent = match latest.after(self.sent) {
                        Some(frames) => self.send_all(sink, frames).await,
                        // Missed more than the hub keeps (a slow stream): one coalesced catch-up.
                        None => Box::pin(self.catch_up(sink)).await,
                    };
                    if let Err(end) = sent {
                        return end;
                    }
                    sent_since_tick = true;
                }
                message = inbound.message(), if inbound_open => match message.map(|m| m.map(ClientMessage::try_from)) {
                    Ok(Some(Ok(ClientMessage::Ack(revision)))) => {
                        debug!(revision, "ack");
                        // Nobody can have applied a revision it was not sent.
                        self.registration.ack(revision.min(self.sent));
                    }
                    Ok(Some(Ok(ClientMessage::Report(report)))) => {
                        let frames = sink.frames().clone();
                        self.source.count_report(&self.environment, self.sent, report, frames);
                    }
                    Ok(Some(Ok(ClientMessage::RelayAcks(relayed)))) if self.registration.is_relay() => {
                        debug!(?relayed, "relayed acks");
                        self.registration.relayed(relayed, self.sent);
                    }
                    Ok(Some(Err(invalid))) => return End::With(Status::invalid_argument(invalid.to_string())),
                    Ok(Some(Ok(_))) => return End::With(RequestError::NotAck.into()),
                    Ok(None) => inbound_open = false,
                    Err(_) => return End::Quietly,
                },
                // A tokens file reloaded without this stream's principal, or narrowed it.
                refused = access.revoked() => return End::With(refused.into()),
                _ = heartbeat.tick() => {
                    if std::mem::take(&mut sent_since_tick) {
                        continue;
                    }
                    // A heartbeat only matters when the stream is idle; skip it when frames are queued.
                    if sink.frames().try_send(heartbeat_frame(self.sent, interval)) == Err(NotSent::Closed) {
                        return End::Quietly;
                    }
                }
            }
        }
    }

    /// Brings the client from `self.sent` to the store's current revision: the changes since,
    /// or a full snapshot when it is too far behind (or new).
    async fn catch_up(&mut self, sink: &mut WatchSink) -> Result<(), End> {
        let CatchUp { revision, frame, kind } =
            self.source.catch_up(&self.environment, self.sent).await.map_err(End::With)?;
        // Sent even when empty: a client resuming at the current revision learns at once that
        // it is up to date, instead of waiting for a heartbeat.
        self.send(sink, frame, revision, kind).await
    }

    /// Sends published frames in order.
    async fn send_all(&mut self, sink: &mut WatchSink, frames: &[Frame]) -> Result<(), End> {
        for frame in frames {
            self.send(sink, frame.frame.clone(), frame.revision, FrameKind::Change).await?;
        }
        Ok(())
    }

    async fn send(
        &mut self,
        sink: &mut WatchSink,
        frame: WatchFrame,
        revision: u64,
        kind: FrameKind,
    ) -> Result<(), End> {
        // Room in the buffer is the common case: sent without arming a timer, which for a
        // change fanned out to thousands of streams is a timer-wheel entry each.
        match sink.frames().try_send(frame) {
            Ok(()) => {
                self.sent(revision, kind);
                Ok(())
            }
            // Boxed: the wait's timer would otherwise take room in every idle stream's
            // task, for the rare stream whose client reads slowly.
            Err(NotSent::Full(frame)) => Box::pin(self.send_waiting(sink, frame, revision, kind)).await,
            Err(NotSent::Closed | NotSent::TimedOut) => Err(End::Quietly),
        }
    }

    /// Sends `frame` once the client has read enough to make room for it, or gives up on a
    /// client too slow to (see `Config::slow_client_timeout`).
    async fn send_waiting(
        &mut self,
        sink: &mut WatchSink,
        frame: WatchFrame,
        revision: u64,
        kind: FrameKind,
    ) -> Result<(), End> {
        let settings = self.source.settings();
        let timeout = settings.slow_client_timeout;
        match sink.frames().send_timeout(frame, timeout).await {
            Ok(()) => {
                self.sent(revision, kind);
                Ok(())
            }
            Err(NotSent::Closed | NotSent::Full(_)) => Err(End::Quietly),
            Err(NotSent::TimedOut) => {
                metrics::counter!("flagd_slow_clients_dropped_total").increment(1);
                Err(End::With(
                    RequestError::SlowClient {
                        waited: timeout,
                        queued: settings.stream_buffer,
                        sent: self.sent,
                    }
                    .into(),
                ))
            }
        }
    }
}

impl<S> StreamTask<S> {
    /// Records that the frame of `revision` is on its way.
    fn sent(&mut self, revision: u64, kind: FrameKind) {
        self.sent = revision;
        match kind {
            FrameKind::Snapshot => metrics::counter!("flagd_snapshots_sent_total").increment(1),
            FrameKind::Change => metrics::counter!("flagd_changes_sent_total").increment(1),
        }
    }
}
