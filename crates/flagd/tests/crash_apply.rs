//! flagd is killed with SIGKILL while a large apply and a stream of kills and revives are in
//! flight; after a restart on the same file: every acknowledged kill or revive is there, an
//! apply is there whole or not at all (whole if it was acknowledged), and a write the server
//! refused is not there. Several cycles, killed at a different moment each time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_proto::v1::{self, admin_client::AdminClient};
use support::{change, flag, put, start_binary};
use tonic::Code;
use tonic::transport::Channel;

const FLAGS: usize = 3_000;
const MESSAGE_LIMIT: usize = flag_proto::MAX_MESSAGE_BYTES;

async fn admin(endpoint: &str) -> Option<AdminClient<Channel>> {
    let client = AdminClient::connect(endpoint.to_owned()).await.ok()?;
    Some(client.max_decoding_message_size(MESSAGE_LIMIT).max_encoding_message_size(MESSAGE_LIMIT))
}

fn bulk(cycle: u64) -> Vec<v1::Flag> {
    (0..FLAGS)
        .map(|n| {
            let mut flag = flag_core::Flag::rollout(&format!("bulk-{n:05}"), 50.0).unwrap();
            flag.description = format!("cycle {cycle}");
            v1::Flag::from(&flag)
        })
        .collect()
}

const BASE: &str = "
key: base
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }";

/// Refused on every write: it requires a flag that does not exist.
const BROKEN: &str = "
key: broken
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }
prerequisites: [{ flag: missing, variant: on }]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_apply_and_kills_keeps_exactly_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    let (mut child, mut endpoint) = start_binary(&data);
    let mut seed = admin(&endpoint).await.unwrap();
    seed.put_flag(put("", flag(BASE), None, "seed")).await.unwrap();
    // Acknowledged (version, enabled) of `base`, over every cycle.
    let mut acknowledged: Vec<(u64, bool)> = Vec::new();
    for cycle in 1..=4u64 {
        let apply = {
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut admin = admin(&endpoint).await?;
                let request = v1::ApplyRequest {
                    environment: String::new(),
                    flags: bulk(cycle),
                    segments: vec![],
                    prune: false,
                    dry_run: false,
                    expected_revision: None,
                    change: change("crash test apply"),
                };
                Some(admin.apply(request).await.is_ok())
            })
        };
        let acked = Arc::new(Mutex::new(Vec::new()));
        let killer = {
            let (acked, endpoint) = (Arc::clone(&acked), endpoint.clone());
            tokio::spawn(async move {
                let Some(mut admin) = admin(&endpoint).await else { return };
                for n in 0.. {
                    let kill = n % 2 == 0;
                    let written = if kill {
                        let request = v1::KillRequest {
                            environment: String::new(),
                            key: "base".into(),
                            change: change("crash test kill"),
                            wait_ms: 0,
                        };
                        admin.kill(request).await.map(|r| r.into_inner().write.unwrap())
                    } else {
                        let request = v1::ReviveRequest {
                            environment: String::new(),
                            key: "base".into(),
                            expected_version: None,
                            change: change("crash test revive"),
                        };
                        admin.revive(request).await.map(|r| r.into_inner())
                    };
                    match written {
                        Ok(written) => acked.lock().unwrap().push((written.entry.unwrap().version, !kill)),
                        Err(_) => return, // the server died mid-request: not acknowledged
                    }
                }
            })
        };
        // A write the server refuses, sent while the apply runs: it must never appear.
        if let Some(mut admin) = admin(&endpoint).await {
            if let Err(refused) = admin.put_flag(put("", flag(BROKEN), None, "refused")).await {
                assert!(matches!(refused.code(), Code::InvalidArgument | Code::Unavailable | Code::Unknown));
            } else {
                panic!("a flag requiring a missing flag was accepted");
            }
        }
        tokio::time::sleep(Duration::from_millis(30 + 90 * cycle)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush
        child.wait().unwrap();
        let apply_acked = apply.await.unwrap().unwrap_or(false);
        killer.await.unwrap();
        acknowledged.extend(acked.lock().unwrap().iter().copied());

        (child, endpoint) = start_binary(&data);
        let mut admin = admin(&endpoint).await.unwrap();
        let list =
            v1::ListFlagsRequest { environment: String::new(), prefix: String::new(), tag: String::new() };
        let flags = admin.list_flags(list).await.unwrap().into_inner().flags;
        assert!(flags.iter().all(|flag| flag.key != "broken"), "a refused write is present");
        let this_cycle =
            flags.iter().filter(|f| f.key.starts_with("bulk-") && f.description == format!("cycle {cycle}"));
        let applied = this_cycle.count();
        assert!(
            applied == 0 || applied == FLAGS,
            "cycle {cycle}: the apply is half there ({applied} of {FLAGS})"
        );
        if apply_acked {
            assert_eq!(applied, FLAGS, "cycle {cycle}: an acknowledged apply is lost");
        }
        let history = admin
            .flag_history(v1::FlagHistoryRequest {
                environment: String::new(),
                key: "base".into(),
                page_size: 1000,
                before_version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let stored: std::collections::HashMap<u64, bool> = history
            .entries
            .iter()
            .map(|entry| (entry.version, entry.flag.as_ref().unwrap().enabled))
            .collect();
        for (version, enabled) in &acknowledged {
            assert_eq!(
                stored.get(version),
                Some(enabled),
                "cycle {cycle}: acknowledged version {version} of base lost"
            );
        }
    }
    assert!(!acknowledged.is_empty(), "no kill or revive was acknowledged: the test tested nothing");
    child.kill().unwrap();
    child.wait().unwrap();
}
