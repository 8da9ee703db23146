//! `EventStream` of the evaluation services: `provider_ready` once the environment is read
//! (a provider is not ready before it), `configuration_change` naming the flags of every
//! change, and `keep_alive` while nothing changes. One task per stream, fed by the
//! environment's follower ([`Currents`]).

use std::sync::Arc;

use prost_types::Struct;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, info};

use crate::auth::StreamAccess;
use crate::openfeature::current::{Current, Following, changes};
use crate::openfeature::source::FlagSource;
use crate::openfeature::structs::to_struct;
use crate::status::RequestError;

/// The stream a provider reads: `M` is the version's `EventStreamResponse`.
pub(crate) type Events<M> = ReceiverStream<Result<M, Status>>;

/// The event names flagd's providers act on.
const READY: &str = "provider_ready";
const CHANGE: &str = "configuration_change";
const KEEP_ALIVE: &str = "keep_alive";

/// Starts the stream of `environment`'s events, each made a message by `event`.
pub(crate) fn event_stream<S: FlagSource, M: Send + 'static>(
    source: Arc<S>,
    environment: String,
    following: Following,
    access: StreamAccess,
    event: fn(String, Option<Struct>) -> M,
) -> Events<M> {
    let (sender, receiver) = mpsc::channel(source.settings().stream_buffer);
    let timeout = source.settings().slow_client_timeout;
    tokio::spawn(run(source, environment, following, access, Sink { sender, event, timeout }));
    ReceiverStream::new(receiver)
}

struct Sink<M> {
    sender: mpsc::Sender<Result<M, Status>>,
    event: fn(String, Option<Struct>) -> M,
    /// How long a send may wait for room before the provider is dropped.
    timeout: std::time::Duration,
}

impl<M> Sink<M> {
    /// Sends within the slow-client timeout; `false` when the stream is over.
    async fn send(&self, kind: &str, data: Option<Struct>) -> bool {
        let message = (self.event)(kind.to_owned(), data);
        let timeout = self.timeout;
        match self.sender.send_timeout(Ok(message), timeout).await {
            Ok(()) => true,
            Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                metrics::counter!("flagd_slow_clients_dropped_total").increment(1);
                let _ = self.sender.try_send(Err(Status::resource_exhausted(format!(
                    "the provider read no events for {} ms; reconnect",
                    timeout.as_millis()
                ))));
                false
            }
        }
    }

    fn close_with(&self, status: Status) {
        let _ = self.sender.try_send(Err(status));
    }
}

async fn run<S: FlagSource, M>(
    source: Arc<S>,
    environment: String,
    mut following: Following,
    mut access: StreamAccess,
    sink: Sink<M>,
) {
    let Some(mut last) = following.borrow_and_update().clone() else {
        return sink.close_with(RequestError::EnvironmentDeleted { environment }.into());
    };
    let registration = source.connections().register_stream(&environment, "EventStream");
    registration.sent(last.revision);
    if !sink.send(READY, None).await {
        return;
    }
    info!(%environment, revision = last.revision, "OpenFeature event stream connected");
    let interval = source.settings().heartbeat_interval;
    let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = following.changed() => {
                let newest = if changed.is_ok() { following.borrow_and_update().clone() } else { None };
                let Some(newest) = newest else {
                    if !source.hub().is_closed() {
                        sink.close_with(RequestError::EnvironmentDeleted { environment: environment.clone() }.into());
                    }
                    break;
                };
                if newest.revision <= last.revision && newest.store_id == last.store_id {
                    continue;
                }
                let data = change_data(&last, &newest);
                if !sink.send(CHANGE, Some(data)).await {
                    break;
                }
                registration.sent(newest.revision);
                debug!(%environment, revision = newest.revision, "configuration_change sent");
                last = newest;
            }
            refused = access.revoked() => {
                sink.close_with(refused.into());
                break;
            }
            _ = keep_alive.tick() => {
                if !sink.send(KEEP_ALIVE, None).await {
                    break;
                }
            }
        }
    }
    info!(%environment, "OpenFeature event stream disconnected");
}

/// `{"flags": {key: {"type": "write" | "update" | "delete"}}}` from `last` to `newest`.
fn change_data(last: &Current, newest: &Current) -> Struct {
    // The follower's own list holds when no revision was skipped; a slow stream compares.
    let changed = if newest.changed_since == last.revision {
        newest.changed.clone()
    } else {
        changes(&last.set, &newest.set)
    };
    let flags: serde_json::Map<String, serde_json::Value> =
        changed.into_iter().map(|(key, kind)| (key, serde_json::json!({ "type": kind.as_str() }))).collect();
    let mut data = serde_json::Map::new();
    data.insert("flags".into(), serde_json::Value::Object(flags));
    to_struct(data)
}
