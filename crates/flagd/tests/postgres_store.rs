//! The flagd binary on a PostgreSQL store (`--store postgres://…`), with a throwaway
//! PostgreSQL 15 cluster: the real flagctl writes and reads through it; a SIGKILLed flagd
//! and a crash-restarted database lose no acknowledged write; `/readyz` follows the
//! database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use flag_proto::v1;
use support::postgres::{Flagd, run_flagctl};
use support::writers::{assert_history_holds, wait_for_acks, write_until_failure};
use support::{COUNTER, flag, http_get, put};

/// A schema of its own on the test process's cluster; `None` (after a skip line) when
/// PostgreSQL is not installed and CI does not require it.
fn database() -> Option<String> {
    pg_test::fresh_schema("flagd").unwrap()
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
    // on a connection that died with the database), and nothing acknowledged is gone.
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
    let mut sdk = flagd.watch("production", 0, "").await;
    assert!(matches!(sdk.next_change().await, v1::watch_response::Kind::Snapshot(_)));

    cluster.stop_immediate().unwrap();
    // The SDK stays connected with what it has, and `/metrics` says it is stale.
    metrics_come_to_say(&flagd, "flagd_store_stale 1").await;
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
    metrics_come_to_say(&flagd, "flagd_store_stale 0").await;
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "back up"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    match sdk.next_change().await {
        v1::watch_response::Kind::Changes(changes) => assert_eq!(changes.upserted_flags[0].key, "chat"),
        other => panic!("the SDK's stream went on through the outage; got {other:?}"),
    }
}

/// Waits until flagd's `/metrics` has the line `line`.
async fn metrics_come_to_say(flagd: &Flagd, line: &str) {
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let (_, body) = http_get(flagd.management, "/metrics").await;
        if body.lines().any(|l| l == line) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "/metrics says {line:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    // Its leadership went with it (released, not left to a session timeout); the next one
    // serves what it wrote.
    let next = Flagd::start(&url);
    let list = run_flagctl(&next.endpoint, &["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("chat"));
}

/// A CA, written as PEM to `ca_file`, and a certificate it signed for 127.0.0.1 and
/// localhost with its key, as PEM.
fn database_certificate(ca_file: &std::path::Path) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "database test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let certificate = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
    (certificate.pem(), key.serialize_pem())
}

/// Whether every session of application `flagd` on the cluster uses TLS, and how many there are.
fn flagd_sessions_on_tls(plain_url: &str) -> (bool, usize) {
    let mut client = postgres::Client::connect(plain_url, postgres::NoTls).unwrap();
    let rows = client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'flagd'",
            &[],
        )
        .unwrap();
    (rows.iter().all(|row| row.get::<_, bool>(0)), rows.len())
}

#[test]
fn with_sslmode_require_flagd_talks_tls_to_the_database_and_checks_its_certificate() {
    // A cluster of its own: the shared one stays without TLS.
    let Some(cluster) = pg_test::Cluster::start().unwrap() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("database-ca.pem");
    let (certificate, key) = database_certificate(&ca);
    cluster.enable_tls(&certificate, &key).unwrap();
    let plain = cluster.create_database("flags").unwrap();
    let required = format!("{plain}?sslmode=require");

    // The certificate chains to the CA given: every session (pool, listener, leader) is TLS.
    let ca_arg = ca.to_str().unwrap();
    let (child, line) = support::start_binary_with(&[
        "--store".as_ref(),
        required.as_ref(),
        "--store-ca".as_ref(),
        ca_arg.as_ref(),
    ]);
    let flagd = Flagd {
        child,
        endpoint: format!("http://{}", support::listening_on(&line, "grpc")),
        management: support::listening_on(&line, "management"),
    };
    let set = run_flagctl(&flagd.endpoint, &["set", "chat", "--percent", "5", "--reason", "over TLS"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let (all_tls, sessions) = flagd_sessions_on_tls(&plain);
    assert!(all_tls && sessions >= 2, "flagd's {sessions} sessions use TLS: {all_tls}");
    flagd.kill();

    // Without the CA the system's do not vouch for it: the start is refused, saying why.
    let mut unchecked = Command::new(env!("CARGO_BIN_EXE_flagd"))
        .args(support::ANY_PORTS)
        .args(["--store", &required])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + support::WAIT;
    let exited = loop {
        if let Some(status) = unchecked.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            unchecked.kill().unwrap();
            panic!("flagd started on a database whose certificate nothing vouches for");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!exited.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut unchecked.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("certificate"), "{stderr}");

    // Without sslmode=require the connection is plaintext, as before.
    let flagd = Flagd::start(&plain);
    let list = run_flagctl(&flagd.endpoint, &["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("chat"));
    let (all_tls, sessions) = flagd_sessions_on_tls(&plain);
    assert!(!all_tls && sessions >= 1, "plaintext unless required ({sessions} sessions)");
    flagd.kill();
}
