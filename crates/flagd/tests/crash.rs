//! A flagd process is killed with SIGKILL while a client makes acknowledged writes; after a
//! restart on the same file every acknowledged write is there. Several cycles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::start_binary;
use support::writers::{assert_history_holds, wait_for_acks, write_until_failure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    let (mut child, mut endpoint) = start_binary(&data);
    for cycle in 0..5u64 {
        // A client writes as fast as it can, remembering each acknowledged version; the kill
        // comes at a different moment each cycle, once writes are being acknowledged (the
        // first one waits for the store to open and recover).
        let (writer, acked) = write_until_failure(endpoint.clone(), format!("cycle {cycle}"));
        wait_for_acks(&acked, 1).await;
        tokio::time::sleep(Duration::from_millis(20 + 37 * cycle)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        child.wait().unwrap();
        writer.await.unwrap();
        let this_cycle = acked.lock().unwrap().clone();
        assert!(!this_cycle.is_empty(), "cycle {cycle} acknowledged no write");
        acknowledged.extend(this_cycle);

        (child, endpoint) = start_binary(&data);
        assert_history_holds(&endpoint, &acknowledged).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
