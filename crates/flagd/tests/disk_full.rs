//! A full disk under a running flagd (the real binary): a kill attempted while full fails
//! with a clear error and exit code and changes nothing, `/readyz` says why; once space is
//! freed the same kill succeeds without a restart, a connected SDK stream gets it, and
//! `/readyz` is ready again.
//!
//! The test mounts a small tmpfs of its own. Where mounting is not permitted (not root, or
//! a container without the capability) it says so and skips: nothing else makes a real
//! `ENOSPC` reproducible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::v1::sync_client::SyncClient;
use flag_proto::v1::{self, watch_response};
use support::{Watcher, flag, flagctl, http_get, put};

const CHAT: &str = "
key: chat
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }";

/// A tmpfs of `size` mounted on a new directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|error| format!("running mount: {error}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Fills the filesystem holding `dir` with `dir/fill` until a write fails with ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("fill");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match file.write_all(&chunk).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(28) => return path,
            Err(error) => panic!("filling the tmpfs: {error}"),
        }
    }
}

/// The flagd process, killed when the test ends however it ends.
struct Flagd(Child);

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_flagd(data: &Path) -> (Flagd, String, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagd"))
        .args(["--listen", "127.0.0.1:0", "--management", "127.0.0.1:0"])
        .args(["--sync-listen", "127.0.0.1:0", "--ofrep-listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("FLAGD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the flagd binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .expect("flagd prints its addresses")
            .to_owned()
    };
    let management = field("management=").parse().unwrap();
    (Flagd(child), format!("http://{}", field("grpc=")), management)
}

fn kill_chat(endpoint: &str) -> std::process::Output {
    Command::new(flagctl())
        .args(["--server", endpoint, "kill", "chat", "--reason", "incident 42"])
        .output()
        .unwrap()
}

async fn history_len(admin: &mut AdminClient<tonic::transport::Channel>) -> usize {
    let request =
        v1::FlagHistoryRequest { environment: "production".into(), key: "chat".into(), ..Default::default() };
    admin.flag_history(request).await.unwrap().into_inner().entries.len()
}

async fn revision(admin: &mut AdminClient<tonic::transport::Channel>) -> u64 {
    let request = v1::ListFlagsRequest { environment: "production".into(), ..Default::default() };
    admin.list_flags(request).await.unwrap().into_inner().revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_on_a_full_disk_fails_cleanly_and_succeeds_once_space_is_back() {
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!(
                "SKIPPED: this machine does not let the test mount a tmpfs ({why}); the full-disk test needs one"
            );
            return;
        }
    };
    let data = tmpfs.path().join("flags.redb");
    let (flagd, endpoint, management) = start_flagd(&data);
    let channel = tonic::transport::Channel::from_shared(endpoint.clone()).unwrap().connect().await.unwrap();
    let mut admin = AdminClient::new(channel.clone());
    admin.put_flag(put("production", flag(CHAT), None, "launch")).await.unwrap();
    let mut watcher = Watcher::open(SyncClient::new(channel.clone()), "production", 0).await.unwrap();
    assert!(matches!(watcher.next_change().await, watch_response::Kind::Snapshot(_)));
    assert_eq!(http_get(management, "/readyz").await.0, 200);

    let filler = fill(tmpfs.path());
    let (revision_before, history_before) = (revision(&mut admin).await, history_len(&mut admin).await);

    // Full: the kill fails, says why, with the exit code for "store cannot commit".
    let output = kill_chat(&endpoint);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(11), "exit code; stderr: {stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("not applied"), "{stderr}");
    // Nothing half-written: reads still work and show the state before the kill.
    assert_eq!(revision(&mut admin).await, revision_before);
    assert_eq!(history_len(&mut admin).await, history_before);
    let (status, body) = http_get(management, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");
    let (_, metrics) = http_get(management, "/metrics").await;
    assert!(metrics.contains("flagd_store_errors_total{kind=\"io\"}"), "{metrics}");

    // Space is back: the same kill succeeds, without a restart, and the stream gets it.
    std::fs::remove_file(filler).unwrap();
    // flagctl waits for the connected SDK's acknowledgement, which this stream sends.
    let kill = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || kill_chat(&endpoint)
    });
    let revision_killed = match watcher.next_change().await {
        watch_response::Kind::Changes(change) => {
            let killed =
                change.upserted_flags.iter().find(|f| f.key == "chat").expect("the kill reaches the stream");
            assert!(!killed.enabled);
            change.revision
        }
        other => panic!("expected the kill, got {other:?}"),
    };
    assert_eq!(revision_killed, revision_before + 1);
    watcher.ack(revision_killed).await;
    let output = kill.await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kill after freeing space: {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1/1 SDKs acknowledged"), "{stdout}");
    assert_eq!(revision(&mut admin).await, revision_before + 1);
    assert_eq!(history_len(&mut admin).await, history_before + 1);
    let (status, body) = http_get(management, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    drop(flagd);
}
