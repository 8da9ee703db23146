//! `cargo bench -p flag-benches --bench replicas`: how long a write on one flagd takes to
//! reach the SDKs of another flagd on the same PostgreSQL store, next to how long it takes to
//! reach the writer's own SDKs, in the same run.
//!
//! Two flagds (each on its own 2-worker runtime) share a throwaway local PostgreSQL 15
//! cluster (`pg_test`); `STREAMS` `Sync.Watch` streams follow each. For every write on A, the
//! time from its acknowledgement to each stream receiving the change; one received before
//! the acknowledgement counts as 0. Without PostgreSQL installed the bench says so and ends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_benches::{BenchServer, Receipts, bench_flag, now_ns, open_watchers, percentile_us};
use flag_proto::v1;

const STREAMS: usize = 50;
const WARMUP: u64 = 20;
const WRITES: u64 = 300;

fn main() {
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let url = cluster.create_database("bench").unwrap();
    let a = BenchServer::start_on_postgres(&url).unwrap();
    let b = BenchServer::start_on_postgres(&url).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (same, other) = runtime.block_on(async {
        let mut admin = v1::admin_client::AdminClient::connect(a.endpoint()).await.unwrap();
        // A stream at revision 0 holds nothing, and its first change comes as a snapshot:
        // the streams start at revision 1, so every write reaches them as a change.
        admin.put_flag(write(0)).await.unwrap();
        let (on_a, on_b) = (Receipts::new(STREAMS), Receipts::new(STREAMS));
        open_watchers(&a.endpoint(), STREAMS, &on_a).await;
        open_watchers(&b.endpoint(), STREAMS, &on_b).await;
        let (mut same, mut other) = (Vec::new(), Vec::new());
        for n in 1..=WARMUP + WRITES {
            on_a.reset();
            on_b.reset();
            admin.put_flag(write(n)).await.unwrap();
            let acked = now_ns();
            let (received_a, received_b) =
                tokio::join!(on_a.all_in(Duration::from_secs(10)), on_b.all_in(Duration::from_secs(10)));
            if n <= WARMUP {
                continue;
            }
            let since_ack = |at: u64| Duration::from_nanos(at.saturating_sub(acked));
            same.extend(received_a.into_iter().map(since_ack));
            other.extend(received_b.into_iter().map(since_ack));
        }
        (same, other)
    });
    for (name, mut latencies) in [("same_replica", same), ("other_replica", other)] {
        latencies.sort_unstable();
        println!(
            "replicas streams={STREAMS} writes={WRITES} receiver={name} p50_us={} p99_us={} max_us={}",
            percentile_us(&latencies, 50.0),
            percentile_us(&latencies, 99.0),
            percentile_us(&latencies, 100.0),
        );
    }
}

fn write(n: u64) -> v1::PutFlagRequest {
    v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(bench_flag("bench-flag", n)),
        expected_version: None,
        change: Some(v1::Change { actor: "bench".into(), reason: "replicas bench".into() }),
    }
}
