//! The `Sync.Watch` stream ⇄ domain values: subscriptions and acknowledgements one way,
//! snapshots, change batches and heartbeats the other.
//!
//! A snapshot of tens of thousands of flags takes tens of milliseconds to convert, so an
//! incoming [`SyncFrame`] keeps its flags encoded until the receiver calls `decode` (on a
//! blocking thread, if it likes); reading a frame's kind and revision costs nothing.

use std::time::Duration;

use flag_core as core;

use super::records::millis;
use super::{InvalidMessage, Path, flag_set_from_proto};
use crate::WatchFrame;
use crate::v1::{self, watch_request, watch_response};

/// What a client asks for when it opens a `Watch` stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The environment ("production" when empty).
    pub environment: String,
    /// The last revision the client applied; 0 for a full snapshot.
    pub since_revision: u64,
    /// Names the client in acknowledgement reports.
    pub client_name: String,
    /// The store the client's revision counts in; empty when unknown.
    pub store_id: String,
    /// Not an SDK (e.g. `flagctl watch`): left out of acknowledgement reports.
    pub observer: bool,
    /// A relay flagd: it forwards its SDKs' acknowledgements ([`ClientMessage::RelayAcks`]).
    pub relay: bool,
}

/// A message from a `Watch` client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// The first message: what to follow.
    Subscribe(Subscription),
    /// Everything up to this revision is applied.
    Ack(u64),
    /// How the client's cohorts did since its previous report.
    Report(core::HealthReport),
    /// A relay's SDKs and OpenFeature streams, replacing the last such message.
    RelayAcks(Relayed),
}

/// What a relay reports of the clients behind it (its own and those of relays behind it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// How many SDKs acknowledged which revision as their newest.
    pub acked: Vec<AckCount>,
    /// How many OpenFeature streams were sent which revision as their newest.
    pub open_feature: Vec<AckCount>,
}

/// How many SDKs acknowledged `revision` as their newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AckCount {
    /// The revision.
    pub revision: u64,
    /// How many SDKs hold it.
    pub sdks: u32,
}

/// The first message of a stream.
pub fn subscribe_request(subscription: Subscription) -> v1::WatchRequest {
    let Subscription { environment, since_revision, client_name, store_id, observer, relay } = subscription;
    let subscribe = v1::Subscribe { environment, since_revision, client_name, store_id, observer, relay };
    v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) }
}

/// An acknowledgement of `revision`.
pub fn ack_request(revision: u64) -> v1::WatchRequest {
    v1::WatchRequest { kind: Some(watch_request::Kind::Ack(v1::Ack { revision })) }
}

/// A relay's report of its SDKs' acknowledgements and its OpenFeature streams.
pub fn relay_acks_request(relayed: &Relayed) -> v1::WatchRequest {
    let wire = |counts: &[AckCount]| {
        counts.iter().map(|count| v1::AckCount { revision: count.revision, sdks: count.sdks }).collect()
    };
    let acks = v1::RelayAcks { acked: wire(&relayed.acked), open_feature: wire(&relayed.open_feature) };
    v1::WatchRequest { kind: Some(watch_request::Kind::RelayAcks(acks)) }
}

impl TryFrom<v1::WatchRequest> for ClientMessage {
    type Error = InvalidMessage;

    fn try_from(request: v1::WatchRequest) -> Result<Self, Self::Error> {
        let v1::WatchRequest { kind } = request;
        match kind {
            Some(watch_request::Kind::Subscribe(v1::Subscribe {
                environment,
                since_revision,
                client_name,
                store_id,
                observer,
                relay,
            })) => Ok(ClientMessage::Subscribe(Subscription {
                environment,
                since_revision,
                client_name,
                store_id,
                observer,
                relay,
            })),
            Some(watch_request::Kind::Ack(v1::Ack { revision })) => Ok(ClientMessage::Ack(revision)),
            Some(watch_request::Kind::Report(report)) => {
                Ok(ClientMessage::Report(super::health::report_from_proto(report)?))
            }
            Some(watch_request::Kind::RelayAcks(v1::RelayAcks { acked, open_feature })) => {
                let ours = |counts: Vec<v1::AckCount>| {
                    counts
                        .into_iter()
                        .map(|v1::AckCount { revision, sdks }| AckCount { revision, sdks })
                        .collect()
                };
                Ok(ClientMessage::RelayAcks(Relayed { acked: ours(acked), open_feature: ours(open_feature) }))
            }
            None => Err(Path::Root("request").invalid("`subscribe`, `ack`, `report` or `relay_acks`")),
        }
    }
}

/// A whole environment: replaces everything a client holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The environment's revision.
    pub revision: u64,
    /// The store the revision counts in.
    pub store_id: String,
    /// Every flag and segment.
    pub set: core::FlagSet,
}

/// The frame of a full snapshot of `set` at `revision`, encoded once.
pub fn snapshot_frame(revision: u64, store_id: &str, set: &core::FlagSet) -> WatchFrame {
    let core::FlagSet { flags, segments } = set;
    let snapshot = v1::FullSnapshot {
        revision,
        flags: flags.iter().map(v1::Flag::from).collect(),
        segments: segments.iter().map(v1::Segment::from).collect(),
        store_id: store_id.to_owned(),
    };
    WatchFrame::encode(&v1::WatchResponse { kind: Some(watch_response::Kind::Snapshot(snapshot)) })
}

/// The frame of a change batch, encoded once.
pub fn changes_frame(batch: &core::ChangeBatch) -> WatchFrame {
    WatchFrame::encode(&v1::WatchResponse {
        kind: Some(watch_response::Kind::Changes(changes_to_proto(batch))),
    })
}

fn changes_to_proto(batch: &core::ChangeBatch) -> v1::Changes {
    let core::ChangeBatch {
        from_revision,
        revision,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
    } = batch;
    v1::Changes {
        from_revision: *from_revision,
        revision: *revision,
        upserted_flags: upserted_flags.iter().map(v1::Flag::from).collect(),
        deleted_flags: deleted_flags.clone(),
        upserted_segments: upserted_segments.iter().map(v1::Segment::from).collect(),
        deleted_segments: deleted_segments.clone(),
    }
}

/// A heartbeat: nothing changed since `revision`; the next comes within `interval`.
pub fn heartbeat_frame(revision: u64, interval: Duration) -> WatchFrame {
    let beat = v1::Heartbeat { revision, interval_ms: millis(interval) };
    WatchFrame::encode(&v1::WatchResponse { kind: Some(watch_response::Kind::Heartbeat(beat)) })
}

/// A message of a `Watch` stream as a client reads it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SyncFrame {
    /// A full snapshot, still encoded.
    Snapshot(EncodedSnapshot),
    /// A change batch, still encoded.
    Changes(EncodedChanges),
    /// The stream is alive; nothing changed since `revision`.
    Heartbeat {
        /// The revision the client holds.
        revision: u64,
        /// When the next heartbeat is due.
        interval: Duration,
    },
    /// flagd counted the health report with this sequence (now or before).
    ReportAck {
        /// The report's sequence number.
        sequence: u64,
        /// The instance that sent it (empty from older servers).
        instance: String,
    },
    /// A message of a kind this client does not know (a newer server): skip it.
    Unknown,
}

impl SyncFrame {
    /// The revision a snapshot or change batch brings the client to; `None` for the rest.
    pub fn revision(&self) -> Option<u64> {
        match self {
            SyncFrame::Snapshot(EncodedSnapshot(snapshot)) => Some(snapshot.revision),
            SyncFrame::Changes(EncodedChanges(changes)) => Some(changes.revision),
            SyncFrame::Heartbeat { .. } | SyncFrame::ReportAck { .. } | SyncFrame::Unknown => None,
        }
    }
}

impl From<v1::WatchResponse> for SyncFrame {
    fn from(response: v1::WatchResponse) -> Self {
        let v1::WatchResponse { kind } = response;
        match kind {
            Some(watch_response::Kind::Snapshot(snapshot)) => SyncFrame::Snapshot(EncodedSnapshot(snapshot)),
            Some(watch_response::Kind::Changes(changes)) => SyncFrame::Changes(EncodedChanges(changes)),
            Some(watch_response::Kind::Heartbeat(v1::Heartbeat { revision, interval_ms })) => {
                SyncFrame::Heartbeat { revision, interval: Duration::from_millis(u64::from(interval_ms)) }
            }
            Some(watch_response::Kind::ReportAck(v1::ReportAck { sequence, instance })) => {
                SyncFrame::ReportAck { sequence, instance }
            }
            None => SyncFrame::Unknown,
        }
    }
}

/// A full snapshot as received; [`decode`](Self::decode) converts its flags.
#[derive(Debug)]
pub struct EncodedSnapshot(v1::FullSnapshot);

impl EncodedSnapshot {
    /// The flags as flag-core's, with paths like `flags[3].variants[0].value` on failure.
    pub fn decode(self) -> Result<Snapshot, InvalidMessage> {
        let v1::FullSnapshot { revision, flags, segments, store_id } = self.0;
        Ok(Snapshot { revision, store_id, set: flag_set_from_proto(flags, segments)? })
    }
}

/// A change batch as received; [`decode`](Self::decode) converts its flags.
#[derive(Debug)]
pub struct EncodedChanges(v1::Changes);

impl EncodedChanges {
    /// The revision the batch applies to.
    pub fn from_revision(&self) -> u64 {
        self.0.from_revision
    }

    /// The revision it brings the client to.
    pub fn revision(&self) -> u64 {
        self.0.revision
    }

    /// How many flags and segments it creates or replaces.
    pub fn upserted(&self) -> usize {
        self.0.upserted_flags.len() + self.0.upserted_segments.len()
    }

    /// The batch as flag-core's, with paths like `flags[0].rules[1].serve` on failure.
    pub fn decode(self) -> Result<core::ChangeBatch, InvalidMessage> {
        let v1::Changes {
            from_revision,
            revision,
            upserted_flags,
            deleted_flags,
            upserted_segments,
            deleted_segments,
        } = self.0;
        let upserted = flag_set_from_proto(upserted_flags, upserted_segments)?;
        Ok(core::ChangeBatch {
            from_revision,
            revision,
            upserted_flags: upserted.flags,
            deleted_flags,
            upserted_segments: upserted.segments,
            deleted_segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_as_they_were_written() {
        let set = core::FlagSet { flags: vec![core::Flag::rollout("chat", 10.0).unwrap()], segments: vec![] };
        let frame = SyncFrame::from(snapshot_frame(4, "store-1", &set).decode().unwrap());
        assert_eq!(frame.revision(), Some(4));
        let SyncFrame::Snapshot(snapshot) = frame else { panic!("not a snapshot") };
        assert_eq!(snapshot.decode().unwrap(), Snapshot { revision: 4, store_id: "store-1".into(), set });

        let batch = core::ChangeBatch {
            from_revision: 4,
            revision: 6,
            deleted_flags: vec!["chat".into()],
            ..Default::default()
        };
        let SyncFrame::Changes(changes) = SyncFrame::from(changes_frame(&batch).decode().unwrap()) else {
            panic!("not changes")
        };
        assert_eq!((changes.from_revision(), changes.revision()), (4, 6));
        assert_eq!(changes.decode().unwrap(), batch);

        let beat = SyncFrame::from(heartbeat_frame(6, Duration::from_secs(5)).decode().unwrap());
        assert!(
            matches!(beat, SyncFrame::Heartbeat { revision: 6, interval } if interval == Duration::from_secs(5))
        );
    }

    #[test]
    fn a_client_message_is_a_subscription_or_an_ack() {
        let subscription =
            Subscription { environment: "staging".into(), observer: true, ..Default::default() };
        let message = ClientMessage::try_from(subscribe_request(subscription.clone())).unwrap();
        assert_eq!(message, ClientMessage::Subscribe(subscription));
        assert_eq!(ClientMessage::try_from(ack_request(9)).unwrap(), ClientMessage::Ack(9));
        let relayed = Relayed {
            acked: vec![AckCount { revision: 4, sdks: 2 }, AckCount { revision: 9, sdks: 1 }],
            open_feature: vec![AckCount { revision: 9, sdks: 3 }],
        };
        let message = ClientMessage::try_from(relay_acks_request(&relayed)).unwrap();
        assert_eq!(message, ClientMessage::RelayAcks(relayed));
        assert!(ClientMessage::try_from(v1::WatchRequest { kind: None }).is_err());
    }
}
