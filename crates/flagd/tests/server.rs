//! The real server on 127.0.0.1:0 with a real redb file, driven through its gRPC clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use flag_proto::v1::{self, watch_response::Kind};
use support::{TestServer, change, data_file, flag, http_get, put};
use tonic::Code;

const CHAT: &str = "
key: chat
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: off }";

fn config(dir: &tempfile::TempDir) -> flagd::Config {
    flagd::Config::new(data_file(dir.path()))
}

fn chat_with(description: &str) -> v1::Flag {
    let mut flag = flag(CHAT);
    flag.description = description.into();
    flag
}

fn changes(kind: Kind) -> v1::Changes {
    match kind {
        Kind::Changes(changes) => changes,
        other => panic!("expected changes, got {other:?}"),
    }
}

fn snapshot(kind: Kind) -> v1::FullSnapshot {
    match kind {
        Kind::Snapshot(snapshot) => snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn a_write_reaches_a_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut watcher = server.watch("production", 0).await;
    let empty = snapshot(watcher.next_change().await);
    assert_eq!(empty.store_id.len(), 16, "{empty:?}");
    assert_eq!(v1::FullSnapshot { store_id: String::new(), ..empty }, v1::FullSnapshot::default());

    let written =
        server.admin().await.put_flag(put("", chat_with("v1"), None, "launch")).await.unwrap().into_inner();
    assert_eq!(written.revision, 1);
    let delta = changes(watcher.next_change().await);
    assert_eq!((delta.from_revision, delta.revision), (0, 1));
    assert_eq!(delta.upserted_flags[0].key, "chat");
    assert_eq!(delta.upserted_flags[0].version, 1);
    server.stop().await;
}

#[tokio::test]
async fn resuming_gets_exactly_the_missed_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        let mut f = chat_with(&format!("#{i}"));
        f.key = (*key).into();
        admin.put_flag(put("production", f, None, "setup")).await.unwrap();
    }
    admin.put_flag(put("production", chat_with("x"), None, "x")).await.unwrap();
    admin
        .delete_flag(v1::DeleteFlagRequest {
            environment: "".into(),
            key: "a".into(),
            expected_version: None,
            change: change("gone"),
        })
        .await
        .unwrap();
    // The client holds revision 2 (a and b): it needs c and chat, and a's deletion.
    let mut watcher = server.watch("production", 2).await;
    let delta = changes(watcher.next_change().await);
    assert_eq!((delta.from_revision, delta.revision), (2, 5));
    let mut keys: Vec<&str> = delta.upserted_flags.iter().map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["c", "chat"]);
    assert_eq!(delta.deleted_flags, ["a"]);

    // A client that is already current is told so at once, then gets the next change.
    let mut current = server.watch("production", 5).await;
    let up_to_date = changes(current.next_change().await);
    assert_eq!((up_to_date.from_revision, up_to_date.revision), (5, 5));
    assert!(up_to_date.upserted_flags.is_empty() && up_to_date.deleted_flags.is_empty());
    admin.put_flag(put("production", chat_with("y"), None, "y")).await.unwrap();
    let next = changes(current.next_change().await);
    assert_eq!((next.from_revision, next.revision), (5, 6));
    server.stop().await;
}

#[tokio::test]
async fn a_revision_older_than_the_resume_window_gets_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir).with_resume_window(2)).await;
    let mut admin = server.admin().await;
    for i in 0..5 {
        admin.put_flag(put("production", chat_with(&format!("{i}")), None, "bump")).await.unwrap();
    }
    let mut behind = server.watch("production", 1).await;
    let full = snapshot(behind.next_change().await);
    assert_eq!(full.revision, 5);
    assert_eq!(full.flags[0].description, "4");
    let mut close = server.watch("production", 3).await;
    assert_eq!(changes(close.next_change().await).from_revision, 3);
    server.stop().await;
}

#[tokio::test]
async fn expected_version_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    server.admin().await.put_flag(put("", chat_with("0"), Some(0), "create")).await.unwrap();

    // A stale version is refused, and the answer carries the current one.
    let stale =
        server.admin().await.put_flag(put("", chat_with("stale"), Some(7), "stale")).await.unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(stale.metadata().get("x-current-version").unwrap(), "1");

    // Two writers read-modify-write the same flag with expected_version and retry on conflict.
    let writers = (0..2).map(|writer| {
        let endpoint = server.endpoint();
        tokio::spawn(async move {
            let mut admin = v1::admin_client::AdminClient::connect(endpoint).await.unwrap();
            let mut conflicts = 0;
            for _ in 0..15 {
                loop {
                    let current = admin
                        .get_flag(v1::GetFlagRequest { environment: "".into(), key: "chat".into() })
                        .await
                        .unwrap()
                        .into_inner()
                        .flag
                        .unwrap();
                    let count: u64 = current.description.parse().unwrap();
                    let next = chat_with(&(count + 1).to_string());
                    match admin
                        .put_flag(put("", next, Some(current.version), &format!("writer {writer}")))
                        .await
                    {
                        Ok(_) => break,
                        Err(status) if status.code() == Code::FailedPrecondition => conflicts += 1,
                        Err(status) => panic!("{status}"),
                    }
                }
            }
            conflicts
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let last = server
        .admin()
        .await
        .get_flag(v1::GetFlagRequest { environment: "".into(), key: "chat".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(last.flag.as_ref().unwrap().description, "30", "every increment landed");
    assert_eq!(last.flag.unwrap().version, 31);
    server.stop().await;
}

#[tokio::test]
async fn invalid_flags_are_refused_with_paths_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    admin.put_flag(put("", chat_with("good"), None, "good")).await.unwrap();

    let bad = flag(
        "
key: chat
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: of
rules: [{ clauses: [{ attribute: version, op: semver_gte, values: ['1.2'] }], serve: { variant: on } }]
default: { split: { weights: [{ variant: on, weight: 5000 }, { variant: off, weight: -90000 }] } }",
    );
    let refused = admin.put_flag(put("", bad, None, "bad")).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    for path in ["off_variant", "rules[0].clauses[0].values[0]", "default.split.weights"] {
        assert!(refused.message().contains(path), "{path} missing from: {}", refused.message());
    }
    // A malformed message is refused before validation, naming its field.
    let mut no_value = chat_with("x");
    no_value.variants[0].value = None;
    let malformed = admin.put_flag(put("", no_value, None, "x")).await.unwrap_err();
    assert!(malformed.message().contains("flag.variants[0].value"), "{}", malformed.message());

    let stored =
        admin.get_flag(v1::GetFlagRequest { environment: "".into(), key: "chat".into() }).await.unwrap();
    let stored = stored.into_inner();
    assert_eq!((stored.revision, stored.flag.unwrap().description.as_str()), (1, "good"));
    let history = admin
        .flag_history(v1::FlagHistoryRequest {
            environment: "".into(),
            key: "chat".into(),
            page_size: 0,
            before_version: 0,
        })
        .await
        .unwrap();
    assert_eq!(history.into_inner().entries.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn tokens_guard_both_services() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start(config(&dir).with_admin_token("admin-secret").with_sdk_token("sdk-secret")).await;
    let list = || v1::ListFlagsRequest::default();

    let anonymous = server.admin().await.list_flags(list()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let with_sdk_token = server.admin_with_token("sdk-secret").await.list_flags(list()).await.unwrap_err();
    assert_eq!(with_sdk_token.code(), Code::Unauthenticated);
    server.admin_with_token("admin-secret").await.list_flags(list()).await.unwrap();

    let channel = server.channel().await;
    let sync = |token: Option<&'static str>| {
        let channel = channel.clone();
        async move {
            match token {
                Some(token) => {
                    let client =
                        v1::sync_client::SyncClient::with_interceptor(channel, support::Bearer::new(token));
                    support::Watcher::open(client, "production", 0).await.map(drop)
                }
                None => support::Watcher::open(v1::sync_client::SyncClient::new(channel), "production", 0)
                    .await
                    .map(drop),
            }
        }
    };
    assert_eq!(sync(None).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(sync(Some("wrong")).await.unwrap_err().code(), Code::Unauthenticated);
    sync(Some("sdk-secret")).await.unwrap();
    sync(Some("admin-secret")).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn history_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    let rollout = |percent: f64, reason: &str| v1::SetRolloutRequest {
        environment: "".into(),
        key: "chat".into(),
        percent,
        dark_percent: None,
        expected_version: None,
        change: change(reason),
        create_if_missing: true,
    };
    admin.set_rollout(rollout(5.0, "start at 5 %")).await.unwrap();
    admin.set_rollout(rollout(25.0, "metrics look fine")).await.unwrap();
    admin
        .kill(v1::KillRequest {
            environment: "".into(),
            key: "chat".into(),
            change: change("incident 4711"),
            wait_ms: 0,
        })
        .await
        .unwrap();

    let history = admin
        .flag_history(v1::FlagHistoryRequest {
            environment: "".into(),
            key: "chat".into(),
            page_size: 2,
            before_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<&str> = history.entries.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["incident 4711", "metrics look fine"]);
    assert_eq!(history.entries[0].operation, v1::Operation::Kill as i32);
    assert_eq!(history.entries[0].actor, "tester");
    assert_eq!(history.next_before, 2);
    let older = admin
        .flag_history(v1::FlagHistoryRequest {
            environment: "".into(),
            key: "chat".into(),
            page_size: 2,
            before_version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.entries.iter().map(|e| e.version).collect::<Vec<_>>(), [1]);
    assert_eq!(older.next_before, 0);

    let rolled = admin
        .rollback(v1::RollbackRequest {
            environment: "".into(),
            key: "chat".into(),
            to_version: Some(1),
            expected_version: Some(3),
            change: change("back to 5 %"),
            // Version 1 was live and chat is killed now: restoring it live is a revive.
            allow_revive: true,
        })
        .await
        .unwrap()
        .into_inner();
    let entry = rolled.entry.unwrap();
    assert_eq!((entry.version, entry.operation), (4, v1::Operation::Rollback as i32));
    let restored: flag_core::Flag = entry.flag.unwrap().try_into().unwrap();
    let flag_core::Serve::Split(split) = &restored.default else { panic!("a rollout is a split") };
    assert_eq!(split.dark_launch_percentages(), Some((5.0, 5.0)));
    assert!(restored.enabled, "version 1 was not killed");

    let log = admin
        .environment_history(v1::EnvironmentHistoryRequest {
            environment: "".into(),
            page_size: 10,
            before_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.entries.iter().map(|e| e.revision).collect::<Vec<_>>(), [4, 3, 2, 1]);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_on_the_same_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir).with_environments(["staging"])).await;
    let mut admin = server.admin().await;
    admin.put_flag(put("production", chat_with("one"), None, "first")).await.unwrap();
    admin.put_flag(put("staging", chat_with("staged"), None, "stage")).await.unwrap();
    admin.put_flag(put("production", chat_with("two"), None, "second")).await.unwrap();
    drop(admin);
    server.stop().await;

    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    let production = admin
        .get_flag(v1::GetFlagRequest { environment: "".into(), key: "chat".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((production.revision, production.flag.unwrap().description.as_str()), (2, "two"));
    assert_eq!(production.last_change.unwrap().reason, "second");
    let staging = admin
        .get_flag(v1::GetFlagRequest { environment: "staging".into(), key: "chat".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(staging.flag.unwrap().description, "staged");
    let mut watcher = server.watch("production", 1).await;
    assert_eq!(changes(watcher.next_change().await).revision, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_client_resuming_from_another_store_gets_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    for description in ["one", "two", "three"] {
        admin.put_flag(put("production", chat_with(description), None, "edit")).await.unwrap();
    }
    let store_id = snapshot(server.watch("production", 0).await.next_change().await).store_id;

    // This store's id: the revision means something here, and the delta is sent.
    let mut same = server.watch_from("production", 1, &store_id).await;
    assert_eq!(changes(same.next_change().await).from_revision, 1);
    // Another store's revision 1 (a wiped or replaced server) means nothing: a snapshot.
    let mut other = server.watch_from("production", 1, "0123456789abcdef").await;
    let fresh = snapshot(other.next_change().await);
    assert_eq!((fresh.revision, fresh.flags[0].description.as_str()), (3, "three"));
    server.stop().await;

    // The id is the file's: a restart keeps it, so resuming clients keep their deltas.
    let server = TestServer::start(config(&dir)).await;
    let mut same = server.watch_from("production", 2, &store_id).await;
    assert_eq!(changes(same.next_change().await).from_revision, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_kill_reports_the_acknowledgements_of_connected_sdks() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut admin = server.admin().await;
    admin.put_flag(put("", chat_with("live"), None, "launch")).await.unwrap();

    // An SDK that acknowledges every revision it receives.
    let mut sdk = server.watch("production", 0).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (revision, flags) = match sdk.next_change().await {
                Kind::Snapshot(s) => (s.revision, s.flags),
                Kind::Changes(c) => (c.revision, c.upserted_flags),
                Kind::Heartbeat(_) | Kind::ReportAck(_) => continue,
            };
            sdk.ack(revision).await;
            if seen_tx.send(flags).await.is_err() {
                return;
            }
        }
    });
    assert!(seen.recv().await.unwrap()[0].enabled, "the snapshot holds the live flag");

    let killed = admin
        .kill(v1::KillRequest {
            environment: "".into(),
            key: "chat".into(),
            change: change("incident"),
            wait_ms: 5000,
        })
        .await
        .unwrap()
        .into_inner();
    let acks = killed.acks.unwrap();
    assert_eq!((acks.revision, acks.connected, acks.acknowledged), (2, 1, 1), "{acks:?}");
    assert!(acks.missing.is_empty());
    assert!(!seen.recv().await.unwrap()[0].enabled, "the SDK saw the kill");

    // With an SDK that never acknowledges, the report says so after the wait. The kill
    // answers at once; the acking SDK has its ack on the way before the wait begins.
    let silent = server.watch("production", 0).await;
    // A kill of a killed flag writes nothing: it answers with the kill in force.
    let kill = |reason: &str| v1::KillRequest {
        environment: "".into(),
        key: "chat".into(),
        change: change(reason),
        wait_ms: 0,
    };
    let again = admin.kill(kill("again")).await.unwrap().into_inner();
    let entry = again.write.as_ref().and_then(|w| w.entry.as_ref()).unwrap();
    assert!(again.already_killed);
    assert_eq!(
        (again.write.as_ref().unwrap().revision, entry.version, entry.reason.as_str()),
        (2, 2, "incident")
    );
    let revive = v1::ReviveRequest {
        environment: "".into(),
        key: "chat".into(),
        expected_version: None,
        change: change("fixed"),
    };
    admin.revive(revive).await.unwrap();
    seen.recv().await.unwrap();
    let second = admin.kill(kill("again")).await.unwrap().into_inner();
    assert!(!second.already_killed);
    seen.recv().await.unwrap();
    let revision = second.write.unwrap().revision;
    let report = admin
        .wait_for_acks(v1::WaitForAcksRequest { environment: "".into(), revision, wait_ms: 1000 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.connected, report.acknowledged), (2, 1), "{report:?}");
    assert_eq!(report.missing, std::slice::from_ref(&silent.name));
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_closes_its_request_side_keeps_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    let mut watcher = server.watch("production", 0).await;
    snapshot(watcher.next_change().await);
    watcher.close_requests();
    server.admin().await.put_flag(put("", chat_with("after close"), None, "x")).await.unwrap();
    assert_eq!(changes(watcher.next_change().await).upserted_flags[0].description, "after close");
    server.stop().await;
}

#[tokio::test]
async fn quiet_streams_get_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir).with_heartbeat_interval(Duration::from_millis(50))).await;
    let mut watcher = server.watch("production", 0).await;
    snapshot(watcher.next().await);
    match watcher.next().await {
        Kind::Heartbeat(beat) => assert_eq!((beat.revision, beat.interval_ms), (0, 50)),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_slow_client_is_dropped_without_slowing_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let limits = config(&dir).with_slow_client_limits(Duration::from_millis(300), 1);
    let server = TestServer::start(limits).await;
    let mut admin = server.admin().await;
    let mut slow = server.watch("production", 0).await;
    let mut fast = server.watch("production", 0).await;
    snapshot(fast.next_change().await);
    // Large frames fill the HTTP/2 windows (a client accepts 2 MB per stream) and socket
    // buffers of the client that never reads.
    let big = "x".repeat(64 * 1024);
    for i in 0..160 {
        admin.put_flag(put("", chat_with(&format!("{i}{big}")), None, "fill")).await.unwrap();
        let delta = changes(fast.next_change().await);
        assert_eq!(delta.revision, i + 1, "the reading client keeps up");
    }
    // The slow client reads what was queued, then learns why it was cut off.
    let status = loop {
        match slow.next_raw().await {
            Ok(Some(v1::WatchResponse { kind: Some(Kind::Heartbeat(_)) })) => {
                panic!("the slow client was not dropped")
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("reconnect with since_revision"), "{}", status.message());
    server.stop().await;
}

#[tokio::test]
async fn management_endpoints_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(config(&dir)).await;
    server.admin().await.put_flag(put("", chat_with("m"), None, "metrics")).await.unwrap();
    assert_eq!(http_get(server.management, "/healthz").await.0, 200);
    assert_eq!(http_get(server.management, "/readyz").await, (200, "ready\n".into()));
    let (status, metrics) = http_get(server.management, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("flagd_writes_total{operation=\"put_flag\"}"), "{metrics}");
    assert!(metrics.contains("flagd_commit_seconds"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn listening_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = flagd::serve(listener, config(&dir), async {}).await.unwrap_err();
    assert!(matches!(refused, flagd::ServeError::InsecureListen(_)), "{refused}");
    assert!(refused.to_string().contains("FLAGD_ADMIN_TOKEN"));
    // An empty token (an unfilled secret) is no token.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let empty = flagd::serve(listener, config(&dir).with_admin_token(""), async {}).await.unwrap_err();
    assert!(matches!(empty, flagd::ServeError::InsecureListen(_)), "{empty}");
}
