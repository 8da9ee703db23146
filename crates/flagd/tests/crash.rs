//! A flagd process is killed with SIGKILL while a client makes acknowledged writes; after a
//! restart on the same file every acknowledged write is there. Several cycles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_proto::v1;
use support::{COUNTER, flag, put, start_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    let (mut child, mut endpoint) = start_binary(&data);
    for cycle in 0..5u64 {
        // A client writes as fast as it can, remembering each acknowledged version.
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let (acked, endpoint) = (Arc::clone(&acked), endpoint.clone());
            tokio::spawn(async move {
                let Ok(mut admin) = v1::admin_client::AdminClient::connect(endpoint).await else {
                    return; // killed before it accepted the connection
                };
                for n in 0.. {
                    let mut counter = flag(COUNTER);
                    counter.description = format!("cycle {cycle} write {n}");
                    match admin.put_flag(put("", counter.clone(), None, "crash test")).await {
                        Ok(written) => {
                            let version = written.into_inner().entry.unwrap().version;
                            acked.lock().unwrap().push((version, counter.description));
                        }
                        Err(_) => return, // the server died mid-request: not acknowledged
                    }
                }
            })
        };
        // Kill at a different moment each cycle, once writes are being acknowledged (the
        // first one waits for the store to open and recover).
        let deadline = tokio::time::Instant::now() + support::WAIT;
        while acked.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20 + 37 * cycle)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        child.wait().unwrap();
        writer.await.unwrap();
        let this_cycle = acked.lock().unwrap().clone();
        assert!(!this_cycle.is_empty(), "cycle {cycle} acknowledged no write");
        acknowledged.extend(this_cycle);

        (child, endpoint) = start_binary(&data);
        let mut admin = v1::admin_client::AdminClient::connect(endpoint.clone()).await.unwrap();
        let mut stored = std::collections::HashMap::new();
        let mut before = 0;
        loop {
            let page = admin
                .flag_history(v1::FlagHistoryRequest {
                    environment: "".into(),
                    key: "counter".into(),
                    page_size: 1000,
                    before_version: before,
                })
                .await
                .unwrap()
                .into_inner();
            for entry in page.entries {
                stored.insert(entry.version, entry.flag.unwrap().description);
            }
            if page.next_before == 0 {
                break;
            }
            before = page.next_before;
        }
        for (version, description) in &acknowledged {
            assert_eq!(
                stored.get(version),
                Some(description),
                "acknowledged version {version} lost in cycle {cycle}"
            );
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
