//! Which SDKs are connected, and which revision each has applied.
//!
//! The kill switch waits here until every SDK connected to the environment acknowledges the
//! kill's revision, so the operator learns that the change took effect, not just that it
//! was stored. OpenFeature providers cannot acknowledge: their streams are counted apart,
//! by what was sent to them. A relay flagd is one stream here that forwards how many of its
//! own SDKs acknowledged which revision: a kill waits for those SDKs, not for the relay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flag_core::AckReport;
use flag_proto::{AckCount, Relayed};
use tokio::sync::watch;
use tokio::time::Instant;

/// What a connected client is, as the console's SDKs page lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// An SDK following `Sync.Watch`: a kill waits for its acknowledgement.
    Sdk,
    /// An observer (`flagctl watch`): listed, never waited for.
    Watcher,
    /// An OpenFeature provider's stream, which cannot acknowledge.
    OpenFeature(&'static str),
    /// A relay flagd: a kill waits for the SDKs it forwards acknowledgements of.
    Relay,
}

impl ClientKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClientKind::Sdk => "SDK",
            ClientKind::Watcher => "watcher",
            ClientKind::OpenFeature(stream) => stream,
            ClientKind::Relay => "relay",
        }
    }
}

/// One connected client as the console shows it.
#[derive(Clone, Debug)]
pub(crate) struct ClientView {
    pub(crate) kind: ClientKind,
    pub(crate) name: String,
    /// The newest revision it acknowledged (an SDK, a watcher) or was sent (OpenFeature).
    pub(crate) revision: u64,
    pub(crate) connected_for: Duration,
    /// How long ago its last acknowledgement came; `None` if none yet (or it cannot).
    pub(crate) last_ack_ago: Option<Duration>,
    /// A relay's SDKs, as it last reported them.
    pub(crate) relayed_sdks: u32,
}

#[derive(Debug)]
struct Connection {
    environment: String,
    name: String,
    acked: u64,
    kind: ClientKind,
    connected_at: Instant,
    last_ack: Option<Instant>,
    /// A relay's SDKs by the newest revision each acknowledged, and its OpenFeature streams
    /// by the newest revision each was sent (empty for the rest).
    relayed: Relayed,
}

impl Connection {
    fn relayed_sdks(&self) -> u32 {
        total(&self.relayed.acked)
    }

    fn relayed_holding(&self, revision: u64) -> u32 {
        holding(&self.relayed.acked, revision)
    }
}

/// How many the counts count.
fn total(counts: &[AckCount]) -> u32 {
    counts.iter().map(|count| count.sdks).sum()
}

/// How many of the counts hold `revision`.
fn holding(counts: &[AckCount], revision: u64) -> u32 {
    counts.iter().filter(|count| count.revision >= revision).map(|count| count.sdks).sum()
}

/// An OpenFeature provider's stream, and the revision it was last sent.
#[derive(Debug)]
struct OpenStream {
    environment: String,
    sent: u64,
    /// `EventStream` or `SyncFlags`.
    kind: &'static str,
    connected_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    connections: HashMap<u64, Connection>,
    streams: HashMap<u64, OpenStream>,
}

/// The connected SDKs of every environment.
#[derive(Debug)]
pub(crate) struct Connections {
    inner: Mutex<Inner>,
    /// Bumped on every acknowledgement and disconnect. A `watch` so that a waiter registered
    /// after a bump still sees it: no wake-up can be lost between checking and waiting.
    changed: watch::Sender<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections { inner: Mutex::default(), changed: watch::Sender::new(0) }
    }
}

/// A connected stream; deregisters itself when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
    kind: ClientKind,
    connections: Arc<Connections>,
}

/// An OpenFeature provider's open stream; deregisters itself when dropped.
#[derive(Debug)]
pub(crate) struct StreamRegistration {
    id: u64,
    connections: Arc<Connections>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new stream of `environment`.
    #[cfg(test)]
    pub(crate) fn register(self: &Arc<Self>, environment: &str, name: &str) -> Registration {
        self.register_as(environment, name, ClientKind::Sdk)
    }

    /// Records a `Sync.Watch` stream of `kind`: an SDK, or a watcher no kill waits for.
    pub(crate) fn register_as(
        self: &Arc<Self>,
        environment: &str,
        name: &str,
        kind: ClientKind,
    ) -> Registration {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let connection = Connection {
            environment: environment.to_owned(),
            name: name.to_owned(),
            acked: 0,
            kind,
            connected_at: Instant::now(),
            last_ack: None,
            relayed: Relayed::default(),
        };
        inner.connections.insert(id, connection);
        if kind == ClientKind::Sdk {
            metrics::gauge!("flagd_streams_connected").increment(1.0);
        }
        Registration { id, kind, connections: Arc::clone(self) }
    }

    /// Every client connected to `environment` now: SDKs, watchers and OpenFeature streams,
    /// by kind and name.
    pub(crate) fn clients(&self, environment: &str) -> Vec<ClientView> {
        let inner = self.lock();
        let now = Instant::now();
        let mut clients: Vec<ClientView> = inner
            .connections
            .values()
            .filter(|c| c.environment == environment)
            .map(|c| ClientView {
                kind: c.kind,
                name: c.name.clone(),
                revision: c.acked,
                connected_for: now.saturating_duration_since(c.connected_at),
                last_ack_ago: c.last_ack.map(|at| now.saturating_duration_since(at)),
                relayed_sdks: c.relayed_sdks(),
            })
            .chain(inner.streams.values().filter(|s| s.environment == environment).map(|s| ClientView {
                kind: ClientKind::OpenFeature(s.kind),
                name: String::new(),
                revision: s.sent,
                connected_for: now.saturating_duration_since(s.connected_at),
                last_ack_ago: None,
                relayed_sdks: 0,
            }))
            .collect();
        clients.sort_by(|a, b| (a.kind.name(), &a.name).cmp(&(b.kind.name(), &b.name)));
        clients
    }

    /// Records a new OpenFeature stream of `environment`.
    pub(crate) fn register_stream(
        self: &Arc<Self>,
        environment: &str,
        kind: &'static str,
    ) -> StreamRegistration {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let stream =
            OpenStream { environment: environment.to_owned(), sent: 0, kind, connected_at: Instant::now() };
        inner.streams.insert(id, stream);
        metrics::gauge!("flagd_openfeature_streams_connected").increment(1.0);
        StreamRegistration { id, connections: Arc::clone(self) }
    }

    /// The names of the SDKs connected to `environment` now, sorted.
    pub(crate) fn connected(&self, environment: &str) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = inner
            .connections
            .values()
            .filter(|c| c.environment == environment && c.kind == ClientKind::Sdk)
            .map(|c| c.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Waits until every SDK connected to `environment` now has acknowledged `revision`,
    /// or `timeout` passes.
    pub(crate) async fn wait_for(&self, environment: &str, revision: u64, timeout: Duration) -> AckReport {
        self.wait_reporting(environment, revision, timeout, |_| {}).await
    }

    /// As [`Connections::wait_for`], handing `progress` the report so far at the start and
    /// after every acknowledgement or disconnection until the wait ends (the console's live
    /// "12/37 acknowledged").
    pub(crate) async fn wait_reporting(
        &self,
        environment: &str,
        revision: u64,
        timeout: Duration,
        mut progress: impl FnMut(&AckReport),
    ) -> AckReport {
        let start = Instant::now();
        let mut changes = self.changed.subscribe();
        let (waiting_for, streams, relays, relay_streams) = {
            let inner = self.lock();
            let of_environment = inner.connections.iter().filter(|(_, c)| c.environment == environment);
            let ids = of_environment.clone().filter(|(_, c)| c.kind == ClientKind::Sdk);
            // A relay's SDKs connected when the wait began are the ones waited for.
            let relays = of_environment
                .clone()
                .filter(|(_, c)| c.kind == ClientKind::Relay)
                .map(|(id, c)| (*id, c.relayed_sdks()))
                .filter(|(_, sdks)| *sdks > 0);
            // And so are its OpenFeature streams.
            let relay_streams: Vec<(u64, u32)> = of_environment
                .filter(|(_, c)| c.kind == ClientKind::Relay)
                .map(|(id, c)| (*id, total(&c.relayed.open_feature)))
                .filter(|(_, streams)| *streams > 0)
                .collect();
            let streams = inner.streams.iter().filter(|(_, s)| s.environment == environment);
            let streams: Vec<u64> = streams.map(|(id, _)| *id).collect();
            (
                ids.map(|(id, _)| *id).collect::<Vec<u64>>(),
                streams,
                relays.collect::<Vec<(u64, u32)>>(),
                relay_streams,
            )
        };
        let relayed_streams: u32 = relay_streams.iter().map(|(_, streams)| streams).sum();
        let relayed_sdks: u32 = relays.iter().map(|(_, sdks)| sdks).sum();
        let mut acked_after: HashMap<u64, Duration> = HashMap::new();
        // Per relay: the most of its SDKs seen holding the revision, and when the last did.
        let mut relayed_acked: HashMap<u64, (u32, Duration)> = HashMap::new();
        loop {
            let (missing, streams_sent, streams_gone, relayed_streams_done) = {
                let inner = self.lock();
                // Only a stream seen holding the revision counts as sent; one that closed
                // before is neither sent nor waited for.
                let streams_sent = streams
                    .iter()
                    .filter(|id| inner.streams.get(id).is_some_and(|s| s.sent >= revision))
                    .count();
                let streams_gone = streams.iter().filter(|id| !inner.streams.contains_key(id)).count();
                let mut missing = Vec::new();
                for id in &waiting_for {
                    match inner.connections.get(id) {
                        Some(c) if c.acked >= revision => {
                            acked_after.entry(*id).or_insert_with(|| start.elapsed());
                        }
                        Some(c) if !acked_after.contains_key(id) => missing.push(c.name.clone()),
                        Some(_) => {}
                        None if !acked_after.contains_key(id) => {
                            missing.push(format!("(disconnected #{id})"))
                        }
                        None => {}
                    }
                }
                for (id, waited) in &relays {
                    let holding =
                        inner.connections.get(id).map_or(0, |c| c.relayed_holding(revision).min(*waited));
                    let seen = relayed_acked.entry(*id).or_insert((0, Duration::ZERO));
                    if holding > seen.0 {
                        *seen = (holding, start.elapsed());
                    }
                    let behind = waited - seen.0;
                    if behind > 0 {
                        let relay = inner.connections.get(id).map_or("(disconnected)", |c| c.name.as_str());
                        missing.push(format!("({behind} behind relay {relay})"));
                    }
                }
                // A relay's streams that were sent the revision (or that are gone: a relay
                // reports the ones it has, so fewer than waited for means some closed).
                let mut relayed_streams_done = (0, 0);
                for (id, waited) in &relay_streams {
                    let open_feature = inner.connections.get(id).map(|c| &c.relayed.open_feature);
                    let sent = open_feature.map_or(0, |counts| holding(counts, revision)).min(*waited);
                    let gone = waited.saturating_sub(open_feature.map_or(0, |counts| total(counts)));
                    relayed_streams_done.0 += sent;
                    relayed_streams_done.1 += (sent + gone).min(*waited);
                }
                (missing, streams_sent, streams_gone, relayed_streams_done)
            };
            let remaining = timeout.saturating_sub(start.elapsed());
            // The OpenFeature streams are flagd's own tasks: waiting for them to have sent the
            // change costs nothing when they have, and says what reached them when not.
            let done = missing.is_empty()
                && streams_sent + streams_gone == streams.len()
                && relayed_streams_done.1 == relayed_streams;
            let relayed = relayed_acked.values();
            let report = AckReport {
                revision,
                connected: waiting_for.len() as u32 + relayed_sdks,
                acknowledged: acked_after.len() as u32 + relayed.clone().map(|(sdks, _)| sdks).sum::<u32>(),
                slowest: acked_after
                    .values()
                    .chain(relayed.map(|(_, at)| at))
                    .max()
                    .copied()
                    .unwrap_or_default(),
                missing,
                open_feature_streams: streams.len() as u32 + relayed_streams,
                open_feature_sent: streams_sent as u32 + relayed_streams_done.0,
            };
            if done || remaining.is_zero() {
                return report;
            }
            progress(&report);
            // A disconnect or acknowledgement bumps `changed`; a timeout ends the wait.
            let _ = tokio::time::timeout(remaining, changes.changed()).await;
        }
    }

    /// Changes on every acknowledgement and disconnect.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Per environment with SDKs connected, how many acknowledged which revision (their
    /// newest), sorted, counting relays' SDKs: what this flagd reports to the others on its
    /// store, and a relay to its upstream.
    pub(crate) fn acked_by_environment(&self) -> Vec<(String, Vec<(u64, u32)>)> {
        self.acked_where(|_| true)
    }

    /// What a relay reports upstream of `environment`: [`Connections::acked_by_environment`]
    /// for it, and its OpenFeature streams (and relays' below) by what each was sent.
    pub(crate) fn relayed_in(&self, environment: &str) -> Relayed {
        let acked = self.acked_where(|name| name == environment).into_iter().flat_map(|(_, acked)| acked);
        let acked = acked.map(|(revision, sdks)| AckCount { revision, sdks }).collect();
        let inner = self.lock();
        let mut sent: std::collections::BTreeMap<u64, u32> = std::collections::BTreeMap::new();
        for stream in inner.streams.values().filter(|s| s.environment == environment) {
            *sent.entry(stream.sent).or_default() += 1;
        }
        let relays = inner.connections.values().filter(|c| c.environment == environment);
        for count in relays.flat_map(|c| &c.relayed.open_feature) {
            *sent.entry(count.revision).or_default() += count.sdks;
        }
        let open_feature = sent.into_iter().map(|(revision, sdks)| AckCount { revision, sdks }).collect();
        Relayed { acked, open_feature }
    }

    fn acked_where(&self, wanted: impl Fn(&str) -> bool) -> Vec<(String, Vec<(u64, u32)>)> {
        let inner = self.lock();
        let mut environments: std::collections::BTreeMap<&str, std::collections::BTreeMap<u64, u32>> =
            std::collections::BTreeMap::new();
        for connection in inner.connections.values().filter(|c| wanted(&c.environment)) {
            let acked = environments.entry(&connection.environment).or_default();
            match connection.kind {
                ClientKind::Sdk => *acked.entry(connection.acked).or_default() += 1,
                ClientKind::Relay => {
                    for count in &connection.relayed.acked {
                        *acked.entry(count.revision).or_default() += count.sdks;
                    }
                }
                ClientKind::Watcher | ClientKind::OpenFeature(_) => {}
            }
        }
        environments
            .into_iter()
            .filter(|(_, acked)| !acked.is_empty())
            .map(|(environment, acked)| (environment.to_owned(), acked.into_iter().collect()))
            .collect()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Registration {
    /// The SDK applied everything up to `revision`.
    pub(crate) fn ack(&self, revision: u64) {
        let kind = self.connections.lock().connections.get_mut(&self.id).map(|connection| {
            connection.acked = connection.acked.max(revision);
            connection.last_ack = Some(Instant::now());
            connection.kind
        });
        if kind == Some(ClientKind::Sdk) {
            metrics::counter!("flagd_acks_total").increment(1);
        }
        self.connections.bump();
    }
}

impl Registration {
    pub(crate) fn is_relay(&self) -> bool {
        self.kind == ClientKind::Relay
    }

    /// A relay's SDKs and OpenFeature streams now, by the newest revision each holds; none
    /// may hold more than `sent`, what the relay was sent.
    pub(crate) fn relayed(&self, relayed: Relayed, sent: u64) {
        let cap = |counts: Vec<AckCount>| -> Vec<AckCount> {
            counts.into_iter().map(|count| AckCount { revision: count.revision.min(sent), ..count }).collect()
        };
        if let Some(connection) = self.connections.lock().connections.get_mut(&self.id) {
            connection.relayed =
                Relayed { acked: cap(relayed.acked), open_feature: cap(relayed.open_feature) };
        }
        self.connections.bump();
    }
}

impl StreamRegistration {
    /// The stream has been sent everything up to `revision`.
    pub(crate) fn sent(&self, revision: u64) {
        if let Some(stream) = self.connections.lock().streams.get_mut(&self.id) {
            stream.sent = stream.sent.max(revision);
        }
        self.connections.bump();
    }
}

impl Drop for StreamRegistration {
    fn drop(&mut self) {
        self.connections.lock().streams.remove(&self.id);
        metrics::gauge!("flagd_openfeature_streams_connected").decrement(1.0);
        self.connections.bump();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let removed = self.connections.lock().connections.remove(&self.id);
        if removed.is_some_and(|connection| connection.kind == ClientKind::Sdk) {
            metrics::gauge!("flagd_streams_connected").decrement(1.0);
        }
        self.connections.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_every_connected_sdk_of_the_environment() {
        let connections = Arc::new(Connections::default());
        let fast = connections.register("production", "fast");
        let slow = connections.register("production", "slow");
        let _elsewhere = connections.register("staging", "other");
        let waiter = {
            let connections = Arc::clone(&connections);
            tokio::spawn(async move { connections.wait_for("production", 7, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        fast.ack(7);
        tokio::time::sleep(Duration::from_millis(30)).await;
        slow.ack(9);
        let report = waiter.await.unwrap();
        assert_eq!((report.connected, report.acknowledged), (2, 2));
        assert!(report.slowest >= Duration::from_millis(40), "{report:?}");
        assert!(report.missing.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn reports_who_did_not_acknowledge_in_time() {
        let connections = Arc::new(Connections::default());
        let ok = connections.register("production", "ok");
        let _stuck = connections.register("production", "stuck");
        let gone = connections.register("production", "gone");
        ok.ack(3);
        drop(gone);
        let report = connections.wait_for("production", 3, Duration::from_millis(100)).await;
        assert_eq!((report.connected, report.acknowledged), (2, 1), "{report:?}");
        assert_eq!(report.missing, ["stuck"]);
    }

    #[tokio::test(start_paused = true)]
    async fn watchers_are_listed_but_never_waited_for() {
        let connections = Arc::new(Connections::default());
        let sdk = connections.register("production", "checkout");
        let watcher = connections.register_as("production", "flagctl-watch", ClientKind::Watcher);
        let _stream = connections.register_stream("production", "EventStream");
        tokio::time::sleep(Duration::from_millis(20)).await;
        sdk.ack(3);
        let report = connections.wait_for("production", 3, Duration::from_millis(100)).await;
        assert_eq!((report.connected, report.acknowledged), (1, 1), "the watcher was waited for: {report:?}");
        assert_eq!(connections.connected("production"), vec!["checkout".to_owned()]);
        watcher.ack(2);
        let clients = connections.clients("production");
        let listed: Vec<(&str, &str, u64)> =
            clients.iter().map(|c| (c.kind.name(), c.name.as_str(), c.revision)).collect();
        assert_eq!(listed, [("EventStream", "", 0), ("SDK", "checkout", 3), ("watcher", "flagctl-watch", 2)]);
        assert!(clients[1].last_ack_ago.is_some() && clients[0].last_ack_ago.is_none());
        assert!(clients[1].connected_for >= Duration::from_millis(20));
    }

    fn sdks(acked: Vec<AckCount>) -> Relayed {
        Relayed { acked, open_feature: vec![] }
    }

    #[tokio::test(start_paused = true)]
    async fn a_kill_counts_a_relays_open_feature_streams_by_what_they_were_sent() {
        let connections = Arc::new(Connections::default());
        let relay = connections.register_as("production", "relay-eu", ClientKind::Relay);
        let count = |revision, sdks| AckCount { revision, sdks };
        let streams = |open_feature| Relayed { acked: vec![], open_feature };
        relay.relayed(streams(vec![count(4, 2)]), 4);
        let _local = connections.register_stream("production", "EventStream");
        assert_eq!(connections.relayed_in("production").open_feature, [count(0, 1), count(4, 2)]);
        let waiter = {
            let connections = Arc::clone(&connections);
            tokio::spawn(async move { connections.wait_for("production", 5, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        _local.sent(5);
        relay.relayed(streams(vec![count(4, 1), count(5, 1)]), 5);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "one relayed stream was not sent the change");
        // It closes: the relay reports the one it has.
        relay.relayed(streams(vec![count(5, 1)]), 5);
        let report = waiter.await.unwrap();
        assert_eq!((report.open_feature_streams, report.open_feature_sent), (3, 2), "{report:?}");
        assert_eq!(report.connected, 0, "streams are not SDKs: {report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kill_waits_for_the_sdks_a_relay_forwards_not_for_the_relay() {
        let connections = Arc::new(Connections::default());
        let sdk = connections.register("production", "direct");
        let relay = connections.register_as("production", "relay-eu", ClientKind::Relay);
        let count = |revision, sdks| AckCount { revision, sdks };
        relay.relayed(sdks(vec![count(4, 3)]), 4);
        relay.ack(4);
        let waiter = {
            let connections = Arc::clone(&connections);
            tokio::spawn(async move { connections.wait_for("production", 5, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        sdk.ack(5);
        // The relay holds the kill; two of its three SDKs do.
        relay.ack(5);
        relay.relayed(sdks(vec![count(4, 1), count(5, 2)]), 5);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "one relayed SDK has not acknowledged");
        relay.relayed(sdks(vec![count(5, 3)]), 5);
        let report = waiter.await.unwrap();
        assert_eq!((report.connected, report.acknowledged), (4, 4), "{report:?}");
        assert!(report.missing.is_empty(), "{report:?}");
        assert_eq!(connections.relayed_in("production").acked, [count(5, 4)]);

        // A relay claiming revisions it was not sent is held to what it was sent.
        relay.relayed(sdks(vec![count(9, 3)]), 5);
        let report = connections.wait_for("production", 6, Duration::from_millis(50)).await;
        assert_eq!((report.connected, report.acknowledged), (4, 0), "{report:?}");
        assert!(report.missing.contains(&"(3 behind relay relay-eu)".to_owned()), "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn open_feature_streams_are_counted_apart_by_what_they_were_sent() {
        let connections = Arc::new(Connections::default());
        let sdk = connections.register("production", "sdk");
        let sent = connections.register_stream("production", "SyncFlags");
        let behind = connections.register_stream("production", "SyncFlags");
        let _elsewhere = connections.register_stream("staging", "EventStream");
        sdk.ack(5);
        sent.sent(5);
        behind.sent(4);
        let report = connections.wait_for("production", 5, Duration::from_millis(100)).await;
        assert_eq!((report.connected, report.acknowledged), (1, 1), "{report:?}");
        assert_eq!((report.open_feature_streams, report.open_feature_sent), (2, 1), "{report:?}");
        // A stream that closes before the change reached it is not counted as sent.
        drop(behind);
        let report = connections.wait_for("production", 5, Duration::from_millis(100)).await;
        assert_eq!((report.open_feature_streams, report.open_feature_sent), (1, 1), "{report:?}");
        let waiting = connections.register_stream("production", "SyncFlags");
        let waiter = {
            let connections = Arc::clone(&connections);
            tokio::spawn(async move { connections.wait_for("production", 6, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(waiting);
        sent.sent(6);
        sdk.ack(6);
        let report = waiter.await.unwrap();
        assert_eq!((report.open_feature_streams, report.open_feature_sent), (2, 1), "{report:?}");
        assert!(report.slowest < Duration::from_secs(1), "a gone stream is not waited for: {report:?}");
        assert!(report.missing.is_empty(), "a provider is not missing: {report:?}");
    }
}
