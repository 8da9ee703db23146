//! The relay's upstreams and the follower of one environment.
//!
//! One lazily connected channel per upstream, shared by every environment's stream (and the
//! Admin proxy). A follower subscribes as a relay from the revision its mirror holds, so a
//! reconnect costs only the changes missed; it applies each frame to the mirror, publishes it
//! to the relay's streams, acknowledges it, and sends the relay's SDKs' acknowledgements as
//! they change. A stream silent for three heartbeats is given up; the next attempt goes to
//! the next upstream, after a growing, jittered pause.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flag_proto::v1::sync_client::SyncClient;
use flag_proto::{
    Bearer, MAX_MESSAGE_BYTES, Subscription, SyncFrame, ack_request, error_chain, relay_acks_request,
    subscribe_request,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracing::{info, warn};

use super::mirror::Mirror;
use super::{Followed, Relay, Standing};

/// Silence longer than this (or three heartbeats, if longer) ends an upstream stream.
const MIN_SILENCE: Duration = Duration::from_secs(15);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The upstreams, in the order given, and the one in use.
#[derive(Debug)]
pub(crate) struct Upstreams {
    targets: Vec<(String, Channel)>,
    current: AtomicUsize,
    bearer: Bearer,
    name: String,
}

impl Upstreams {
    /// Checks every address (`host:port` or a URL) before any is tried.
    pub(crate) fn new(
        addresses: &[String],
        token: Option<&str>,
        ca_pem: Option<&[u8]>,
        name: &str,
    ) -> Result<Upstreams, String> {
        let bearer = Bearer::new(token.filter(|token| !token.is_empty()))
            .map_err(|_| "--upstream-token: expected printable ASCII".to_owned())?;
        let targets = addresses
            .iter()
            .map(|address| address.trim())
            .filter(|address| !address.is_empty())
            .map(|address| {
                let url =
                    if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
                let invalid =
                    |error: &dyn std::error::Error| format!("--upstream {address:?}: {}", error_chain(error));
                let mut endpoint = Endpoint::from_shared(url.clone())
                    .map_err(|error| invalid(&error))?
                    .connect_timeout(Duration::from_secs(5))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30));
                if url.starts_with("https://") {
                    let tls = match ca_pem {
                        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                        None => ClientTlsConfig::new().with_native_roots(),
                    };
                    endpoint = endpoint.tls_config(tls).map_err(|error| invalid(&error))?;
                } else if ca_pem.is_some() {
                    return Err(format!(
                        "--upstream-ca is for TLS, but --upstream {address} is not https://"
                    ));
                }
                Ok((url, endpoint.connect_lazy()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if targets.is_empty() {
            return Err("--upstream: no address given".into());
        }
        Ok(Upstreams { targets, current: AtomicUsize::new(0), bearer, name: name.to_owned() })
    }

    /// The upstream in use: its address and channel.
    pub(crate) fn current(&self) -> (String, Channel) {
        self.at(self.current.load(Ordering::Acquire))
    }

    fn at(&self, index: usize) -> (String, Channel) {
        let (address, channel) = &self.targets[index % self.targets.len()];
        (address.clone(), channel.clone())
    }

    /// After the upstream at `failed` failed: the next one, unless another follower moved on
    /// already.
    fn rotate(&self, failed: usize) {
        let next = (failed + 1) % self.targets.len();
        let _ = self.current.compare_exchange(failed, next, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Why one upstream stream ended.
enum End {
    /// Reconnect (after a pause): the stream failed, went silent, or could not start.
    Lost(String),
    /// The upstream has no such environment.
    Gone(String),
}

/// Follows `environment` upstream until the relay stops or the upstream says it has none.
pub(crate) async fn follow(relay: Arc<Relay>, environment: String, followed: Arc<Followed>) {
    let mut stopped = relay.stopped.clone();
    let mut retry = RETRY_MIN;
    loop {
        let index = relay.upstreams.current.load(Ordering::Acquire);
        let (address, _) = relay.upstreams.at(index);
        let end = tokio::select! {
            end = follow_once(&relay, &environment, &followed, index, &mut retry) => end,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        followed.connected.store(false, Ordering::Release);
        match end {
            End::Gone(reason) => {
                warn!(%environment, upstream = %address, %reason, "the upstream has no such environment: no longer followed");
                relay.forget(&environment, reason);
                return;
            }
            End::Lost(error) => {
                followed.failed(&format!("{address}: {error}"));
                relay.upstreams.rotate(index);
                // Equal jitter: relays cut off together do not come back together.
                let pause = retry / 2 + (retry / 2).mul_f64(fastrand::f64());
                warn!(%environment, upstream = %address, %error, retry_in = ?pause, "upstream stream lost; serving the last copy");
                retry = (retry * 2).min(RETRY_MAX);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// One upstream stream, from subscribing to its end.
async fn follow_once(
    relay: &Relay,
    environment: &str,
    followed: &Followed,
    index: usize,
    retry: &mut Duration,
) -> End {
    let (address, channel) = relay.upstreams.at(index);
    let mut client = SyncClient::with_interceptor(channel, relay.upstreams.bearer.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (since, store_id) =
        followed.mirror().as_ref().map_or((0, String::new()), |m| (m.revision(), m.store_id().to_owned()));
    let (requests, outbound) = mpsc::channel(16);
    let subscribe = subscribe_request(Subscription {
        environment: environment.to_owned(),
        since_revision: since,
        client_name: relay.upstreams.name.clone(),
        store_id,
        observer: false,
        relay: true,
    });
    // The channel has room: these cannot wait.
    let _ = requests.try_send(subscribe);
    // The upstream's new stream knows none of the relay's SDKs yet.
    let mut reported = relay.connections.relayed_in(environment);
    let _ = requests.try_send(relay_acks_request(&reported));
    let answer = tokio::time::timeout(MIN_SILENCE, client.watch(ReceiverStream::new(outbound))).await;
    let mut stream = match answer {
        Err(_) => return End::Lost(format!("no answer within {MIN_SILENCE:?}")),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
            return End::Gone(status.message().to_owned());
        }
        Ok(Err(status)) => return End::Lost(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(response)) => response.into_inner(),
    };
    info!(%environment, upstream = %address, since, "following the upstream");
    // The SDKs' reports in flight go again on the new stream; the guard takes the stream
    // away from them when it ends, however it ends.
    let in_flight = followed.reports.connected(requests.clone());
    let _reports = ReportsUpstream(followed);
    for report in in_flight {
        if requests.send(report).await.is_err() {
            return End::Lost("the upstream stream closed".into());
        }
    }
    let mut acks = relay.connections.changes();
    acks.borrow_and_update();
    let mut silence = MIN_SILENCE;
    let mut heard = Instant::now();
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout_at(heard + silence, stream.message()) => message,
            changed = acks.changed() => {
                if changed.is_err() {
                    return End::Lost("the relay is stopping".into());
                }
                acks.borrow_and_update();
                let now = relay.connections.relayed_in(environment);
                if now != reported {
                    if requests.send(relay_acks_request(&now)).await.is_err() {
                        return End::Lost("the upstream stream closed".into());
                    }
                    reported = now;
                }
                continue;
            }
        };
        heard = Instant::now();
        let frame = match message {
            Err(_) => return End::Lost(format!("silent for {silence:?}")),
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
                return End::Gone(status.message().to_owned());
            }
            Ok(Err(status)) => return End::Lost(format!("{:?}: {}", status.code(), status.message())),
            Ok(Ok(None)) => return End::Lost("the upstream ended the stream".into()),
            Ok(Ok(Some(message))) => SyncFrame::from(message),
        };
        let revision = match frame {
            SyncFrame::Heartbeat { interval, .. } => {
                silence = MIN_SILENCE.max(interval.saturating_mul(3));
                continue;
            }
            SyncFrame::Snapshot(snapshot) => {
                // Converted on a blocking thread: an environment of many flags takes a while.
                let decoded = tokio::task::spawn_blocking(move || snapshot.decode()).await;
                match decoded {
                    Ok(Ok(snapshot)) => install(relay, environment, followed, snapshot),
                    Ok(Err(invalid)) => return End::Lost(format!("an invalid snapshot: {invalid}")),
                    Err(error) => return End::Lost(format!("decoding a snapshot: {error}")),
                }
            }
            SyncFrame::Changes(changes) => match changes.decode() {
                Ok(batch) => {
                    let applied = followed.mirror().as_mut().map(|mirror| mirror.apply(&batch));
                    match applied {
                        Some(Ok(())) => relay.hub.publish_batch(environment, &batch),
                        Some(Err(gap)) => return End::Lost(gap.to_string()),
                        None => return End::Lost("changes before any snapshot".into()),
                    }
                    batch.revision
                }
                Err(invalid) => return End::Lost(format!("invalid changes: {invalid}")),
            },
            SyncFrame::ReportAck { sequence, instance } => {
                followed.reports.acknowledged(&instance, sequence);
                continue;
            }
            _ => continue,
        };
        followed.copy.send_replace(Standing::Held);
        if !followed.connected.swap(true, Ordering::AcqRel) {
            *retry = RETRY_MIN;
        }
        relay.changed.send_modify(|count| *count += 1);
        if requests.send(ack_request(revision)).await.is_err() {
            return End::Lost("the upstream stream closed".into());
        }
    }
}

/// Holds an upstream stream as the way for the environment's SDKs' reports until it drops.
struct ReportsUpstream<'f>(&'f Followed);

impl Drop for ReportsUpstream<'_> {
    fn drop(&mut self) {
        self.0.reports.disconnected();
    }
}

/// Installs a snapshot from the upstream and publishes what it changed.
fn install(relay: &Relay, environment: &str, followed: &Followed, snapshot: flag_proto::Snapshot) -> u64 {
    let revision = snapshot.revision;
    let published = {
        let mut mirror = followed.mirror();
        match mirror.as_mut() {
            Some(held) => held.install(snapshot).ok_or(()),
            None => {
                *mirror = Some(Mirror::from_snapshot(snapshot));
                Err(())
            }
        }
    };
    match published {
        Ok(batch) => relay.hub.publish_batch(environment, &batch),
        // Another store (or a first copy): no stream's revision counts in it. Streams end
        // saying so, and their SDKs resubscribe, naming their store, which gets them a snapshot.
        Err(()) => relay.hub.store_replaced(environment),
    }
    revision
}
