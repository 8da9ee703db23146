//! `cargo bench -p flag-benches --bench store`: durable writes per second from one client.
//!
//! One client puts one flag again and again through the Admin API of a real flagd on
//! loopback; every write is acknowledged only after redb's durable commit (fsync).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1;

const WARMUP: u64 = 100;
const WRITES: u64 = 2_000;

fn main() {
    let server = BenchServer::start().unwrap();
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (elapsed, mut latencies) = client.block_on(async {
        let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
        let write = |n: u64| v1::PutFlagRequest {
            environment: "production".into(),
            flag: Some(bench_flag("bench-flag", n)),
            expected_version: None,
            change: Some(v1::Change { actor: "bench".into(), reason: "store bench".into() }),
        };
        for n in 0..WARMUP {
            admin.put_flag(write(n)).await.unwrap();
        }
        let mut latencies: Vec<Duration> = Vec::with_capacity(WRITES as usize);
        let start = Instant::now();
        for n in WARMUP..WARMUP + WRITES {
            let sent = Instant::now();
            admin.put_flag(write(n)).await.unwrap();
            latencies.push(sent.elapsed());
        }
        (start.elapsed(), latencies)
    });
    latencies.sort_unstable();
    println!(
        "store durable_writes_per_s={:.0} p50_us={} p99_us={}",
        WRITES as f64 / elapsed.as_secs_f64(),
        percentile_us(&latencies, 50.0),
        percentile_us(&latencies, 99.0),
    );
}
