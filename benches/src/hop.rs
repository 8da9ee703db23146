//! A write on one server, measured at the streams of two: the shape of the benches that
//! compare a hop (a relay, another replica) with the floor of the writer's own streams.
// A bench that cannot connect or write ends its run: a panic says where.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use flag_proto::v1;

use crate::{Receipts, bench_flag, now_ns, open_watchers};

/// How the writes go.
#[derive(Clone, Copy, Debug)]
pub struct HopRun {
    /// Streams that follow each receiver (on one connection).
    pub streams: usize,
    /// Writes first, not measured.
    pub warmup: u64,
    /// Writes measured.
    pub writes: u64,
    /// The reason the writes give.
    pub reason: &'static str,
}

/// Writes `bench-flag` in `production` on `writer`, `warmup + writes` times, and returns,
/// per receiver, the time from each measured write's acknowledgement to each of its streams
/// receiving the change (0 when before the acknowledgement).
pub async fn hop_latencies(writer: &str, receivers: [&str; 2], run: HopRun) -> [Vec<Duration>; 2] {
    let mut admin = v1::admin_client::AdminClient::connect(writer.to_owned()).await.unwrap();
    // A stream at revision 0 holds nothing, and its first change comes as a snapshot: the
    // streams start at revision 1, so every write reaches them as a change.
    admin.put_flag(write(0, run.reason)).await.unwrap();
    let receipts = [Receipts::new(run.streams), Receipts::new(run.streams)];
    for (endpoint, receipts) in receivers.iter().zip(&receipts) {
        open_watchers(endpoint, run.streams, receipts).await;
    }
    let mut latencies = [Vec::new(), Vec::new()];
    for n in 1..=run.warmup + run.writes {
        receipts.iter().for_each(|receipts| receipts.reset());
        admin.put_flag(write(n, run.reason)).await.unwrap();
        let acked = now_ns();
        let [first, second] = &receipts;
        let received =
            tokio::join!(first.all_in(Duration::from_secs(10)), second.all_in(Duration::from_secs(10)));
        if n <= run.warmup {
            continue;
        }
        let since_ack = |at: u64| Duration::from_nanos(at.saturating_sub(acked));
        latencies[0].extend(received.0.into_iter().map(since_ack));
        latencies[1].extend(received.1.into_iter().map(since_ack));
    }
    latencies
}

fn write(n: u64, reason: &str) -> v1::PutFlagRequest {
    v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(bench_flag("bench-flag", n)),
        expected_version: None,
        change: Some(v1::Change { actor: "bench".into(), reason: reason.into() }),
    }
}
