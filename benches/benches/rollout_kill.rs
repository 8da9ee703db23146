//! `cargo bench -p flag-benches --bench rollout_kill`: from flagd's own kill on a rollout
//! breach to the moment each of 100 in-process `Client`s serves the old path.
//!
//! flagd runs on its own runtime; the clients on another, as separate processes would. The
//! clients serve simulated traffic the whole time — each evaluates 20 users every 10 ms and
//! records an outcome, the new path failing for half of its users — and report every 50 ms.
//! Each round puts the flag back at 0 %, starts a plan (steps 50, 100 %, a 400 ms hold, 200
//! evaluations per cohort), and waits: flagd's engine judges the step at the end of its
//! hold, finds the breach and kills the flag. A task per client waits on the flag's change
//! subscription and records when `is_enabled` first answers `false` for a user of the `on`
//! cohort; the time is counted from the kill's history timestamp (milliseconds, taken in
//! the commit, before its fsync), so each figure is good to a millisecond.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flag_benches::{BenchServer, FirstAnswers, percentile_us, sdk_fleet};
use flag_core::{Context, Flag, OnBreach, RolloutPlan};
use flag_proto::{Authorship, Requests, v1};
use flag_sdk::{Client, Evaluate, Outcome};

const KEY: &str = "guarded";
const ROUNDS: usize = 10;
const PER_CONNECTION: usize = 100;

fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn plan() -> RolloutPlan {
    RolloutPlan {
        steps: vec![50.0, 100.0],
        hold_ms: 400,
        max_hold_ms: 10_000,
        dark_percent: None,
        min_samples: 200,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 2.0,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    }
}

/// Simulated traffic on `client` until `stop`: the new path fails for even-numbered users.
async fn traffic(client: Client, id: usize, stop: Arc<AtomicBool>) {
    let mut user = id as u64 * 1_000_000;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..20 {
            user += 1;
            let key = format!("user-{user}");
            let ctx = Context::new(&key);
            let failed = client.is_enabled(KEY, &ctx) && user.is_multiple_of(2);
            client.record_outcome(KEY, &ctx, if failed { Outcome::Error } else { Outcome::Success });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Records when `probe` (a user of the `on` cohort) is first served the old path.
async fn follow(client: Client, id: usize, probe: String, answers: Arc<FirstAnswers>) {
    let ctx = Context::new(&probe);
    let mut changes = client.flag_changes(KEY);
    while client.is_enabled(KEY, &ctx) {
        if changes.changed().await.is_none() {
            return;
        }
    }
    answers.record(id, unix_us());
}

fn run(count: usize) {
    let server = BenchServer::start().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
        let requests = Requests::new("production");
        let by = || Authorship { actor: "bench".into(), reason: "rollout_kill".into() };
        let off = Flag::rollout(KEY, 0.0).unwrap();
        admin.put_flag(requests.put_flag(&off, None, by())).await.unwrap();

        let clients = sdk_fleet(&server.endpoint(), count, PER_CONNECTION, "bench", |client| {
            client.heartbeat_timeout(Duration::from_secs(120)).report_interval(Duration::from_millis(50))
        })
        .await;
        let stop = Arc::new(AtomicBool::new(false));
        for (id, client) in clients.iter().enumerate() {
            tokio::spawn(traffic(client.clone(), id, Arc::clone(&stop)));
        }

        let mut latencies = Vec::with_capacity(count * ROUNDS);
        for _ in 0..ROUNDS {
            let revision =
                admin.put_flag(requests.put_flag(&off, None, by())).await.unwrap().into_inner().revision;
            let started = admin.start_rollout(requests.start_rollout(KEY, &plan(), by())).await.unwrap();
            let step = started.into_inner().write.map_or(revision, |write| write.revision);
            while clients.iter().any(|client| client.revision() < step) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let probe = (0..)
                .map(|user| format!("probe-{user}"))
                .find(|probe| clients[0].is_enabled(KEY, &Context::new(probe)))
                .unwrap();
            let answers = Arc::new(FirstAnswers::new(count));
            for (id, client) in clients.iter().enumerate() {
                tokio::spawn(follow(client.clone(), id, probe.clone(), Arc::clone(&answers)));
            }
            answers.wait_all(Duration::from_secs(30)).await.expect("flagd kills the flag");
            let history = admin.flag_history(requests.flag_history(KEY, 1, 0)).await.unwrap().into_inner();
            let kill = history.entries.first().expect("the kill is in the history");
            assert_eq!((kill.actor.as_str(), kill.operation), ("flagd/rollout", v1::Operation::Kill as i32));
            let killed_us = u64::try_from(kill.timestamp_ms).unwrap() * 1_000;
            latencies.extend(answers.times().map(|at| Duration::from_micros(at.saturating_sub(killed_us))));
        }
        stop.store(true, Ordering::Relaxed);
        latencies.sort_unstable();
        println!(
            "rollout_kill clients={count} p50_us={} p99_us={} max_us={}",
            percentile_us(&latencies, 50.0),
            percentile_us(&latencies, 99.0),
            latencies.last().map_or(0, Duration::as_micros),
        );
        drop(clients);
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small run proves it works.
    let default = if std::env::args().any(|a| a == "--bench") { 100 } else { 2 };
    let count =
        std::env::var("ROLLOUT_KILL_CLIENTS").ok().and_then(|n| n.trim().parse().ok()).unwrap_or(default);
    run(count);
}
