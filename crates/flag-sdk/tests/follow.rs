//! A client against a real flagd: changes arrive promptly, a restarted flagd is resumed
//! from the client's revision, and a client started while flagd is down serves its cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_core::{Context, Flag};
use flag_sdk::{Client, ConnectError, Evaluate, OnTimeout, Status, TestServer};

/// Generous: these waits end as soon as the condition holds; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(10);

async fn wait_for_status(client: &Client, wanted: fn(&Status) -> bool) {
    let mut status = client.status_changes();
    tokio::time::timeout(WAIT, status.wait_for(wanted)).await.expect("the status in time").unwrap();
}

/// The cache is written in the background after a snapshot is applied.
async fn wait_for_file(path: &std::path::Path) {
    tokio::time::timeout(WAIT, async {
        while !path.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the cache file is written");
}

#[tokio::test]
async fn a_change_is_seen_promptly_and_acknowledged() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 0.0).unwrap()).await.unwrap();
    server.put_flag(&Flag::rollout("other", 0.0).unwrap()).await.unwrap();
    let client = server.client_builder().connect().await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    let user = Context::new("user-1");
    assert!(!client.is_enabled("chat", &user));

    let mut chat_changes = client.flag_changes("chat");
    let mut other_changes = client.flag_changes("other");
    let revision = server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let seen = tokio::time::timeout(WAIT, chat_changes.changed()).await.expect("the change in time");
    assert_eq!(seen, Some(revision));
    assert!(client.is_enabled("chat", &user));
    assert_eq!(client.revision(), revision);
    // A change to one flag does not wake another flag's subscribers.
    assert!(tokio::time::timeout(Duration::from_millis(100), other_changes.changed()).await.is_err());

    // The kill switch reports this client among those that applied the kill.
    let (_, acknowledged) = server.kill("chat", WAIT).await.unwrap();
    assert_eq!(acknowledged, 1);
    assert!(!client.is_enabled("chat", &user));
}

#[tokio::test]
async fn after_a_flagd_restart_the_client_resumes_from_its_revision() {
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 0.0).unwrap()).await.unwrap();
    let client = server.client_builder().connect().await.unwrap();
    assert_eq!(client.sync_stats().full_snapshots, 1);
    let user = Context::new("user-1");

    server.stop().await.unwrap();
    wait_for_status(&client, |s| matches!(s, Status::Stale { .. })).await;
    // Still answering from the last snapshot while flagd is down.
    assert!(!client.is_enabled("chat", &user));

    server.restart().await.unwrap();
    wait_for_status(&client, |s| *s == Status::Ready).await;
    let mut changes = client.flag_changes("chat");
    let revision = server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the change in time");
    assert!(client.is_enabled("chat", &user));
    assert_eq!(client.revision(), revision);

    let stats = client.sync_stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
    // The reconnection resumed with changes: still only the first full snapshot.
    assert_eq!(stats.full_snapshots, 1, "{stats:?}");
    assert!(stats.changes >= 2, "{stats:?}");
}

#[tokio::test]
async fn with_flagd_down_at_start_the_cache_is_served_until_flagd_returns() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("flags.cache.json");
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let first = server.client_builder().cache_file(&cache).connect().await.unwrap();
    let revision = first.revision();
    wait_for_file(&cache).await;
    drop(first);
    server.stop().await.unwrap();

    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_start = std::time::Instant::now();
    let user = Context::new("user-1");
    let client = server
        .client_builder()
        .cache_file(&cache)
        .start_timeout(Duration::from_millis(200), OnTimeout::Serve)
        .connect()
        .await
        .unwrap();
    // Stale since the cache was written: the flags are at least that old.
    assert!(
        matches!(client.status(), Status::Stale { since } if since < before_start),
        "{:?}",
        client.status()
    );
    assert!(client.is_enabled("chat", &user));
    assert_eq!(client.revision(), revision);

    server.restart().await.unwrap();
    wait_for_status(&client, |s| *s == Status::Ready).await;
    assert!(client.is_enabled("chat", &user));
    // Resumed from the cached revision: no full snapshot was needed.
    assert_eq!(client.sync_stats().full_snapshots, 0);
}

#[tokio::test]
async fn a_cache_from_another_store_is_replaced_by_a_full_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("flags.cache.json");
    let old = TestServer::start().await.unwrap();
    old.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let first = old.client_builder().cache_file(&cache).connect().await.unwrap();
    let cached_revision = first.revision();
    wait_for_file(&cache).await;
    drop(first);

    // A new flagd with its own store, already further along than the cached revision: a
    // delta from the cached revision would apply its writes on top of the old store's flags.
    let new = TestServer::start().await.unwrap();
    for percent in [0.0, 10.0, 100.0] {
        new.put_flag(&Flag::rollout("other", percent).unwrap()).await.unwrap();
    }
    let client = new.client_builder().cache_file(&cache).connect().await.unwrap();
    assert!(client.revision() > cached_revision);
    wait_for_status(&client, |s| *s == Status::Ready).await;
    let user = Context::new("user-1");
    assert!(client.is_enabled("other", &user));
    assert!(!client.is_enabled("chat", &user), "the old store's flag is gone");
    assert_eq!(client.sync_stats().full_snapshots, 1);
}

#[tokio::test]
async fn a_corrupt_cache_is_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("flags.cache.json");
    std::fs::write(&cache, b"{\"format\": 1, \"environment\": \"production\", \"revision\": 3, \"fla")
        .unwrap();
    let mut server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    server.stop().await.unwrap();

    let user = Context::new("user-1");
    let client = server
        .client_builder()
        .cache_file(&cache)
        .start_timeout(Duration::from_millis(100), OnTimeout::Serve)
        .connect()
        .await
        .unwrap();
    // Nothing usable in the cache: callers' defaults, no crash.
    assert!(matches!(client.status(), Status::Stale { .. }));
    assert!(!client.is_enabled("chat", &user));
    assert!(client.bool_value("chat", &user, true));

    server.restart().await.unwrap();
    wait_for_status(&client, |s| *s == Status::Ready).await;
    assert!(client.is_enabled("chat", &user));
    tokio::time::timeout(WAIT, async {
        while !std::fs::read_to_string(&cache).unwrap_or_default().contains("\"chat\"") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the cache file is rewritten");
}

#[tokio::test]
async fn a_start_told_to_fail_fails_when_flagd_is_down() {
    let mut server = TestServer::start().await.unwrap();
    server.stop().await.unwrap();
    let result =
        server.client_builder().start_timeout(Duration::from_secs(1), OnTimeout::Fail).connect().await;
    match result {
        Err(ConnectError::Timeout { last_error, .. }) => {
            assert!(last_error.is_some_and(|e| e.contains("connect")), "the cause is reported");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_endpoint_or_token_is_refused_before_connecting() {
    let server = TestServer::start().await.unwrap();
    // The test server needs no token; a bad endpoint is refused before any attempt.
    let error = Client::builder("not a uri").connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Endpoint { .. }), "{error}");
    let error = server.client_builder().token("line\nbreak").connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Token), "{error}");
}

#[tokio::test]
async fn the_sdk_token_opens_the_stream_and_a_wrong_one_is_reported() {
    let server =
        TestServer::start_with(|config| config.with_admin_token("admin-secret").with_sdk_token("sdk-secret"))
            .await
            .unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let client = server.client_builder().token("sdk-secret").connect().await.unwrap();
    assert!(client.is_enabled("chat", &Context::new("user-1")));

    let refused = server
        .client_builder()
        .token("guess")
        // Long: a refusal is answered at once, not at the timeout.
        .start_timeout(Duration::from_secs(30), OnTimeout::Fail)
        .connect()
        .await;
    match refused {
        Err(ConnectError::Refused { reason }) => {
            assert!(reason.contains("token"), "the refusal is reported: {reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_client_whose_runtime_has_shut_down_reports_its_flags_stale() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(TestServer::start()).unwrap();
    server_runtime.block_on(server.put_flag(&Flag::rollout("chat", 100.0).unwrap())).unwrap();
    let client_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = client_runtime.block_on(server.client_builder().connect()).unwrap();
    assert_eq!(client.status(), Status::Ready);

    // Nothing follows flagd any more: the flags still answer, but they are not Ready.
    drop(client_runtime);
    assert!(matches!(client.status(), Status::Stale { .. }), "{:?}", client.status());
    assert!(client.is_enabled("chat", &Context::new("user-1")));
    drop(server_runtime);
}

#[tokio::test]
async fn dropping_the_last_client_ends_its_stream() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let client = server.client_builder().connect().await.unwrap();
    let clone = client.clone();
    drop(client);
    let connected = || async {
        let request =
            flag_proto::v1::WaitForAcksRequest { environment: String::new(), revision: 0, wait_ms: 0 };
        server.admin().await.unwrap().wait_for_acks(request).await.unwrap().into_inner().connected
    };
    assert_eq!(connected().await, 1, "a clone keeps the client following");
    drop(clone);
    tokio::time::timeout(WAIT, async {
        while connected().await > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the stream ends once the last clone is dropped");
}
