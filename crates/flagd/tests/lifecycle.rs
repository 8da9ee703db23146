//! Start and stop of the real binary: "listening" only once flagd serves, a failed start says
//! why and claims nothing, and SIGTERM ends flagd within the grace period whatever its stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn flagd(data: &Path, extra: &[&str]) -> Command {
    flagd_on("127.0.0.1:0", "127.0.0.1:0", data, extra)
}

fn flagd_on(listen: &str, management: &str, data: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flagd"));
    command
        .args(["--listen", listen, "--management", management])
        .args(["--sync-listen", "127.0.0.1:0", "--ofrep-listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env("FLAGD_LOG", "warn")
        .env_remove("FLAGD_ADMIN_TOKEN")
        .env_remove("FLAGD_SDK_TOKEN")
        .env_remove("FLAGD_INSECURE");
    command
}

/// Runs a start that must fail, with a bound on how long it may take.
fn failed_start(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "flagd started: {output:?}");
    assert!(output.stdout.is_empty(), "a failed start printed {:?}", String::from_utf8_lossy(&output.stdout));
    output
}

fn terminate(child: &Child) {
    signal(child, "-TERM");
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits up to `limit` for the process to exit; kills it and fails if it does not.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    panic!("flagd still running {limit:?} after SIGTERM");
}

#[test]
fn sigterm_ends_flagd_within_the_grace_period_with_stdout_closed_and_a_connection_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = flagd(&dir.path().join("flags.redb"), &["--shutdown-grace", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        // Read the line, then close the read end: any later write to stdout gets EPIPE.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
    }
    let grpc = line.split_whitespace().find_map(|word| word.strip_prefix("grpc=")).unwrap();
    // Connections (to both ports) that never speak and never close: graceful shutdown alone
    // would wait for them forever.
    let management = line.split_whitespace().find_map(|word| word.strip_prefix("management=")).unwrap();
    let idle = [TcpStream::connect(grpc).unwrap(), TcpStream::connect(management).unwrap()];
    std::thread::sleep(Duration::from_millis(200));
    terminate(&child);
    // One second of grace plus start-up slack on a loaded machine; without the grace
    // period this never exits.
    let status = exits_within(&mut child, Duration::from_secs(8));
    assert!(status.success(), "{status:?}");
    drop(idle);
}

#[test]
fn sigterm_or_ctrl_c_ends_an_idle_flagd_at_once() {
    for sent in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = flagd(&dir.path().join("flags.redb"), &["--shutdown-grace", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("flagd listening grpc=127.0.0.1:"), "{line}");
        signal(&child, sent);
        // Nothing is open, so it does not wait for the 60 s grace period.
        let status = exits_within(&mut child, Duration::from_secs(8));
        assert!(status.success(), "{sent}: {status:?}");
    }
}

#[test]
fn a_store_that_cannot_be_opened_fails_the_start_without_claiming_to_listen() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let output = failed_start(flagd(dir.path(), &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("opening the flag store"), "{stderr}");
}

#[test]
fn the_management_port_beyond_loopback_needs_a_token_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flags.redb");
    let output = failed_start(flagd_on("127.0.0.1:0", "0.0.0.0:0", &data, &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without an admin token") && stderr.contains("FLAGD_ADMIN_TOKEN"), "{stderr}");
    // A token is not enough: it would cross the network in clear text.
    let output = failed_start(flagd_on("127.0.0.1:0", "0.0.0.0:0", &data, &["--admin-token", "secret"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without TLS") && stderr.contains("--tls-cert"), "{stderr}");
    assert!(!data.exists(), "a refused start created the store");
}

#[test]
fn an_sdk_token_without_an_admin_token_warns_that_admin_is_open_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = flagd(&dir.path().join("flags.redb"), &["--sdk-token", "sdk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("flagd listening"), "{line}");
    terminate(&child);
    exits_within(&mut child, Duration::from_secs(8));
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(
        stderr.contains("no admin token") && stderr.contains("open to anyone who can reach loopback"),
        "{stderr}"
    );
    // Beyond loopback the same settings are refused.
    let other = dir.path().join("other.redb");
    let output = failed_start(flagd_on("0.0.0.0:0", "127.0.0.1:0", &other, &["--sdk-token", "sdk"]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("without an admin token"));
}
