//! The tokens file against the real binary: a file flagd cannot use fails the start, SIGHUP
//! reloads it without dropping streams (a revoked or narrowed token's streams end, the
//! others keep receiving changes), and a malformed file on SIGHUP keeps the principals in
//! force, with the log saying why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::v1::sync_client::SyncClient;
use flag_proto::v1::{self, watch_response};
use support::{Bearer, Watcher, write_tokens};
use tonic::Code;
use tonic::transport::Channel;

const ADMIN: &str = "admin-secret-0123456789";
const WEB: &str = "web-secret-0123456789";
const APP: &str = "app-secret-0123456789";
const EDGE: &str = "edge-secret-0123456789";
const NEW: &str = "new-secret-0123456789";

/// A flagd process whose stderr lines arrive on `log`; killed when dropped.
struct Flagd {
    child: Child,
    endpoint: String,
    management: std::net::SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(data: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flagd"));
    command
        .args(["--listen", "127.0.0.1:0", "--management", "127.0.0.1:0"])
        .args(["--sync-listen", "127.0.0.1:0", "--ofrep-listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("FLAGD_LOG", "info")
        .env_remove("FLAGD_ADMIN_TOKEN")
        .env_remove("FLAGD_SDK_TOKEN")
        .env_remove("FLAGD_TOKENS");
    command
}

fn start(data: &Path, args: &[&str]) -> Flagd {
    let mut child = command(data, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (sender, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let word =
        |name: &str| line.split_whitespace().find_map(|word| word.strip_prefix(name)).expect("flagd listens");
    let (grpc, management) = (word("grpc="), word("management=").parse().unwrap());
    Flagd { child, endpoint: format!("http://{grpc}"), management, log }
}

impl Flagd {
    fn hang_up(&self) {
        let status = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// The first log line containing `text`, waiting up to 10 s for it.
    fn log_line(&self, text: &str) -> String {
        let deadline = Instant::now() + support::WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(_) => panic!("flagd did not log {text:?} in time"),
            }
        }
    }

    async fn metrics(&self) -> String {
        support::http_get(self.management, "/metrics").await.1
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint.clone()).unwrap().connect().await.unwrap()
    }

    async fn admin(
        &self,
        token: &str,
    ) -> AdminClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
        AdminClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    /// A stream for `environment` with `token`, past its first snapshot.
    async fn watch(&self, token: &str, environment: &str) -> Watcher {
        let client = SyncClient::with_interceptor(self.channel().await, Bearer::new(token));
        let mut watcher = Watcher::open(client, environment, 0).await.unwrap();
        assert!(matches!(watcher.next_change().await, watch_response::Kind::Snapshot(_)));
        watcher
    }
}

fn rollout(environment: &str, key: &str, percent: f64) -> v1::SetRolloutRequest {
    v1::SetRolloutRequest {
        environment: environment.into(),
        key: key.into(),
        percent,
        dark_percent: None,
        expected_version: None,
        change: support::change("tokens test"),
        create_if_missing: true,
    }
}

/// The status a stream ends with, skipping heartbeats.
async fn closing_status(watcher: &mut Watcher) -> tonic::Status {
    loop {
        match watcher.next_raw().await {
            Ok(Some(v1::WatchResponse { kind: Some(watch_response::Kind::Heartbeat(_)) })) => continue,
            Ok(other) => panic!("the stream went on: {other:?}"),
            Err(status) => return status,
        }
    }
}

/// Runs a start that must fail; returns its stderr.
fn failed_start(data: &Path, args: &[&str]) -> String {
    let output = command(data, args).output().unwrap();
    assert!(!output.status.success(), "flagd started: {output:?}");
    assert!(output.stdout.is_empty(), "a failed start printed {:?}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr).unwrap()
}

fn paths() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (data, tokens) = (dir.path().join("flags.redb"), dir.path().join("tokens.yaml"));
    (dir, data, tokens)
}

#[test]
fn a_tokens_file_flagd_cannot_use_fails_the_start_naming_the_field_and_line() {
    let (_dir, data, tokens) = paths();
    write_tokens(&tokens, &[("ci-bot", WEB, "writer", "[staging]"), ("web", APP, "owner", "[production]")]);
    let file = tokens.to_str().unwrap();
    let stderr = failed_start(&data, &["--tokens", file]);
    assert!(stderr.contains("the tokens file cannot be used"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:8: principals[1].role: expected one of admin, writer, reader, sdk, found \"owner\""
        )),
        "{stderr}"
    );
    assert!(!data.exists(), "a refused start created the store");

    // A name taken by the principal `--admin-token` makes, and a file that is not there.
    write_tokens(&tokens, &[("admin", WEB, "reader", "[staging]")]);
    let stderr = failed_start(&data, &["--tokens", file, "--admin-token", ADMIN]);
    assert!(
        stderr.contains(r#"principals[0].name: "admin" is the name of the principal --admin-token makes"#),
        "{stderr}"
    );
    let stderr = failed_start(&data, &["--tokens", &format!("{file}.missing")]);
    assert!(stderr.contains("reading the tokens file") && stderr.contains("tokens.yaml.missing"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_ends_the_streams_of_a_revoked_or_narrowed_token_and_keeps_the_others() {
    let (_dir, data, tokens) = paths();
    let everything = [
        ("web", WEB, "sdk", "[production]"),
        ("app", APP, "sdk", "[production]"),
        ("edge", EDGE, "sdk", "[production, staging]"),
    ];
    write_tokens(&tokens, &everything);
    let args = ["--tokens", tokens.to_str().unwrap(), "--admin-token", ADMIN, "--environments", "staging"];
    let flagd = start(&data, &args);
    let mut admin = flagd.admin(ADMIN).await;
    admin.set_rollout(rollout("production", "chat", 5.0)).await.unwrap();
    admin.set_rollout(rollout("staging", "chat", 5.0)).await.unwrap();
    let mut web = flagd.watch(WEB, "production").await;
    let mut app = flagd.watch(APP, "production").await;
    let mut edge = flagd.watch(EDGE, "staging").await;

    // `app` revoked, `edge` narrowed to production, `web` kept, `new` added.
    write_tokens(
        &tokens,
        &[everything[0], ("edge", EDGE, "sdk", "[production]"), ("new", NEW, "reader", "['*']")],
    );
    flagd.hang_up();
    flagd.log_line("tokens file reloaded");

    let revoked = closing_status(&mut app).await;
    assert_eq!(revoked.code(), Code::Unauthenticated, "{revoked:?}");
    assert!(revoked.message().contains(r#"principal "app" is no longer accepted"#), "{revoked:?}");
    let narrowed = closing_status(&mut edge).await;
    assert_eq!(narrowed.code(), Code::PermissionDenied, "{narrowed:?}");
    assert_eq!(
        narrowed.message(),
        r#"principal "edge" (sdk for production) may not follow environment "staging""#
    );
    // A token revoked cannot open a stream again; the new one is accepted at once.
    let again =
        Watcher::open(SyncClient::with_interceptor(flagd.channel().await, Bearer::new(APP)), "production", 0);
    assert_eq!(again.await.err().map(|status| status.code()), Some(Code::Unauthenticated));
    flagd.admin(NEW).await.list_flags(v1::ListFlagsRequest::default()).await.unwrap();

    let metrics = flagd.metrics().await;
    assert!(metrics.contains(r#"flagd_tokens_reloads_total{outcome="loaded"} 1"#), "{metrics}");
    assert!(metrics.contains("flagd_access_denied_total 1"), "{metrics}");

    // The kept stream never dropped: the next change reaches it.
    admin.set_rollout(rollout("production", "chat", 25.0)).await.unwrap();
    match web.next_change().await {
        watch_response::Kind::Changes(changes) => assert_eq!(changes.revision, 2),
        other => panic!("expected the change, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_malformed_file_keeps_the_principals_in_force_and_logs_the_field() {
    let (_dir, data, tokens) = paths();
    write_tokens(&tokens, &[("web", WEB, "sdk", "[production]"), ("ci-bot", APP, "writer", "[production]")]);
    let flagd = start(&data, &["--tokens", tokens.to_str().unwrap()]);
    let mut web = flagd.watch(WEB, "production").await;

    std::fs::write(
        &tokens,
        "principals:\n  - name: ci-bot\n    role: writer\n    environments: [production]\n",
    )
    .unwrap();
    flagd.hang_up();
    let warning = flagd.log_line("tokens file not reloaded");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("principals[0].sha256: required"), "{warning}");

    let metrics = flagd.metrics().await;
    assert!(metrics.contains(r#"flagd_tokens_reloads_total{outcome="refused"} 1"#), "{metrics}");

    // Both principals still work, and the stream was never touched.
    let mut bot = flagd.admin(APP).await;
    bot.set_rollout(rollout("production", "chat", 5.0)).await.unwrap();
    match web.next_change().await {
        watch_response::Kind::Changes(changes) => assert_eq!(changes.revision, 1),
        other => panic!("expected the change, got {other:?}"),
    }
    // Only the Sync service takes an SDK token.
    let refused = flagd.admin(WEB).await.list_flags(v1::ListFlagsRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains(r#"principal "web" is an SDK token"#), "{refused:?}");
}
