//! Offline mode: flags from a file, reloaded when it changes; a bad edit keeps the flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_core::Context;
use flag_sdk::{Client, ConnectError, Evaluate, Status};

const WAIT: Duration = Duration::from_secs(10);

fn chat(serve: &str) -> String {
    format!(
        "flags:\n  - key: chat\n    variants: [{{ name: on, value: true }}, {{ name: off, value: false }}]\n    off_variant: off\n    default: {{ variant: {serve} }}\n"
    )
}

#[tokio::test]
async fn the_offline_file_is_served_and_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, chat("off")).unwrap();
    let client = Client::offline(&path).reload_every(Duration::from_millis(10)).connect().await.unwrap();
    let user = Context::new("user-1");
    assert_eq!(client.status(), Status::Offline);
    assert!(!client.is_enabled("chat", &user));

    let mut changes = client.flag_changes("chat");
    // A different length, so the change is seen even where modification times are coarse.
    std::fs::write(&path, format!("# turned on\n{}", chat("on"))).unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the reload in time");
    assert!(client.is_enabled("chat", &user));

    // An invalid edit is refused; the flags stay as they were.
    std::fs::write(&path, "flags:\n  - key: chat\n    variants: []\n").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.is_enabled("chat", &user));
}

#[tokio::test]
async fn an_unusable_offline_file_fails_the_start_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, "flags:\n  - key: chat\n    variants: [{ name: on, value: true }]\n    off_variant: gone\n    default: { variant: on }\n").unwrap();
    let error = Client::offline(&path).connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Offline(_)));
    let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(chain.contains("flags[0].off_variant"), "{chain}");
    let missing = Client::offline(dir.path().join("missing.yaml")).connect().await.unwrap_err();
    assert!(matches!(missing, ConnectError::Offline(_)));
}
