//! `cargo bench -p flag-benches --bench relay`: the latency a relay adds. A write on flagd
//! reaches `STREAMS` streams on flagd itself and `STREAMS` streams on a relay of it, in the
//! same run; the relay's added latency is the difference of their percentiles.
//!
//! flagd and the relay each run on their own 2-worker runtime, on loopback. For every write,
//! the time from its acknowledgement to each stream receiving the change; one received
//! before the acknowledgement counts as 0.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_benches::{BenchServer, Receipts, bench_flag, now_ns, open_watchers, percentile_us};
use flag_proto::v1;

const STREAMS: usize = 50;
const WARMUP: u64 = 20;
const WRITES: u64 = 500;

fn main() {
    let upstream = BenchServer::start().unwrap();
    let relay = BenchServer::start_relay(&upstream.endpoint()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (direct, relayed) = runtime.block_on(async {
        let mut admin = v1::admin_client::AdminClient::connect(upstream.endpoint()).await.unwrap();
        // Streams start at revision 1, so every write reaches them as a change.
        admin.put_flag(write(0)).await.unwrap();
        let (on_upstream, on_relay) = (Receipts::new(STREAMS), Receipts::new(STREAMS));
        open_watchers(&upstream.endpoint(), STREAMS, &on_upstream).await;
        open_watchers(&relay.endpoint(), STREAMS, &on_relay).await;
        let (mut direct, mut relayed) = (Vec::new(), Vec::new());
        for n in 1..=WARMUP + WRITES {
            on_upstream.reset();
            on_relay.reset();
            admin.put_flag(write(n)).await.unwrap();
            let acked = now_ns();
            let (received_direct, received_relayed) = tokio::join!(
                on_upstream.all_in(Duration::from_secs(10)),
                on_relay.all_in(Duration::from_secs(10))
            );
            if n <= WARMUP {
                continue;
            }
            let since_ack = |at: u64| Duration::from_nanos(at.saturating_sub(acked));
            direct.extend(received_direct.into_iter().map(since_ack));
            relayed.extend(received_relayed.into_iter().map(since_ack));
        }
        (direct, relayed)
    });
    let mut figures = Vec::new();
    for (name, mut latencies) in [("direct", direct), ("via_relay", relayed)] {
        latencies.sort_unstable();
        let (p50, p99) = (percentile_us(&latencies, 50.0), percentile_us(&latencies, 99.0));
        println!(
            "relay streams={STREAMS} writes={WRITES} receiver={name} p50_us={p50} p99_us={p99} max_us={}",
            percentile_us(&latencies, 100.0),
        );
        figures.push((p50, p99));
    }
    let [(direct_p50, direct_p99), (relay_p50, relay_p99)] = figures[..] else {
        unreachable!("two receivers")
    };
    println!(
        "relay hop added_p50_us={} added_p99_us={}",
        relay_p50.saturating_sub(direct_p50),
        relay_p99.saturating_sub(direct_p99)
    );
}

fn write(n: u64) -> v1::PutFlagRequest {
    v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(bench_flag("bench-flag", n)),
        expected_version: None,
        change: Some(v1::Change { actor: "bench".into(), reason: "relay bench".into() }),
    }
}
