//! A write or an apply whose client's deadline passes while it waits for its turn to write
//! is not committed: the client, told its call timed out, never sees it happen later.
//!
//! Beside the code rather than in `tests/`: the queue is made by holding the writer's turn,
//! which only the crate can do; the server, its socket and the client are real.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flag_core::Flag;
use flag_proto::v1::{self, admin_client::AdminClient, admin_server::AdminServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request};

use crate::admin::AdminService;
use crate::config::Config;
use crate::state::State;
use crate::store::{Store, StoreOptions};

/// The calls' deadlines, tried in turn. A deadline must pass while its call is queued, so
/// the call must reach the queue first; on a loaded machine a call sometimes timed out before
/// its handler ran (at 300 ms, and once at 3 s), which queues nothing and proves nothing. Then
/// the scenario runs again with a longer deadline rather than failing or passing falsely.
const CLIENT_TIMEOUTS: [Duration; 3] =
    [Duration::from_secs(3), Duration::from_secs(8), Duration::from_secs(20)];

fn flag(key: &str) -> v1::Flag {
    v1::Flag::from(&Flag::rollout(key, 50.0).unwrap())
}

fn change() -> Option<v1::Change> {
    Some(v1::Change { actor: "test".into(), reason: "queued deadline".into() })
}

async fn serve(store: Store) -> AdminClient<tonic::transport::Channel> {
    let state =
        Arc::new(State::new(Config::default(), store, crate::auth::Access::new(None, None, None).unwrap()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AdminServer::new(AdminService::new(state)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    AdminClient::connect(format!("http://{address}")).await.unwrap()
}

/// Waits until `done` holds; panics after 20 s (a loaded machine is slow, never that slow).
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_deadline_passes_while_queued_are_not_committed() {
    for timeout in CLIENT_TIMEOUTS {
        if queued_writes_time_out(timeout).await {
            return;
        }
        eprintln!("a call's {timeout:?} deadline passed before it was queued; again with a longer one");
    }
    panic!("no attempt queued both calls before their deadline passed: {CLIENT_TIMEOUTS:?}");
}

/// A write and an apply queue behind a held turn until their `timeout` passes; once the turn
/// is free, neither is committed, and the writer serves the next write. `false` when a call
/// timed out before it was queued (the scenario did not happen).
async fn queued_writes_time_out(timeout: Duration) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("flags.redb"), StoreOptions::default()).unwrap();
    let mut client = serve(store.clone()).await;

    let held = store.hold_writes();
    let mut put = Request::new(v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(flag("late")),
        expected_version: None,
        change: change(),
    });
    put.set_timeout(timeout);
    let mut apply = Request::new(v1::ApplyRequest {
        environment: "production".into(),
        flags: vec![flag("late-a"), flag("late-b")],
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: change(),
    });
    apply.set_timeout(timeout);
    let (mut put_client, mut apply_client) = (client.clone(), client.clone());
    let calls = tokio::spawn(async move {
        let (put, apply) = tokio::join!(put_client.put_flag(put), apply_client.apply(apply));
        [("put", put.map(drop)), ("apply", apply.map(drop))]
    });
    while store.queued_writes() < 2 {
        if calls.is_finished() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The server counts each deadline from when its request arrived, before it queued, so
    // both have passed on the server by then. Freeing the turn any earlier races the client's
    // cancellation: the client gives up at its own deadline, and until the server hears of it
    // (or its deadline passes too) the call is still wanted and commits.
    let server_deadlines_passed = Instant::now() + timeout;
    for (call, answer) in calls.await.unwrap() {
        let error = answer.expect_err("the writer's turn is held: the call cannot have been answered");
        assert!(
            matches!(error.code(), Code::DeadlineExceeded | Code::Cancelled),
            "{call}: {:?} {}",
            error.code(),
            error.message()
        );
    }
    tokio::time::sleep_until(server_deadlines_passed.into()).await;
    drop(held);

    eventually("both queued writes are decided", || store.abandoned_writes() == 2).await;
    assert_eq!(store.revision("production").unwrap(), 0, "nothing was committed");
    for key in ["late", "late-a", "late-b"] {
        assert!(store.flag("production", key).unwrap().is_none(), "{key} was written");
    }
    // The writer is free again: a write with time to spare commits.
    let answer = client
        .put_flag(v1::PutFlagRequest {
            environment: "production".into(),
            flag: Some(flag("on-time")),
            expected_version: None,
            change: change(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.revision, 1);
    true
}
