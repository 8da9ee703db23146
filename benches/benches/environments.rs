//! `cargo bench -p flag-benches --bench environments`: a diff of two 10,000-flag
//! environments and a point-in-time restore of a 10,000-flag environment (every flag
//! changed, durable), each request to answer through a real flagd on loopback. The apply that
//! writes the same 10,000 changes is measured in the same run: the floor a restore (which is
//! an apply of the past state) stands on.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1::{self, admin_client::AdminClient};
use tonic::transport::Channel;

const FLAGS: u64 = 10_000;
const DIFFS: usize = 20;
const RESTORES: usize = 6;
const MESSAGE_LIMIT: usize = 256 * 1024 * 1024;

fn change() -> Option<v1::Change> {
    Some(v1::Change { actor: "bench".into(), reason: "environments".into() })
}

fn apply_request(environment: &str, round: u64) -> v1::ApplyRequest {
    v1::ApplyRequest {
        environment: environment.into(),
        flags: (0..FLAGS).map(|n| bench_flag(&format!("flag-{n:05}"), round)).collect(),
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: change(),
    }
}

fn side(environment: &str, revision: Option<u64>) -> Option<v1::DiffSide> {
    Some(v1::DiffSide {
        environment: environment.into(),
        point: revision.map(v1::diff_side::Point::Revision),
    })
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "environments/{name} samples={} p50_ms={:.1} max_ms={:.1}",
        samples.len(),
        percentile_us(&samples, 50.0) as f64 / 1000.0,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
}

fn main() {
    let server = BenchServer::start_with(&["staging"]).unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut admin = AdminClient::new(channel)
            .max_decoding_message_size(MESSAGE_LIMIT)
            .max_encoding_message_size(MESSAGE_LIMIT);
        // staging and production: the same 10,000 keys, every description different.
        admin.apply(apply_request("staging", 1)).await.unwrap();
        let first = admin.apply(apply_request("production", 2)).await.unwrap().into_inner().revision;
        let mut applies = Vec::new();
        let started = Instant::now();
        let second = admin.apply(apply_request("production", 3)).await.unwrap().into_inner().revision;
        applies.push(started.elapsed());

        let mut diffs = Vec::with_capacity(DIFFS);
        for round in 0..DIFFS {
            // Environments, then one environment at two revisions.
            let (from, to) = if round % 2 == 0 {
                (side("staging", None), side("production", None))
            } else {
                (side("production", Some(first)), side("production", Some(second)))
            };
            let started = Instant::now();
            let diff = admin.diff(v1::DiffRequest { from, to, keys: vec![] }).await.unwrap().into_inner();
            diffs.push(started.elapsed());
            assert_eq!(diff.flags.len() as u64, FLAGS, "every flag differs");
        }

        let mut restores = Vec::with_capacity(RESTORES);
        for round in 0..RESTORES {
            // Back and forth between the two states: every restore changes all 10,000 flags.
            let to = if round % 2 == 0 { first } else { second };
            let request = v1::PointInTimeRestoreRequest {
                environment: "production".into(),
                point: Some(v1::point_in_time_restore_request::Point::ToRevision(to)),
                allow_revive: false,
                dry_run: false,
                expected_revision: None,
                change: change(),
            };
            let started = Instant::now();
            let restored = admin.point_in_time_restore(request).await.unwrap().into_inner();
            restores.push(started.elapsed());
            assert_eq!(restored.applied.unwrap().changes.len() as u64, FLAGS);
            // An apply of the same size between restores, as the floor.
            let started = Instant::now();
            admin.apply(apply_request("production", 10 + round as u64)).await.unwrap();
            applies.push(started.elapsed());
        }
        report("diff_10000_flags", diffs);
        report("restore_10000_flags", restores);
        report("apply_10000_flags", applies);
    });
}
