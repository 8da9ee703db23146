//! `cargo bench -p flag-benches --bench kill_during_apply`: how long a kill takes, from its
//! request to its receipt on a connected `Sync.Watch` stream, while a 10,000-flag apply is
//! being planned, written and committed — and, in the same run, on a quiet server (the floor).
//!
//! `received` is request to receipt on the stream; `acknowledged` is request to the kill's
//! answer (committed durably). Kills and revives of one flag alternate, so every one is a real change. Each kill is sent
//! at a different point of an apply (0 to 900 ms after the apply's request); the apply
//! changes every one of its flags each time, so none of them is a no-op.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1::{self, admin_client::AdminClient, watch_request, watch_response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

const FLAGS: u64 = 10_000;
const SAMPLES: usize = 20;
const KEY: &str = "base";
/// Large environments exceed tonic's 4 MiB default in one message.
const MESSAGE_LIMIT: usize = 256 * 1024 * 1024;

fn change() -> Option<v1::Change> {
    Some(v1::Change { actor: "bench".into(), reason: "kill_during_apply".into() })
}

fn admin(channel: &Channel) -> AdminClient<Channel> {
    AdminClient::new(channel.clone())
        .max_decoding_message_size(MESSAGE_LIMIT)
        .max_encoding_message_size(MESSAGE_LIMIT)
}

fn apply_request(round: u64) -> v1::ApplyRequest {
    v1::ApplyRequest {
        environment: "production".into(),
        flags: (0..FLAGS).map(|n| bench_flag(&format!("flag-{n:05}"), round)).collect(),
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: change(),
    }
}

/// Follows the environment and reports each time `KEY` arrives, with its `enabled`.
async fn follow(channel: Channel, seen: mpsc::UnboundedSender<(Instant, bool)>) {
    let mut client = v1::sync_client::SyncClient::new(channel).max_decoding_message_size(MESSAGE_LIMIT);
    let (requests, outbound) = mpsc::channel(4);
    let subscribe = v1::Subscribe {
        environment: "production".into(),
        since_revision: 0,
        client_name: "kill-bench".into(),
        store_id: String::new(),
        observer: false,
        relay: false,
    };
    requests.send(v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) }).await.unwrap();
    let mut stream = client.watch(ReceiverStream::new(outbound)).await.unwrap().into_inner();
    while let Ok(Some(message)) = stream.message().await {
        let flags = match message.kind {
            Some(watch_response::Kind::Snapshot(snapshot)) => snapshot.flags,
            Some(watch_response::Kind::Changes(changes)) => changes.upserted_flags,
            _ => continue,
        };
        let now = Instant::now();
        for flag in flags.iter().filter(|flag| flag.key == KEY) {
            if seen.send((now, flag.enabled)).is_err() {
                return;
            }
        }
    }
    drop(requests);
}

/// Kills (or revives) `KEY` and waits for a stream to show it; the time from the request.
async fn kill_once(
    admin: &mut AdminClient<Channel>,
    seen: &mut mpsc::UnboundedReceiver<(Instant, bool)>,
    kill: bool,
    committed: &mut Vec<Duration>,
) -> Duration {
    let sent = Instant::now();
    if kill {
        let request = v1::KillRequest {
            environment: "production".into(),
            key: KEY.into(),
            change: change(),
            wait_ms: 0,
        };
        admin.kill(request).await.unwrap();
    } else {
        let request = v1::ReviveRequest {
            environment: "production".into(),
            key: KEY.into(),
            expected_version: None,
            change: change(),
        };
        admin.revive(request).await.unwrap();
    }
    committed.push(sent.elapsed());
    loop {
        let (at, enabled) = seen.recv().await.unwrap();
        if enabled != kill {
            return at.saturating_duration_since(sent);
        }
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "kill_during_apply/{name} samples={} p50_us={} p99_us={} max_us={}",
        samples.len(),
        percentile_us(&samples, 50.0),
        percentile_us(&samples, 99.0),
        samples.last().map_or(0, Duration::as_micros),
    );
}

fn main() {
    let server = BenchServer::start().unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut killer = admin(&channel);
        killer
            .put_flag(v1::PutFlagRequest {
                environment: "production".into(),
                flag: Some(bench_flag(KEY, 0)),
                expected_version: None,
                change: change(),
            })
            .await
            .unwrap();
        let started = Instant::now();
        admin(&channel).apply(apply_request(0)).await.unwrap();
        println!("kill_during_apply/seed apply_ms={}", started.elapsed().as_millis());

        let watch_channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        tokio::spawn(follow(watch_channel, seen_tx));
        let (_, enabled) = seen.recv().await.unwrap();
        assert!(enabled, "the flag starts live");

        let mut kill = true;
        let mut quiet = Vec::with_capacity(SAMPLES);
        let mut quiet_committed = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            quiet.push(kill_once(&mut killer, &mut seen, kill, &mut quiet_committed).await);
            kill = !kill;
        }

        let mut during = Vec::with_capacity(SAMPLES);
        let mut during_committed = Vec::with_capacity(SAMPLES);
        let mut apply_times = Vec::with_capacity(SAMPLES);
        for round in 0..SAMPLES {
            let mut applier = admin(&channel);
            let request = apply_request(round as u64 + 1);
            let applied = tokio::spawn(async move {
                let started = Instant::now();
                applier.apply(request).await.unwrap();
                started.elapsed()
            });
            tokio::time::sleep(Duration::from_millis((round as u64 * 47) % 900)).await;
            during.push(kill_once(&mut killer, &mut seen, kill, &mut during_committed).await);
            kill = !kill;
            apply_times.push(applied.await.unwrap());
        }
        report("quiet/received", quiet);
        report("quiet/acknowledged", quiet_committed);
        report("during_10000_flag_apply/received", during);
        report("during_10000_flag_apply/acknowledged", during_committed);
        apply_times.sort_unstable();
        println!(
            "kill_during_apply/apply_10000_with_kill p50_ms={} max_ms={}",
            percentile_us(&apply_times, 50.0) / 1000,
            apply_times.last().map_or(0, Duration::as_millis),
        );
    });
}
