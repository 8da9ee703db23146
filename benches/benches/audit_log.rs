//! `cargo bench -p flag-benches --bench audit_log`: `Admin.QueryLog` on a store of 100,000
//! changes (two environments of 10,000 flags, each written five times), each request to
//! answer through a real flagd on loopback: the newest page, one flag's changes, a filter
//! that matches only the oldest change (the whole log walked, then only a time window), and paging
//! through a whole environment, whose later pages should cost what the first does.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, bench_flag, percentile_us};
use flag_proto::v1::{self, admin_client::AdminClient};
use tonic::transport::Channel;

const FLAGS: u64 = 10_000;
const ROUNDS: u64 = 5;
const SAMPLES: usize = 20;
const MESSAGE_LIMIT: usize = 256 * 1024 * 1024;

fn change(actor: &str) -> Option<v1::Change> {
    Some(v1::Change { actor: actor.into(), reason: "audit log".into() })
}

fn apply_request(environment: &str, round: u64) -> v1::ApplyRequest {
    v1::ApplyRequest {
        environment: environment.into(),
        flags: (0..FLAGS).map(|n| bench_flag(&format!("flag-{n:05}"), round)).collect(),
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: change("bench"),
    }
}

fn all(page_size: u32) -> v1::QueryLogRequest {
    v1::QueryLogRequest { all_environments: true, page_size, ..Default::default() }
}

fn report(name: &str, mut samples: Vec<Duration>, entries: usize) {
    samples.sort_unstable();
    println!(
        "audit_log/{name} samples={} entries={entries} p50_ms={:.1} max_ms={:.1}",
        samples.len(),
        percentile_us(&samples, 50.0) as f64 / 1000.0,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
}

type Admin = AdminClient<Channel>;

/// `SAMPLES` runs of `request`: their times and the entries of the last.
async fn sampled(admin: &mut Admin, name: &str, request: v1::QueryLogRequest) {
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut entries = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let page = admin.query_log(request.clone()).await.unwrap().into_inner();
        samples.push(started.elapsed());
        entries = page.entries.len();
    }
    report(name, samples, entries);
}

fn main() {
    let server = BenchServer::start().unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut admin = AdminClient::new(channel)
            .max_decoding_message_size(MESSAGE_LIMIT)
            .max_encoding_message_size(MESSAGE_LIMIT);
        // The oldest change of all, by someone who made no other.
        let needle = v1::PutFlagRequest {
            environment: "staging".into(),
            flag: Some(bench_flag("needle", 0)),
            expected_version: None,
            change: change("rare"),
        };
        admin.put_flag(needle).await.unwrap();
        let mut last_round_started = 0;
        for round in 1..=ROUNDS {
            if round == ROUNDS {
                tokio::time::sleep(Duration::from_millis(5)).await;
                last_round_started = now_ms();
            }
            admin.apply(apply_request("staging", round)).await.unwrap();
            admin.apply(apply_request("production", round)).await.unwrap();
        }

        sampled(&mut admin, "newest_50_all_environments", all(50)).await;
        sampled(&mut admin, "newest_1000_all_environments", all(1000)).await;
        let one_flag = v1::QueryLogRequest { flags: vec!["flag-04242".into()], ..all(50) };
        sampled(&mut admin, "one_flag_all_environments", one_flag).await;
        let rare = v1::QueryLogRequest { actor: "rare".into(), ..all(50) };
        sampled(&mut admin, "rare_actor_whole_log_walked", rare).await;
        // The same filter within the last round's window: `since` ends the walk there.
        let recent =
            v1::QueryLogRequest { actor: "rare".into(), since_unix_ms: Some(last_round_started), ..all(50) };
        sampled(&mut admin, "rare_actor_since_last_round", recent).await;

        // Every page of production, 1000 at a time, from the newest to the first change.
        let (mut pages, mut cursor, mut entries) = (Vec::new(), String::new(), 0);
        loop {
            let request = v1::QueryLogRequest {
                environment: "production".into(),
                page_size: 1000,
                cursor: cursor.clone(),
                ..Default::default()
            };
            let started = Instant::now();
            let page = admin.query_log(request).await.unwrap().into_inner();
            pages.push(started.elapsed());
            entries += page.entries.len();
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(entries as u64, FLAGS * ROUNDS);
        let (first, deepest) = (pages[0], pages[pages.len() - 2]);
        report("pages_of_1000_through_production", pages, entries);
        println!(
            "audit_log/first_and_deepest_full_page first_ms={:.1} deepest_ms={:.1}",
            first.as_secs_f64() * 1000.0,
            deepest.as_secs_f64() * 1000.0
        );
    });
}

fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap()
}
