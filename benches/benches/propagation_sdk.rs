//! `cargo bench -p flag-benches --bench propagation_sdk`: from an acknowledged kill to the
//! moment each of N in-process `Client`s answers the new value.
//!
//! flagd runs on its own runtime; the clients and the operator on another, as separate
//! processes would. Each client has its own `Sync.Watch` stream (200 per HTTP/2 connection)
//! and its own snapshot; a task per client waits on the flag's change subscription and
//! evaluates `is_enabled` — the time recorded is when that evaluation first answers `false`.
//! An answer before the operator has its acknowledgement counts as zero from the
//! acknowledgement; `from_send_*` count from the moment the kill was sent (its durable commit
//! included); `apply_*` are the clients' own time applying the change.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use flag_benches::{BenchServer, FirstAnswers, percentile_us, sdk_fleet};
use flag_core::{Context, Flag};
use flag_proto::v1;
use flag_sdk::{Client, Evaluate};

const KEY: &str = "propagated";
const KILLS: usize = 20;
const PER_CONNECTION: usize = 200;

async fn follow(client: Client, id: usize, base: Instant, answers: Arc<FirstAnswers>) {
    let mut changes = client.flag_changes(KEY);
    let user = Context::new("user-1");
    while changes.changed().await.is_some() {
        if !client.is_enabled(KEY, &user) {
            answers.record(id, base.elapsed().as_nanos() as u64);
        }
    }
}

fn change() -> Option<v1::Change> {
    Some(v1::Change { actor: "bench".into(), reason: "propagation_sdk".into() })
}

fn run(count: usize) {
    let server = BenchServer::start().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
        let on = v1::Flag::from(&Flag::rollout(KEY, 100.0).unwrap());
        let put = |flag: v1::Flag| v1::PutFlagRequest {
            environment: String::new(),
            flag: Some(flag),
            expected_version: None,
            change: change(),
        };
        admin.put_flag(put(on.clone())).await.unwrap();

        let clients = sdk_fleet(&server.endpoint(), count, PER_CONNECTION, "bench", |client| {
            client.heartbeat_timeout(Duration::from_secs(120))
        })
        .await;
        let answers = Arc::new(FirstAnswers::new(count));
        let base = Instant::now();
        for (id, client) in clients.iter().enumerate() {
            tokio::spawn(follow(client.clone(), id, base, Arc::clone(&answers)));
        }

        let mut latencies = Vec::with_capacity(count * KILLS);
        let mut from_send = Vec::with_capacity(count * KILLS);
        let mut applies = Vec::with_capacity(count * KILLS);
        for _ in 0..KILLS {
            // Switch it back on and wait until every client has it.
            let revision = admin.put_flag(put(on.clone())).await.unwrap().into_inner().revision;
            while clients.iter().any(|client| client.revision() < revision) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            answers.reset();
            let kill =
                v1::KillRequest { environment: String::new(), key: KEY.into(), change: change(), wait_ms: 0 };
            let sent = base.elapsed().as_nanos() as u64;
            admin.kill(kill).await.unwrap();
            let acknowledged = base.elapsed().as_nanos() as u64;
            answers.wait_all(Duration::from_secs(30)).await.expect("every client answers in time");
            for answered in answers.times() {
                latencies.push(Duration::from_nanos(answered.saturating_sub(acknowledged)));
                from_send.push(Duration::from_nanos(answered.saturating_sub(sent)));
            }
            // The SDK's own share: converting, validating and installing the change.
            applies.extend(clients.iter().map(|client| client.sync_stats().last_apply));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for figures in [&mut latencies, &mut from_send, &mut applies] {
            figures.sort_unstable();
        }
        println!(
            "propagation_sdk clients={count} p50_us={} p99_us={} max_us={} from_send_p50_us={} from_send_p99_us={} from_send_max_us={} apply_p50_us={} apply_p99_us={}",
            percentile_us(&latencies, 50.0),
            percentile_us(&latencies, 99.0),
            latencies.last().map_or(0, Duration::as_micros),
            percentile_us(&from_send, 50.0),
            percentile_us(&from_send, 99.0),
            from_send.last().map_or(0, Duration::as_micros),
            percentile_us(&applies, 50.0),
            percentile_us(&applies, 99.0),
        );
        drop(clients);
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small run proves it works.
    let default = if std::env::args().any(|a| a == "--bench") { vec![1, 100, 1_000] } else { vec![1] };
    let counts: Vec<usize> = match std::env::var("PROPAGATION_SDK_CLIENTS") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => default,
    };
    for count in counts {
        run(count);
    }
}
