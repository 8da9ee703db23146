//! Several flagd processes on one PostgreSQL store: each takes writes, and each streams
//! every committed change — its own and the others' — to its own SDKs, in revision order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::task::JoinHandle;

use flag_proto::v1::{self, watch_response::Kind};
use support::postgres::{Flagd, run_flagctl};
use support::writers::{
    Acknowledged, assert_history_holds, counter_history, wait_for_acks, write_until_failure,
};
use support::{COUNTER, Watcher, change, flag, put};

fn database() -> Option<String> {
    pg_test::fresh_schema("flagd").unwrap()
}

/// The next snapshot or change batch: its revision, the flags it brings, and whether it is
/// a snapshot. Heartbeats keep a stream busy, so the wait has a deadline of its own.
async fn next_revision(watcher: &mut Watcher) -> (u64, Vec<v1::Flag>, bool) {
    let next = tokio::time::timeout(support::WAIT, watcher.next_change()).await;
    match next.expect("a snapshot or changes in time") {
        Kind::Snapshot(snapshot) => (snapshot.revision, snapshot.flags, true),
        Kind::Changes(changes) => (changes.revision, changes.upserted_flags, false),
        other => panic!("expected a snapshot or changes, got {other:?}"),
    }
}

/// Reads the stream until it reaches `revision`; the flags seen on the way, by key, last
/// version wins, and the revisions in the order they came.
async fn follow_to(watcher: &mut Watcher, revision: u64) -> (Vec<v1::Flag>, Vec<u64>) {
    let (mut flags, mut revisions) = (Vec::new(), Vec::new());
    loop {
        let (at, upserted, _) = next_revision(watcher).await;
        revisions.push(at);
        for flag in upserted {
            flags.retain(|seen: &v1::Flag| seen.key != flag.key);
            flags.push(flag);
        }
        if at >= revision {
            return (flags, revisions);
        }
    }
}

fn set(flagd: &Flagd, args: &[&str]) {
    let output = run_flagctl(&flagd.endpoint, args);
    assert!(output.status.success(), "flagctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A writer of `counter` on each of A and B (see `write_until_failure`), started once A
/// has created it and returned once each has `count` writes acknowledged; they go on.
async fn writing_on_both(a: &Flagd, b: &Flagd, count: usize) -> [(JoinHandle<()>, Arc<Acknowledged>); 2] {
    let mut admin = v1::admin_client::AdminClient::connect(a.endpoint.clone()).await.unwrap();
    admin.put_flag(put("", flag(COUNTER), None, "first")).await.unwrap();
    let writers = [
        write_until_failure(a.endpoint.clone(), "A".into()),
        write_until_failure(b.endpoint.clone(), "B".into()),
    ];
    for (_, acked) in &writers {
        wait_for_acks(acked, count).await;
    }
    writers
}

/// Every write the writers had acknowledged.
fn acknowledged(writers: &[(JoinHandle<()>, Arc<Acknowledged>)]) -> Vec<(u64, String)> {
    writers.iter().flat_map(|(_, acked)| acked.lock().unwrap().clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_either_replica_reaches_the_sdks_of_both() {
    let Some(url) = database() else { return };
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    let (mut on_a, mut on_b) = (a.watch("production", 0, "").await, b.watch("production", 0, "").await);
    let (snapshot_a, snapshot_b) = (next_revision(&mut on_a).await, next_revision(&mut on_b).await);
    assert_eq!((snapshot_a.0, snapshot_b.0), (0, 0), "both start from the empty store");

    set(&a, &["set", "chat", "--percent", "5", "--reason", "on A"]);
    let (flags, _) = follow_to(&mut on_b, 1).await;
    assert_eq!(
        flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
        ["chat"],
        "A's write reached B's SDK"
    );

    // B writes over what A wrote: its writer knows the flag A created.
    set(&b, &["set", "chat", "--percent", "25", "--reason", "on B"]);
    set(&b, &["set", "search", "--percent", "50", "--reason", "on B"]);
    let (flags_a, revisions_a) = follow_to(&mut on_a, 3).await;
    let chat = flags_a.iter().find(|f| f.key == "chat").expect("chat reached A's SDK");
    assert_eq!(chat.version, 2, "B's write is chat's second version: {chat:?}");
    assert!(flags_a.iter().any(|f| f.key == "search"), "{flags_a:?}");
    assert!(revisions_a.windows(2).all(|pair| pair[0] < pair[1]), "in revision order: {revisions_a:?}");
    let (_, revisions_b) = follow_to(&mut on_b, 3).await;
    assert_eq!(revisions_b.last(), Some(&3));
}

/// The notification channel is the database's: another store's revisions, in another
/// schema of the same database, must neither reach nor hold back this store's streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_stores_writes_in_the_same_database_leave_this_stores_streams_as_they_are() {
    let (Some(url), Some(other_url)) = (database(), database()) else { return };
    let (a, b, other) = (Flagd::start(&url), Flagd::start(&url), Flagd::start(&other_url));
    let mut on_b = b.watch("production", 0, "").await;
    assert_eq!(next_revision(&mut on_b).await.0, 0);

    // The other store moves well past this one's revisions.
    for percent in ["1", "2", "3", "4", "5"] {
        set(&other, &["set", "elsewhere", "--percent", percent, "--reason", "other store"]);
    }
    set(&a, &["set", "chat", "--percent", "5", "--reason", "on A"]);
    let (flags, revisions) = follow_to(&mut on_b, 1).await;
    assert_eq!(revisions.last(), Some(&1), "B's SDK is at this store's revision: {revisions:?}");
    assert_eq!(flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["chat"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_resumes_by_revision_on_another_replica_without_a_snapshot() {
    let Some(url) = database() else { return };
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    set(&a, &["set", "chat", "--percent", "5", "--reason", "first"]);
    let store_id = match a.watch("production", 0, "").await.next_change().await {
        Kind::Snapshot(snapshot) => snapshot.store_id,
        other => panic!("expected a snapshot, got {other:?}"),
    };
    set(&a, &["set", "chat", "--percent", "10", "--reason", "second"]);

    // An SDK that had revision 1 from A goes on at B: the store id is the database's.
    let mut resumed = b.watch("production", 1, &store_id).await;
    let (revision, flags, snapshot) = next_revision(&mut resumed).await;
    assert!(!snapshot, "resumed with the changes since, not a snapshot");
    assert_eq!(revision, 2);
    assert_eq!(flags.len(), 1, "only what changed since revision 1: {flags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_both_replicas_get_gap_free_versions_and_lose_nothing() {
    let Some(url) = database() else { return };
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    let writers = writing_on_both(&a, &b, 40).await;
    for (writer, _) in &writers {
        writer.abort();
    }
    let acked = acknowledged(&writers);
    let versions: BTreeSet<u64> = acked.iter().map(|(version, _)| *version).collect();
    assert_eq!(versions.len(), acked.len(), "no version acknowledged twice");
    // Every version from 1 to the newest is in history, with what was acknowledged.
    let history = counter_history(&b.endpoint).await;
    let newest = *history.keys().last().unwrap();
    assert_eq!(
        history.keys().copied().collect::<Vec<_>>(),
        (1..=newest).collect::<Vec<_>>(),
        "gap-free versions"
    );
    for (version, description) in &acked {
        assert_eq!(history.get(version), Some(description), "acknowledged version {version} is kept");
    }
}

/// An SDK that acknowledges every revision it is sent, until aborted.
fn acknowledging(mut watcher: Watcher) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (revision, _, _) = next_revision(&mut watcher).await;
            watcher.ack(revision).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_on_one_replica_counts_the_acknowledgements_of_sdks_on_every_replica() {
    let Some(url) = database() else { return };
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    set(&a, &["set", "chat", "--percent", "5", "--reason", "before the incident"]);
    let sdks = [
        acknowledging(a.watch("production", 0, "").await),
        acknowledging(b.watch("production", 0, "").await),
    ];

    // Once B has heard of A's SDK, a kill on B waits for both.
    let mut admin = v1::admin_client::AdminClient::connect(b.endpoint.clone()).await.unwrap();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let request = v1::WaitForAcksRequest { environment: "production".into(), revision: 1, wait_ms: 1000 };
        let report = admin.wait_for_acks(request).await.unwrap().into_inner();
        if report.connected == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "B counts the SDKs of A and B: {report:?}");
    }
    let kill = v1::KillRequest {
        environment: "production".into(),
        key: "chat".into(),
        change: change("incident"),
        wait_ms: 10_000,
    };
    let acks = admin.kill(kill).await.unwrap().into_inner().acks.unwrap();
    assert_eq!((acks.connected, acks.acknowledged), (2, 2), "{acks:?}");
    assert!(acks.missing.is_empty(), "{acks:?}");
    for sdk in sdks {
        sdk.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_fail_over_from_a_sigkilled_replica_and_no_acknowledged_write_is_lost() {
    let Some(url) = database() else { return };
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    let client = flag_sdk::Client::builder(format!("{},{}", a.endpoint, b.endpoint)).connect().await.unwrap();
    assert_eq!(client.endpoint(), Some(a.endpoint.clone()));
    let [(mut writer_a, acked_a), (writer_b, acked_b)] = writing_on_both(&a, &b, 20).await;
    let b_endpoint = b.endpoint.clone();
    let killed_at = std::time::Instant::now();
    a.kill();
    (&mut writer_a).await.unwrap();
    let deadline = killed_at + support::WAIT;
    while client.endpoint().as_ref() != Some(&b_endpoint) || client.status() != flag_sdk::Status::Ready {
        assert!(std::time::Instant::now() < deadline, "the SDK follows B: {:?}", client.endpoint());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let failed_over_in = killed_at.elapsed();
    assert!(failed_over_in < std::time::Duration::from_secs(2), "failed over in {failed_over_in:?}");
    let stats = client.sync_stats();
    assert_eq!(stats.full_snapshots, 1, "resumed by revision on B, not from a snapshot: {stats:?}");

    // B's writes go on reaching the SDK, now from B.
    let before = acked_b.lock().unwrap().len();
    wait_for_acks(&acked_b, before + 10).await;
    writer_b.abort();
    let mut check = v1::admin_client::AdminClient::connect(b.endpoint.clone()).await.unwrap();
    let revision = check
        .list_flags(v1::ListFlagsRequest { environment: "production".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let deadline = std::time::Instant::now() + support::WAIT;
    while client.revision() < revision {
        assert!(
            std::time::Instant::now() < deadline,
            "the SDK reaches revision {revision}: {}",
            client.revision()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let writers = [(writer_a, acked_a), (writer_b, acked_b)];
    assert_history_holds(&b.endpoint, &acknowledged(&writers)).await;
}

/// Writes `counter` on `endpoint` until one commits, retrying refusals while the database
/// comes back.
async fn write_once_back(endpoint: &str, reason: &str) {
    let mut admin = v1::admin_client::AdminClient::connect(endpoint.to_owned()).await.unwrap();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while let Err(status) = admin.put_flag(put("", flag(COUNTER), None, reason)).await {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(tokio::time::Instant::now() < deadline, "writes commit again on {endpoint}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_recover_from_a_database_crash_under_writes_and_stream_again() {
    // A cluster of its own: this test crashes it.
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let url = cluster.create_database("flags").unwrap();
    let (a, b) = (Flagd::start(&url), Flagd::start(&url));
    let mut writers = writing_on_both(&a, &b, 5).await;
    // No shutdown checkpoint: PostgreSQL recovers from its WAL.
    cluster.restart_immediate().unwrap();
    for (writer, _) in &mut writers {
        writer.await.unwrap();
    }

    // Both take writes again, and B's SDK hears of A's: B listens for changes again.
    write_once_back(&a.endpoint, "A after the crash").await;
    write_once_back(&b.endpoint, "B after the crash").await;
    let mut on_b = b.watch("production", 0, "").await;
    let (at, _, _) = next_revision(&mut on_b).await;
    set(&a, &["set", "chat", "--percent", "5", "--reason", "after the crash"]);
    let (flags, _) = follow_to(&mut on_b, at + 1).await;
    assert!(flags.iter().any(|flag| flag.key == "chat"), "A's write reached B's SDK: {flags:?}");

    // Every acknowledged write is kept; of the others, only the one each writer had in
    // flight when the database went (its outcome unknown to the writer) may be there.
    let history = counter_history(&b.endpoint).await;
    let in_flight: Vec<String> = ["A", "B"]
        .iter()
        .zip(&writers)
        .map(|(tag, (_, acked))| format!("{tag} write {}", acked.lock().unwrap().len()))
        .collect();
    let acknowledged = acknowledged(&writers);
    for (version, description) in &acknowledged {
        assert_eq!(history.get(version), Some(description), "acknowledged version {version} is kept");
    }
    for (version, description) in &history {
        let known = description.is_empty()
            || acknowledged.iter().any(|(_, acked)| acked == description)
            || in_flight.contains(description);
        assert!(known, "version {version} ({description:?}) was never acknowledged nor in flight");
    }
}
