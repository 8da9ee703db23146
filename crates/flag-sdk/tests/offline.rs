//! Offline mode: flags from a file, reloaded when it changes; a bad edit keeps the flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_core::Context;
use flag_sdk::{Client, ConnectError, Evaluate, Status};

const WAIT: Duration = Duration::from_secs(10);

/// What the client logged on this thread: the reload task runs here, on the test's
/// current-thread runtime, so its warnings land here too.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || logs.clone()).finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Waits until a line containing `text` is logged.
    async fn wait_for(&self, text: &str) {
        let logged = async {
            while !String::from_utf8_lossy(&self.0.lock().unwrap()).contains(text) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(WAIT, logged).await.unwrap_or_else(|_| panic!("never logged {text:?}"));
    }
}

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
    let logs = Logs::default();
    let _capture = logs.capture();
    let client = Client::offline(&path).reload_every(Duration::from_millis(10)).connect().await.unwrap();
    let user = Context::new("user-1");
    assert_eq!(client.status(), Status::Offline);
    assert!(!client.is_enabled("chat", &user));

    let mut changes = client.flag_changes("chat");
    // A different length, so the change is seen even where modification times are coarse.
    std::fs::write(&path, format!("# turned on\n{}", chat("on"))).unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the reload in time");
    assert!(client.is_enabled("chat", &user));

    // An invalid edit is read and refused; the flags stay as they were.
    std::fs::write(&path, "flags:\n  - key: chat\n    variants: []\n").unwrap();
    logs.wait_for("keeping the previous flags: the offline file is not usable").await;
    assert!(client.is_enabled("chat", &user));
    assert_eq!(client.revision(), 2, "one load at the start, one reload");
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
