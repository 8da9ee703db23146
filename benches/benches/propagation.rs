//! `cargo bench -p flag-benches --bench propagation`: from an acknowledged Admin write to its
//! receipt on each of N `Sync.Watch` streams.
//!
//! flagd runs on its own runtime; the watchers and the writer run on another, as a separate
//! client would. A receipt that arrives before the writer has its acknowledgement counts as
//! zero.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1::{self, watch_request, watch_response};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const WRITES: u64 = 20;
/// Streams per HTTP/2 connection (`PROPAGATION_PER_CONNECTION`): an SDK fleet spread over
/// many processes has one stream per connection; a bench client cannot open 10,000 sockets
/// cheaply, so streams share connections.
fn streams_per_connection() -> usize {
    std::env::var("PROPAGATION_PER_CONNECTION").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
}

/// Receipt times of the current write, one slot per stream, in ns since `base`.
struct Receipts {
    base: Instant,
    slots: Vec<AtomicU64>,
    received: AtomicUsize,
    all_in: Notify,
}

async fn watch(channel: Channel, id: usize, receipts: Arc<Receipts>, ready: Arc<AtomicUsize>) {
    let mut client = v1::sync_client::SyncClient::new(channel);
    let (requests, outbound) = mpsc::channel(4);
    let subscribe = v1::Subscribe {
        environment: "production".into(),
        since_revision: 0,
        client_name: format!("w{id}"),
        store_id: String::new(),
        observer: false,
    };
    requests.send(v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) }).await.unwrap();
    let mut stream = client.watch(ReceiverStream::new(outbound)).await.unwrap().into_inner();
    while let Ok(Some(message)) = stream.message().await {
        match message.kind {
            Some(watch_response::Kind::Snapshot(_)) => {
                ready.fetch_add(1, Ordering::Release);
            }
            Some(watch_response::Kind::Changes(_)) => {
                let now = receipts.base.elapsed().as_nanos() as u64;
                receipts.slots[id].store(now, Ordering::Release);
                if receipts.received.fetch_add(1, Ordering::AcqRel) + 1 == receipts.slots.len() {
                    receipts.all_in.notify_one();
                }
            }
            _ => {}
        }
    }
    drop(requests);
}

fn run(streams: usize) {
    let server = BenchServer::start().unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let receipts = Arc::new(Receipts {
            base: Instant::now(),
            slots: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            all_in: Notify::new(),
        });
        let ready = Arc::new(AtomicUsize::new(0));
        let mut channel = None;
        let per_connection = streams_per_connection().max(1);
        for id in 0..streams {
            if id % per_connection == 0 {
                channel = Some(Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap());
            }
            let channel = channel.clone().unwrap();
            tokio::spawn(watch(channel, id, Arc::clone(&receipts), Arc::clone(&ready)));
        }
        while ready.load(Ordering::Acquire) < streams {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
        let mut latencies = Vec::with_capacity(streams * WRITES as usize);
        let mut from_send = Vec::with_capacity(streams * WRITES as usize);
        for n in 0..WRITES {
            receipts.received.store(0, Ordering::Release);
            let request = v1::PutFlagRequest {
                environment: "production".into(),
                flag: Some(bench_flag("propagated", n)),
                expected_version: None,
                change: Some(v1::Change { actor: "bench".into(), reason: "propagation".into() }),
            };
            let sent = receipts.base.elapsed().as_nanos() as u64;
            admin.put_flag(request).await.unwrap();
            let acknowledged = receipts.base.elapsed().as_nanos() as u64;
            // A permit left by an earlier write only costs one more check of the count.
            let all_in = async {
                loop {
                    let notified = receipts.all_in.notified();
                    if receipts.received.load(Ordering::Acquire) >= streams {
                        break;
                    }
                    notified.await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), all_in).await.expect("every stream receives the write");
            for slot in &receipts.slots {
                let received = slot.load(Ordering::Acquire);
                latencies.push(Duration::from_nanos(received.saturating_sub(acknowledged)));
                from_send.push(Duration::from_nanos(received.saturating_sub(sent)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort_unstable();
        from_send.sort_unstable();
        // The figures the target is about (from the acknowledgement), then from the moment the
        // write was sent, which includes the durable commit.
        println!(
            "propagation streams={streams} p50_us={} p99_us={} max_us={} from_send_p50_us={} from_send_p99_us={}",
            percentile_us(&latencies, 50.0),
            percentile_us(&latencies, 99.0),
            latencies.last().map_or(0, Duration::as_micros),
            percentile_us(&from_send, 50.0),
            percentile_us(&from_send, 99.0),
        );
    });
    client.shutdown_timeout(Duration::from_secs(5));
}

fn main() {
    let counts: Vec<usize> = match std::env::var("PROPAGATION_STREAMS") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 100, 1_000, 10_000],
    };
    for streams in counts {
        run(streams);
    }
}
