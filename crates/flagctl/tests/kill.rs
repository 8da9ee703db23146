//! The kill switch end to end: `flagctl kill` against the real flagd binary while SDK-like
//! `Sync.Watch` clients are connected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use flag_proto::v1::sync_client::SyncClient;
use flag_proto::v1::{self, watch_request, watch_response};
use support::Flagd;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const WAIT: Duration = Duration::from_secs(10);

/// A stream client named `name` that reports every flag it receives on `flags` and, when
/// `acks`, acknowledges each revision like an SDK that applied it.
async fn sdk(flagd: &Flagd, name: &str, acks: bool) -> mpsc::UnboundedReceiver<v1::Flag> {
    let mut client = SyncClient::connect(flagd.url()).await.unwrap();
    let (requests, outgoing) = mpsc::channel(16);
    let subscribe = watch_request::Kind::Subscribe(v1::Subscribe {
        environment: String::new(),
        since_revision: 0,
        client_name: name.into(),
        store_id: String::new(),
        observer: false,
        relay: false,
    });
    requests.send(v1::WatchRequest { kind: Some(subscribe) }).await.unwrap();
    let mut frames = client.watch(ReceiverStream::new(outgoing)).await.unwrap().into_inner();
    let (flags, received) = mpsc::unbounded_channel();
    // The first frame is the snapshot: wait for it so the server counts this client.
    let first = tokio::time::timeout(WAIT, frames.message()).await.unwrap().unwrap().unwrap();
    tokio::spawn(async move {
        let mut frame = Some(first);
        while let Some(current) = frame {
            let revision = match current.kind {
                Some(watch_response::Kind::Snapshot(snapshot)) => {
                    snapshot.flags.into_iter().for_each(|f| drop(flags.send(f)));
                    snapshot.revision
                }
                Some(watch_response::Kind::Changes(changes)) => {
                    changes.upserted_flags.into_iter().for_each(|f| drop(flags.send(f)));
                    changes.revision
                }
                _ => 0,
            };
            if acks && revision > 0 {
                let ack = watch_request::Kind::Ack(v1::Ack { revision });
                let _ = requests.send(v1::WatchRequest { kind: Some(ack) }).await;
            }
            frame = frames.message().await.ok().flatten();
        }
    });
    received
}

async fn flagctl(flagd: &Flagd, args: &[&str]) -> support::Run {
    let (address, args): (String, Vec<String>) =
        (flagd.address.clone(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::flagctl(&address, &args, &[])
    })
    .await
    .unwrap()
}

/// The next version of `key` the client receives.
async fn next_version_of(received: &mut mpsc::UnboundedReceiver<v1::Flag>, key: &str) -> v1::Flag {
    loop {
        let flag = tokio::time::timeout(WAIT, received.recv()).await.unwrap().unwrap();
        if flag.key == key {
            return flag;
        }
    }
}

#[tokio::test]
async fn kill_reaches_the_sdks_and_reports_their_acknowledgements() {
    let flagd = Flagd::start();
    flagctl(&flagd, &["set", "chat", "--percent", "25"]).await.ok();
    let mut first = sdk(&flagd, "checkout-api", true).await;
    let mut second = sdk(&flagd, "chat-web", true).await;
    assert!(next_version_of(&mut first, "chat").await.enabled);
    assert!(next_version_of(&mut second, "chat").await.enabled);

    let out = flagctl(&flagd, &["kill", "chat", "--reason", "incident 4711"]).await.ok();
    assert!(out.starts_with("killed chat (revision 2): 2/2 SDKs acknowledged, slowest "), "{out}");
    assert!(out.trim_end().ends_with(" ms"), "{out}");
    assert!(!next_version_of(&mut first, "chat").await.enabled);
    assert!(!next_version_of(&mut second, "chat").await.enabled);

    let history = flagctl(&flagd, &["history", "chat", "--limit", "1"]).await.ok();
    assert!(history.contains("kill by ana: \"incident 4711\""), "{history}");

    let out = flagctl(&flagd, &["revive", "chat"]).await.ok();
    assert!(out.contains("25% on, 75% off"), "{out}");
    assert!(next_version_of(&mut first, "chat").await.enabled);
}

#[tokio::test]
async fn every_change_of_an_apply_reaches_a_connected_sdk() {
    let flagd = Flagd::start();
    flagctl(&flagd, &["set", "chat", "--percent", "5"]).await.ok();
    let mut client = sdk(&flagd, "checkout-api", true).await;
    next_version_of(&mut client, "chat").await;
    let file = flagd.dir.path().join("flags.yaml");
    let mut set = flag_core::FlagSet::default();
    for key in ["alpha", "beta", "chat"] {
        set.flags.push(flag_core::Flag::rollout(key, 50.0).unwrap());
    }
    std::fs::write(&file, serde_yaml_ng::to_string(&set).unwrap()).unwrap();
    let out = flagctl(&flagd, &["apply", "-f", file.to_str().unwrap()]).await.ok();
    assert!(out.contains("applied 3 changes"), "{out}");
    // One commit of three revisions: the stream catches up with all of them.
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let flag = tokio::time::timeout(WAIT, client.recv()).await.unwrap().unwrap();
        seen.insert(flag.key.clone(), flag);
    }
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["alpha", "beta", "chat"]);
    assert_eq!(seen["chat"].version, 2);
}

#[tokio::test]
async fn an_sdk_that_does_not_acknowledge_in_time_is_named_and_the_exit_code_says_so() {
    let flagd = Flagd::start();
    flagctl(&flagd, &["set", "chat", "--on"]).await.ok();
    let _acking = sdk(&flagd, "good-api", true).await;
    let _silent = sdk(&flagd, "stuck-worker", false).await;

    let run = flagctl(&flagd, &["kill", "chat", "--wait", "300ms"]).await;
    assert_eq!(run.code, 8, "{run:?}");
    assert!(run.stdout.starts_with("killed chat (revision 2): 1/2 SDKs acknowledged"), "{run:?}");
    assert!(run.stdout.contains("not acknowledged: stuck-worker"), "{run:?}");
    assert!(run.stderr.contains("the kill of chat is committed"), "{run:?}");
    // The kill itself stands.
    let out = flagctl(&flagd, &["get", "chat"]).await.ok();
    assert!(out.contains("KILLED"), "{out}");
}
