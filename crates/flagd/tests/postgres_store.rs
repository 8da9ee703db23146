//! The flagd binary on a PostgreSQL store (`--store postgres://…`), with a throwaway
//! PostgreSQL 15 cluster: the real flagctl writes and reads through it; a SIGKILLed flagd
//! and a crash-restarted database lose no acknowledged write; `/readyz` follows the
//! database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::ffi::OsStr;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_proto::v1;
use support::{COUNTER, flag, flagctl, http_get, listening_on, put, start_binary_with};

/// A schema of its own on the test process's cluster; `None` (after a skip line) when
/// PostgreSQL is not installed and CI does not require it.
fn database() -> Option<String> {
    pg_test::fresh_schema("flagd").unwrap()
}

struct Flagd {
    child: Child,
    endpoint: String,
    management: std::net::SocketAddr,
}

impl Flagd {
    fn start(url: &str) -> Flagd {
        let (child, line) = start_binary_with(&[OsStr::new("--store"), OsStr::new(url)]);
        let endpoint = format!("http://{}", listening_on(&line, "grpc"));
        Flagd { child, endpoint, management: listening_on(&line, "management") }
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_flagctl(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(flagctl()).args(["--server", endpoint]).args(args).output().unwrap()
}

/// Versions of `counter` acknowledged, with the description each wrote.
type Acknowledged = Mutex<Vec<(u64, String)>>;

/// Writes `counter` as fast as acknowledgements come, recording each acknowledged version
/// and description, until a write fails.
fn write_until_failure(endpoint: String, tag: String) -> (tokio::task::JoinHandle<()>, Arc<Acknowledged>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            let Ok(mut admin) = v1::admin_client::AdminClient::connect(endpoint).await else { return };
            for n in 0.. {
                let mut counter = flag(COUNTER);
                counter.description = format!("{tag} write {n}");
                match admin.put_flag(put("", counter.clone(), None, "durability test")).await {
                    Ok(written) => {
                        let version = written.into_inner().entry.unwrap().version;
                        acked.lock().unwrap().push((version, counter.description));
                    }
                    Err(_) => return,
                }
            }
        })
    };
    (task, acked)
}

async fn wait_for_acks(acked: &Acknowledged, count: usize) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while acked.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(acked.lock().unwrap().len() >= count, "writes were acknowledged");
}

/// Every acknowledged version of `counter` is in its history with the content acknowledged.
async fn assert_history_holds(endpoint: &str, acknowledged: &[(u64, String)]) {
    let mut admin = v1::admin_client::AdminClient::connect(endpoint.to_owned()).await.unwrap();
    let mut history = std::collections::BTreeMap::new();
    let mut before = 0;
    loop {
        let request = v1::FlagHistoryRequest {
            environment: "production".into(),
            key: "counter".into(),
            before_version: before,
            page_size: 500,
        };
        let entries = admin.flag_history(request).await.unwrap().into_inner().entries;
        let Some(last) = entries.last() else { break };
        before = last.version;
        for entry in entries {
            history.insert(entry.version, entry.flag.map(|flag| flag.description).unwrap_or_default());
        }
    }
    for (version, description) in acknowledged {
        assert_eq!(history.get(version), Some(description), "acknowledged version {version} is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagctl_writes_and_reads_through_a_postgres_store_that_outlives_flagd() {
    let Some(url) = database() else { return };
    let flagd = Flagd::start(&url);
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "first cohort"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let kill = run_flagctl(&flagd.endpoint, &["kill", "chat", "--reason", "incident 7"]);
    assert!(kill.status.success(), "{}", String::from_utf8_lossy(&kill.stderr));
    flagd.kill();

    // Another flagd process on the same database finds everything, with who and why.
    let flagd = Flagd::start(&url);
    let history = run_flagctl(&flagd.endpoint, &["history", "chat"]);
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(history.status.success(), "{}", String::from_utf8_lossy(&history.stderr));
    assert!(text.contains("incident 7") && text.contains("first cohort"), "{text}");
    let list = run_flagctl(&flagd.endpoint, &["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("chat") && text.contains("KILLED"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_a_sigkilled_flagd() {
    let Some(url) = database() else { return };
    let mut acknowledged = Vec::new();
    for cycle in 0..3u64 {
        let flagd = Flagd::start(&url);
        let (writer, acked) = write_until_failure(flagd.endpoint.clone(), format!("cycle {cycle}"));
        wait_for_acks(&acked, 1).await;
        tokio::time::sleep(Duration::from_millis(30 + 41 * cycle)).await;
        flagd.kill();
        writer.await.unwrap();
        acknowledged.extend(acked.lock().unwrap().clone());
    }
    let flagd = Flagd::start(&url);
    assert_history_holds(&flagd.endpoint, &acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_under_writes_loses_no_acknowledged_write_and_flagd_recovers() {
    // A cluster of its own: this test crashes it.
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let url = cluster.create_database("flags").unwrap();
    let flagd = Flagd::start(&url);
    assert_eq!(http_get(flagd.management, "/readyz").await.0, 200);

    let (writer, acked) = write_until_failure(flagd.endpoint.clone(), "before the crash".into());
    wait_for_acks(&acked, 5).await;
    // Crash the database mid-stream: no shutdown checkpoint, recovery from the WAL.
    cluster.restart_immediate().unwrap();
    writer.await.unwrap();
    let acknowledged = acked.lock().unwrap().clone();

    // flagd reconnects by itself: writes commit again (the first may be refused, retryable,
    // while it takes its hold on the store again), and nothing acknowledged is gone.
    let mut admin = v1::admin_client::AdminClient::connect(flagd.endpoint.clone()).await.unwrap();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    let mut refusals = 0;
    while let Err(status) = admin.put_flag(put("", flag(COUNTER), None, "after the crash")).await {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(tokio::time::Instant::now() < deadline, "writes commit again after the crash");
        refusals += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refusals <= 1, "one refusal at most once PostgreSQL is back, saw {refusals}");
    let (writer, acked_after) = write_until_failure(flagd.endpoint.clone(), "after the crash".into());
    wait_for_acks(&acked_after, 3).await;
    writer.abort();
    assert_history_holds(&flagd.endpoint, &acknowledged).await;
    assert_eq!(http_get(flagd.management, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database_and_writes_are_refused_clearly_while_it_is_down() {
    // A cluster of its own: this test stops it.
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let url = cluster.create_database("flags").unwrap();
    let flagd = Flagd::start(&url);
    assert_eq!(http_get(flagd.management, "/readyz").await.0, 200);

    cluster.stop_immediate().unwrap();
    let (status, body) = http_get(flagd.management, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("PostgreSQL"), "{body}");
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "while down"]);
    assert!(!set.status.success());
    let stderr = String::from_utf8_lossy(&set.stderr);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");

    cluster.start_again().unwrap();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while http_get(flagd.management, "/readyz").await.0 != 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(flagd.management, "/readyz").await.0, 200);
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "back up"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_flagd_on_the_same_store_is_refused_until_the_first_is_gone() {
    let Some(url) = database() else { return };
    let first = Flagd::start(&url);
    let second = Command::new(env!("CARGO_BIN_EXE_flagd"))
        .args(["--listen", "127.0.0.1:0", "--management", "127.0.0.1:0"])
        .args(["--sync-listen", "off", "--ofrep-listen", "off", "--store", &url])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another flagd is using the store"), "{stderr}");
    // SIGKILL frees the store: the session holding it ends with the process.
    first.kill();
    let deadline = tokio::time::Instant::now() + support::WAIT;
    let restarted = loop {
        let (mut child, line) = start_binary_with(&[OsStr::new("--store"), OsStr::new(&url)]);
        if !line.is_empty() {
            break Flagd {
                endpoint: format!("http://{}", listening_on(&line, "grpc")),
                management: listening_on(&line, "management"),
                child,
            };
        }
        let _ = child.wait();
        assert!(tokio::time::Instant::now() < deadline, "a new flagd takes the store once the first is gone");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let set = run_flagctl(&restarted.endpoint, &["set", "chat", "--percent", "5", "--reason", "taken over"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_flagd_cleanly_and_frees_the_store_at_once() {
    let Some(url) = database() else { return };
    let mut flagd = Flagd::start(&url);
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "before stopping"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let status = Command::new("kill").args(["-TERM", &flagd.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + support::WAIT;
    let exited = loop {
        if let Some(status) = flagd.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "flagd still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    // A clean exit, not an abort while closing its connections.
    assert!(exited.success(), "{exited:?}");
    // Its hold on the store went with it: the next flagd starts at once.
    let next = Flagd::start(&url);
    let list = run_flagctl(&next.endpoint, &["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("chat"));
}
