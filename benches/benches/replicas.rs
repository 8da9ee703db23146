//! `cargo bench -p flag-benches --bench replicas`: how long a write on one flagd takes to
//! reach the SDKs of another flagd on the same PostgreSQL store, next to how long it takes to
//! reach the writer's own SDKs, in the same run.
//!
//! Two flagds (each on its own 2-worker runtime) share a throwaway local PostgreSQL 15
//! cluster (`pg_test`); `REPLICAS_STREAMS` `Sync.Watch` streams (comma-separated counts,
//! each its own run; 50 and 1,000 by default) follow each. For every write on A, the
//! time from its acknowledgement to each stream receiving the change; one received before
//! the acknowledgement counts as 0. Without PostgreSQL installed the bench says so and ends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use flag_benches::{BenchServer, HopRun, hop_latencies, percentile_us};

const STREAMS: [usize; 2] = [50, 1_000];
const WARMUP: u64 = 20;
const WRITES: u64 = 300;

fn main() {
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let url = cluster.create_database("bench").unwrap();
    let a = BenchServer::start_on_postgres(&url).unwrap();
    let b = BenchServer::start_on_postgres(&url).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for streams in stream_counts() {
        let run = HopRun { streams, warmup: WARMUP, writes: WRITES, reason: "replicas bench" };
        let [same, other] =
            runtime.block_on(hop_latencies(&a.endpoint(), [&a.endpoint(), &b.endpoint()], run));
        for (name, mut latencies) in [("same_replica", same), ("other_replica", other)] {
            latencies.sort_unstable();
            println!(
                "replicas streams={streams} writes={WRITES} receiver={name} p50_us={} p99_us={} max_us={}",
                percentile_us(&latencies, 50.0),
                percentile_us(&latencies, 99.0),
                percentile_us(&latencies, 100.0),
            );
        }
    }
}

fn stream_counts() -> Vec<usize> {
    match std::env::var("REPLICAS_STREAMS") {
        Ok(counts) => {
            counts.split(',').map(|n| n.trim().parse().expect("REPLICAS_STREAMS: counts")).collect()
        }
        Err(_) => STREAMS.to_vec(),
    }
}
