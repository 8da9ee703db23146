//! `cargo bench -p flag-benches --bench relay`: the latency a relay adds. A write on flagd
//! reaches `STREAMS` streams on flagd itself and `STREAMS` streams on a relay of it, in the
//! same run; the relay's added latency is the difference of their percentiles.
//!
//! flagd and the relay each run on their own 2-worker runtime, on loopback. For every write,
//! the time from its acknowledgement to each stream receiving the change; one received
//! before the acknowledgement counts as 0.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use flag_benches::{BenchServer, HopRun, hop_latencies, percentile_us};

const STREAMS: usize = 50;
const WARMUP: u64 = 20;
const WRITES: u64 = 500;

fn main() {
    let upstream = BenchServer::start().unwrap();
    let relay = BenchServer::start_relay(&upstream.endpoint()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run = HopRun { streams: STREAMS, warmup: WARMUP, writes: WRITES, reason: "relay bench" };
    let [direct, relayed] =
        runtime.block_on(hop_latencies(&upstream.endpoint(), [&upstream.endpoint(), &relay.endpoint()], run));
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
