//! `cargo bench -p flag-benches --bench store`: durable writes per second, on redb and on
//! PostgreSQL, from one client and from four at once.
//!
//! Clients put flags again and again through the Admin API of a real flagd on loopback;
//! every write is acknowledged only after the store's durable commit (redb's fsync, or
//! PostgreSQL's `COMMIT` with `synchronous_commit = on`). PostgreSQL is a throwaway local
//! cluster (`pg_test`) with `fsync = on`; without PostgreSQL installed its rows are skipped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1;

const WARMUP: u64 = 100;
const WRITES: u64 = 2_000;

fn main() {
    let server = BenchServer::start().unwrap();
    for clients in [1, 4] {
        report("redb", clients, &server);
    }
    drop(server);
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let server = BenchServer::start_on_postgres(&cluster.create_database("bench").unwrap()).unwrap();
    for clients in [1, 4] {
        report("postgres", clients, &server);
    }
}

/// `clients` clients, each writing its own flag, `WRITES` writes in all.
fn report(backend: &str, clients: u64, server: &BenchServer) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (elapsed, mut latencies) = runtime.block_on(async {
        let mut admins = Vec::new();
        for client in 0..clients {
            let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
            for n in 0..WARMUP / clients {
                admin.put_flag(write(client, n)).await.unwrap();
            }
            admins.push(admin);
        }
        let start = Instant::now();
        let tasks: Vec<_> = admins
            .into_iter()
            .enumerate()
            .map(|(client, mut admin)| {
                tokio::spawn(async move {
                    let mut latencies: Vec<Duration> = Vec::new();
                    for n in WARMUP..WARMUP + WRITES / clients {
                        let sent = Instant::now();
                        admin.put_flag(write(client as u64, n)).await.unwrap();
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        (start.elapsed(), latencies)
    });
    latencies.sort_unstable();
    println!(
        "store backend={backend} clients={clients} durable_writes_per_s={:.0} p50_us={} p99_us={}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile_us(&latencies, 50.0),
        percentile_us(&latencies, 99.0),
    );
}

fn write(client: u64, n: u64) -> v1::PutFlagRequest {
    v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(bench_flag(&format!("bench-flag-{client}"), n)),
        expected_version: None,
        change: Some(v1::Change { actor: "bench".into(), reason: "store bench".into() }),
    }
}
