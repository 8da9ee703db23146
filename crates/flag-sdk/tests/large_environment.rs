//! An environment whose snapshot is larger than gRPC's default 4 MiB message limit: a new
//! client still gets all of it, and a change to one flag reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_core::{Context, Flag};
use flag_proto::v1;
use flag_sdk::{Evaluate, OnTimeout, Status, TestServer};
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(60);
const FLAGS: usize = 12_000;

fn large_flags() -> Vec<v1::Flag> {
    (0..FLAGS)
        .map(|i| {
            let mut flag = Flag::rollout(&format!("flag-{i:05}"), 0.0).unwrap();
            flag.description =
                format!("{i}: {}", "a description long enough to make the environment big ".repeat(6));
            v1::Flag::from(&flag)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_four_mebibytes_syncs_and_later_changes_follow() {
    let server = TestServer::start().await.unwrap();
    let flags = large_flags();
    let snapshot_bytes: usize = flags.iter().map(|flag| flag.encoded_len() + 4).sum();
    assert!(snapshot_bytes > 4 << 20, "the test needs a snapshot over 4 MiB, has {snapshot_bytes} bytes");
    let apply = v1::ApplyRequest {
        environment: String::new(),
        flags,
        segments: vec![],
        prune: false,
        dry_run: false,
        expected_revision: None,
        change: None,
    };
    server.admin().await.unwrap().apply(apply).await.unwrap();

    let client =
        server.client_builder().start_timeout(WAIT, OnTimeout::Fail).connect().await.expect("a cold start");
    assert_eq!(client.status(), Status::Ready);
    let user = Context::new("user-1");
    let current = client.current();
    for key in ["flag-00000", "flag-05000", "flag-11999"] {
        assert_eq!(current.evaluate(key, &user).variant, Some("off"), "{key} is in the snapshot");
    }
    drop(current);
    assert!(!client.is_enabled("flag-11999", &user));

    let mut changes = client.flag_changes("flag-11999");
    let revision = server.put_flag(&Flag::rollout("flag-11999", 100.0).unwrap()).await.unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the change in time");
    assert!(client.is_enabled("flag-11999", &user));
    assert_eq!(client.revision(), revision);
    assert!(client.sync_stats().last_apply > Duration::ZERO);
}
