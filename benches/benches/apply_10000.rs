//! `cargo bench -p flag-benches --bench apply_10000`: one `Admin.Apply` of N flags, every one
//! of them changed, from request to durable commit, through a real flagd on loopback. N =
//! 1,000, 2,500 and 10,000 in the same run, so the growth (linear or not) shows; then the
//! 10,000-flag apply again once its environment has the history of `AGED` more applies, so
//! a commit that grows with the history shows too.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1::{self, admin_client::AdminClient};
use tonic::transport::Channel;

const ROUNDS: u64 = 5;
/// Unmeasured applies between the 10,000-flag rounds and the aged ones.
const AGED: u64 = 20;
/// Large applies exceed tonic's 4 MiB default in one message.
const MESSAGE_LIMIT: usize = 256 * 1024 * 1024;

fn apply_request(environment: &str, flags: u64, round: u64) -> v1::ApplyRequest {
    v1::ApplyRequest {
        environment: environment.into(),
        flags: (0..flags).map(|n| bench_flag(&format!("flag-{n:05}"), round)).collect(),
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: Some(v1::Change { actor: "bench".into(), reason: "apply_10000".into() }),
    }
}

fn main() {
    let server = BenchServer::start_with(&["apply-1000", "apply-2500", "apply-10000"]).unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut admin = AdminClient::new(channel)
            .max_decoding_message_size(MESSAGE_LIMIT)
            .max_encoding_message_size(MESSAGE_LIMIT);
        // One environment per size, so each apply changes exactly `flags` flags. The first
        // `unmeasured` applies of a scenario are not timed: the one that creates the flags,
        // or the history of the aged one; the `ROUNDS` after them update every flag.
        let scenarios = [(1_000, 1, "fresh"), (2_500, 1, "fresh"), (10_000, 1, "fresh"), (10_000, AGED, "aged")];
        let mut rounds: HashMap<u64, u64> = HashMap::new();
        for (flags, unmeasured, history) in scenarios {
            let environment = format!("apply-{flags}");
            let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS as usize);
            for n in 0..unmeasured + ROUNDS {
                let round = rounds.entry(flags).or_default();
                let request = apply_request(&environment, flags, *round);
                *round += 1;
                let started = Instant::now();
                let applied = admin.apply(request).await.unwrap().into_inner();
                let elapsed = started.elapsed();
                assert_eq!(applied.changes.len() as u64, flags);
                if n >= unmeasured {
                    times.push(elapsed);
                }
            }
            times.sort_unstable();
            println!(
                "apply_10000/flags={flags} history={history} rounds={ROUNDS} p50_ms={} max_ms={} per_flag_us={}",
                percentile_us(&times, 50.0) / 1000,
                times.last().map_or(0, Duration::as_millis),
                percentile_us(&times, 50.0) / flags as u128,
            );
        }
    });
}
