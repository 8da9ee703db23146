//! Store files as an operator meets them, with the real binary: a damaged, empty or foreign
//! file is refused at start with the cause and the path, `flagd check` gives the same
//! verdict offline, and `flagd backup` copies a running flagd's store into a file another
//! flagd starts on with the same flags and history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flag_proto::Authorship;
use flag_proto::v1::{self, admin_client::AdminClient};
use support::{ANY_PORTS, flag, put, start_binary};

const FLAGD: &str = env!("CARGO_BIN_EXE_flagd");

struct Flagd(Child);

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path) -> (Flagd, String) {
    let (child, endpoint) = start_binary(data);
    (Flagd(child), endpoint)
}

/// Runs flagd to its exit (at most 20 s), as a refused start does.
fn run_to_exit(args: &[&str], data: &Path) -> Output {
    let mut child = Command::new(FLAGD)
        .args(args)
        .arg("--data")
        .arg(data)
        .env("FLAGD_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flagd {args:?} on {} did not exit: it should refuse the file", data.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

async fn admin(endpoint: &str) -> AdminClient<tonic::transport::Channel> {
    AdminClient::connect(endpoint.to_owned()).await.unwrap()
}

fn rollout(key: &str) -> v1::Flag {
    flag(&format!(
        "key: {key}\nvariants: [{{ name: on, value: true }}, {{ name: off, value: false }}]\noff_variant: off\ndefault: {{ variant: on }}"
    ))
}

/// A store written by a real flagd with `n` flags, flagd stopped.
async fn written_store(data: &Path, n: usize) {
    let (flagd, endpoint) = start(data);
    let mut admin = admin(&endpoint).await;
    for i in 0..n {
        admin.put_flag(put("production", rollout(&format!("flag-{i:03}")), None, "setup")).await.unwrap();
    }
    drop(flagd);
}

#[tokio::test]
async fn a_damaged_store_is_refused_at_start_and_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    written_store(&data, 200).await;
    let len = std::fs::metadata(&data).unwrap().len();
    let mut file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.seek(SeekFrom::Start(len / 5)).unwrap();
    file.write_all(&[0x5a; 8192]).unwrap();
    drop(file);

    let output = run_to_exit(&ANY_PORTS, &data);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "flagd must not serve a damaged file");
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "the path is named: {stderr}");
    assert!(!stderr.contains("panicked"), "a refusal, not a crash: {stderr}");

    let output = run_to_exit(&["check"], &data);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("FAILED:") && stderr.contains("is damaged"), "{stderr}");
}

#[tokio::test]
async fn an_empty_or_foreign_file_is_refused_not_started_as_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content, expected) in [
        ("empty.redb", &b""[..], "is empty (0 bytes)"),
        ("foreign.redb", &b"SQLite format 3\0"[..], "is not a flagd store"),
    ] {
        let data = dir.path().join(name);
        std::fs::write(&data, content).unwrap();
        let output = run_to_exit(&ANY_PORTS, &data);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert_eq!(std::fs::read(&data).unwrap(), content, "{name} is left as it was");
        assert_eq!(run_to_exit(&["check"], &data).status.code(), Some(1), "{name}");
    }
}

#[tokio::test]
async fn a_backup_of_a_running_flagd_starts_a_second_one_with_the_same_flags_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    let (_flagd, endpoint) = start(&data);
    let mut first = admin(&endpoint).await;
    for key in ["chat", "checkout", "search"] {
        first.put_flag(put("production", rollout(key), None, "launch")).await.unwrap();
    }
    let staging = flag_proto::create_environment_request("staging", None, Authorship::default());
    first.create_environment(staging).await.unwrap();
    first.put_flag(put("staging", rollout("chat"), None, "try")).await.unwrap();
    first
        .kill(v1::KillRequest {
            environment: "production".into(),
            key: "chat".into(),
            change: support::change("incident"),
            ..Default::default()
        })
        .await
        .unwrap();

    let copy = dir.path().join("backup/flags-copy.redb");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let output =
        Command::new(FLAGD).args(["backup", "--server", &endpoint, "--to"]).arg(&copy).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("2 environments (production@4, staging@1), 5 changes, 4 live flags; check passed"),
        "{stdout}"
    );
    let again =
        Command::new(FLAGD).args(["backup", "--server", &endpoint, "--to"]).arg(&copy).output().unwrap();
    assert!(!again.status.success(), "a backup never overwrites");

    let output = run_to_exit(&["check"], &copy);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("production: revision 4") && stdout.contains("OK: the store is sound"),
        "{stdout}"
    );

    let (_second, restored) = start(&copy);
    let mut second = admin(&restored).await;
    for environment in ["production", "staging"] {
        let list = |environment: &str| v1::ListFlagsRequest {
            environment: environment.into(),
            ..Default::default()
        };
        let history = |environment: &str| v1::EnvironmentHistoryRequest {
            environment: environment.into(),
            ..Default::default()
        };
        assert_eq!(
            second.list_flags(list(environment)).await.unwrap().into_inner(),
            first.list_flags(list(environment)).await.unwrap().into_inner()
        );
        assert_eq!(
            second.environment_history(history(environment)).await.unwrap().into_inner(),
            first.environment_history(history(environment)).await.unwrap().into_inner()
        );
    }
    let chat = second
        .get_flag(v1::GetFlagRequest { environment: "production".into(), key: "chat".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(!chat.flag.unwrap().enabled, "the kill is in the copy");
}
