//! N `Sync.Watch` streams that record when each receives a change: the receiving side of the
//! propagation bench, run in the bench's process or in a process of its own
//! (`watch_clients`).
//!
//! Times are nanoseconds of the system clock since the Unix epoch, so a receipt taken in one
//! process compares with a send taken in another on the same machine.
// A stream that cannot connect or receive ends the bench run: a panic says where.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flag_proto::v1::{self, watch_request, watch_response};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

/// Receipt times of the current change, one slot per stream.
#[derive(Debug)]
pub struct Receipts {
    slots: Vec<AtomicU64>,
    received: AtomicUsize,
    ready: AtomicUsize,
    all_in: Notify,
}

impl Receipts {
    /// Slots for `streams` streams.
    pub fn new(streams: usize) -> Arc<Receipts> {
        Arc::new(Receipts {
            slots: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            all_in: Notify::new(),
        })
    }

    /// Forgets the last change's receipts, before the next change is sent.
    pub fn reset(&self) {
        self.received.store(0, Ordering::Release);
    }

    /// Waits until every stream has received the current change, then its receipt times.
    pub async fn all_in(&self, timeout: Duration) -> Vec<u64> {
        let all_in = async {
            loop {
                // A permit left by an earlier change only costs one more check of the count.
                let notified = self.all_in.notified();
                if self.received.load(Ordering::Acquire) >= self.slots.len() {
                    break;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, all_in).await.expect("every stream receives the change");
        self.slots.iter().map(|slot| slot.load(Ordering::Acquire)).collect()
    }

    fn record(&self, id: usize) {
        self.slots[id].store(now_ns(), Ordering::Release);
        if self.received.fetch_add(1, Ordering::AcqRel) + 1 == self.slots.len() {
            self.all_in.notify_one();
        }
    }
}

/// Opens one stream per slot of `receipts` on `endpoint`, `per_connection` to an HTTP/2
/// connection (an SDK fleet has one per process; a bench cannot open 10,000 sockets
/// cheaply), and returns once every stream has its snapshot.
pub async fn open_watchers(endpoint: &str, per_connection: usize, receipts: &Arc<Receipts>) {
    let mut channel = None;
    for id in 0..receipts.slots.len() {
        if id % per_connection.max(1) == 0 {
            channel = Some(Channel::from_shared(endpoint.to_owned()).unwrap().connect().await.unwrap());
        }
        let channel = channel.clone().unwrap();
        tokio::spawn(watch(channel, id, Arc::clone(receipts)));
    }
    while receipts.ready.load(Ordering::Acquire) < receipts.slots.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn watch(channel: Channel, id: usize, receipts: Arc<Receipts>) {
    let mut client = v1::sync_client::SyncClient::new(channel);
    let (requests, outbound) = mpsc::channel(4);
    let subscribe = v1::Subscribe {
        environment: "production".into(),
        since_revision: 0,
        client_name: format!("w{id}"),
        store_id: String::new(),
        observer: false,
        relay: false,
    };
    requests.send(v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) }).await.unwrap();
    let mut stream = client.watch(ReceiverStream::new(outbound)).await.unwrap().into_inner();
    while let Ok(Some(message)) = stream.message().await {
        match message.kind {
            Some(watch_response::Kind::Snapshot(_)) => {
                receipts.ready.fetch_add(1, Ordering::Release);
            }
            Some(watch_response::Kind::Changes(_)) => receipts.record(id),
            _ => {}
        }
    }
    drop(requests);
}
