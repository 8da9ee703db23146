//! `cargo bench -p flag-benches --bench large_environment`: what an environment of N flags
//! costs — the apply that creates it, an SDK's cold start, a full listing (what `flagctl
//! list` and `export` fetch), and a one-flag change: until the SDK answers it, and the SDK's
//! own cost of applying it (`SyncStats::last_apply`).
//!
//! `LARGE_ENVIRONMENT_FLAGS=1000,50000` chooses the sizes (default 1,000 and 50,000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, percentile_us};
use flag_core::{Context, Flag};
use flag_proto::{MAX_MESSAGE_BYTES, v1};
use flag_sdk::{Client, Evaluate, OnTimeout};
use prost::Message as _;
use tonic::transport::Channel;

const CHANGES: usize = 20;

fn change() -> Option<v1::Change> {
    Some(v1::Change { actor: "bench".into(), reason: "large_environment".into() })
}

/// Flags of a realistic size: a 10 % rollout with a sentence of description.
fn flags(count: usize) -> Vec<v1::Flag> {
    (0..count)
        .map(|i| {
            let mut flag = Flag::rollout(&format!("large-flag-{i:06}"), 10.0).unwrap();
            flag.description = format!("flag number {i} of a large environment, owned by some team");
            v1::Flag::from(&flag)
        })
        .collect()
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e3)
}

fn run(count: usize) {
    let server = BenchServer::start().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut admin = v1::admin_client::AdminClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let flags = flags(count);
        let bytes: usize = flags.iter().map(prost::Message::encoded_len).sum();
        let apply = v1::ApplyRequest {
            environment: String::new(),
            flags,
            segments: vec![],
            prune: false,
            dry_run: false,
            expected_revision: None,
            change: change(),
        };
        let started = Instant::now();
        admin.apply(apply).await.unwrap();
        let applied = started.elapsed();

        let started = Instant::now();
        let client = Client::builder(server.endpoint())
            .heartbeat_timeout(Duration::from_secs(120))
            .start_timeout(Duration::from_secs(120), OnTimeout::Fail)
            .connect()
            .await
            .unwrap();
        let cold_start = started.elapsed();

        let started = Instant::now();
        let list = v1::ListFlagsRequest { environment: String::new(), prefix: String::new(), tag: String::new() };
        let listed = admin.list_flags(list).await.unwrap().into_inner();
        let listing = started.elapsed();
        assert_eq!(listed.flags.len(), count);
        let listed_bytes = listed.encoded_len();

        let key = "large-flag-000000";
        let user = Context::new("user-1");
        let mut propagation = Vec::with_capacity(CHANGES);
        let mut sdk_apply = Vec::with_capacity(CHANGES);
        for n in 0..CHANGES {
            let percent = if n % 2 == 0 { 100.0 } else { 0.0 };
            let mut changes = client.flag_changes(key);
            let started = Instant::now();
            let set = v1::SetRolloutRequest {
                environment: String::new(),
                key: key.into(),
                percent,
                dark_percent: None,
                expected_version: None,
                change: change(),
                create_if_missing: false,
            };
            admin.set_rollout(set).await.unwrap();
            while client.is_enabled(key, &user) != (percent > 0.0) {
                changes.changed().await.unwrap();
            }
            propagation.push(started.elapsed());
            sdk_apply.push(client.sync_stats().last_apply);
        }
        propagation.sort_unstable();
        sdk_apply.sort_unstable();
        println!(
            "large_environment flags={count} flag_bytes={bytes} apply_ms={} sdk_cold_start_ms={} list_ms={} list_bytes={listed_bytes} change_to_sdk_p50_us={} change_to_sdk_p99_us={} sdk_apply_p50_us={} sdk_apply_max_us={}",
            millis(applied),
            millis(cold_start),
            millis(listing),
            percentile_us(&propagation, 50.0),
            percentile_us(&propagation, 99.0),
            percentile_us(&sdk_apply, 50.0),
            sdk_apply.last().map_or(0, Duration::as_micros),
        );
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: a small run proves it works.
    let default = if std::env::args().any(|a| a == "--bench") { vec![1_000, 50_000] } else { vec![100] };
    let counts: Vec<usize> = match std::env::var("LARGE_ENVIRONMENT_FLAGS") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => default,
    };
    for count in counts {
        run(count);
    }
}
