//! `flagd relay` between real SDKs and a real upstream flagd, every one its own process:
//! SDKs on a relay get changes, a kill upstream counts them (through a chain of relays too),
//! the upstream restarted under a relay loses nothing, a relay restarted without its
//! upstream serves its cache, Admin writes sent to a relay are refused naming the
//! upstream, and the health reports of SDKs behind relays are counted upstream once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use flag_proto::v1;
use flag_sdk::Evaluate;
use support::{data_file, flagctl, listening_on, spawn_flagd};

/// A flagd process (server or relay) and where it listens.
struct Process {
    child: Child,
    endpoint: String,
    management: SocketAddr,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let (child, line) = spawn_flagd(args.iter().map(std::ffi::OsStr::new));
        let endpoint = format!("http://{}", listening_on(&line, "grpc"));
        Process { child, endpoint, management: listening_on(&line, "management") }
    }

    /// A flagd on `data`, gRPC on `grpc` (`127.0.0.1:0` for any port).
    fn upstream(data: &Path, grpc: &str) -> Process {
        let data = data.to_str().unwrap();
        Process::start(&[
            "--data",
            data,
            "--listen",
            grpc,
            "--management",
            "127.0.0.1:0",
            "--sync-listen",
            "off",
            "--ofrep-listen",
            "off",
        ])
    }

    /// A relay of `upstream` named `name`, caching in `cache`.
    fn relay(upstream: &str, cache: &Path, name: &str) -> Process {
        Process::start(&[
            "relay",
            "--upstream",
            upstream,
            "--cache",
            cache.to_str().unwrap(),
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--management",
            "127.0.0.1:0",
            "--sync-listen",
            "off",
            "--ofrep-listen",
            "off",
            "--heartbeat-interval",
            "1s",
        ])
    }

    fn flagctl(&self, args: &[&str]) -> Output {
        Command::new(flagctl()).args(["--server", &self.endpoint]).args(args).output().unwrap()
    }

    fn flagctl_ok(&self, args: &[&str]) -> String {
        let output = self.flagctl(args);
        assert!(output.status.success(), "flagctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the wait for a clean exit.
    fn stop(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success(), "a relay stops cleanly on SIGTERM");
    }

    /// A management endpoint's status code and body.
    fn get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.management).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let code = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sdk(endpoint: &str, name: &str) -> flag_sdk::Client {
    flag_sdk::Client::builder(endpoint).client_name(name).connect().await.unwrap()
}

/// Waits until `check` holds, failing with `what` after `support::WAIT`.
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + support::WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn percent_on(client: &flag_sdk::Client, key: &str) -> Option<f64> {
    let flag = client.current().definition(key)?.clone();
    let flag_core::Serve::Split(split) = &flag.default else { return None };
    // Weights are in 1/1000 %.
    split.weights.iter().find(|weight| weight.variant == "on").map(|weight| weight.weight as f64 / 1000.0)
}

fn enabled(client: &flag_sdk::Client, key: &str) -> Option<bool> {
    client.current().definition(key).map(|flag| flag.enabled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_on_relays_get_changes_and_a_kill_upstream_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Process::upstream(&data_file(dir.path()), "127.0.0.1:0");
    upstream.flagctl_ok(&["set", "chat", "--percent", "5", "--reason", "before the incident"]);
    let relay = Process::relay(&upstream.endpoint, &dir.path().join("eu.cache"), "relay-eu");
    // A relay of the relay: its SDK's acknowledgement travels two hops.
    let chained = Process::relay(&relay.endpoint, &dir.path().join("eu-2.cache"), "relay-eu-2");
    let direct = sdk(&upstream.endpoint, "direct").await;
    let relayed = [sdk(&relay.endpoint, "eu-1").await, sdk(&relay.endpoint, "eu-2").await];
    let behind_two = sdk(&chained.endpoint, "eu-chained").await;
    for client in relayed.iter().chain([&behind_two]) {
        assert_eq!(percent_on(client, "chat"), Some(5.0), "the relay serves the upstream's flags");
    }

    upstream.flagctl_ok(&["set", "chat", "--percent", "25", "--reason", "ramp"]);
    until("every relayed SDK serves 25 %", || {
        relayed.iter().chain([&behind_two]).all(|client| percent_on(client, "chat") == Some(25.0))
    })
    .await;

    // The upstream counts the SDKs behind both relays, not the relays.
    let mut admin = v1::admin_client::AdminClient::connect(upstream.endpoint.clone()).await.unwrap();
    let deadline = Instant::now() + support::WAIT;
    loop {
        let request = v1::WaitForAcksRequest { environment: "production".into(), revision: 2, wait_ms: 500 };
        let report = admin.wait_for_acks(request).await.unwrap().into_inner();
        if (report.connected, report.acknowledged) == (4, 4) {
            break;
        }
        assert!(Instant::now() < deadline, "the upstream counts 4 SDKs: {report:?}");
    }
    // An OpenFeature provider's stream two relays away is counted apart: it cannot acknowledge.
    let provider =
        tonic::transport::Channel::from_shared(chained.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut provider = flag_proto::flagd::evaluation::v2::service_client::ServiceClient::new(provider);
    let request = flag_proto::flagd::evaluation::v2::EventStreamRequest {};
    let mut events = provider.event_stream(request).await.unwrap().into_inner();
    let ready = tokio::time::timeout(support::WAIT, events.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(ready.r#type, "provider_ready");
    let killed = upstream.flagctl_ok(&["kill", "chat", "--wait", "10s", "--reason", "incident"]);
    assert!(killed.contains("4/4 SDKs acknowledged"), "{killed}");
    assert!(killed.contains("; 1 OpenFeature streams sent the change"), "{killed}");
    for client in [&direct].into_iter().chain(&relayed).chain([&behind_two]) {
        assert_eq!(enabled(client, "chat"), Some(false), "the kill reached every SDK before it returned");
    }

    // Reads through a relay are the upstream's; writes are refused, naming it.
    let listed = chained.flagctl_ok(&["list"]);
    assert!(listed.contains("chat"), "{listed}");
    let refused = relay.flagctl(&["set", "chat", "--percent", "50", "--reason", "on the wrong flagd"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&format!("relay of {}", upstream.endpoint)), "{stderr}");
    let shown = upstream.flagctl_ok(&["get", "chat"]);
    assert!(!shown.contains("50%"), "the refused write changed nothing: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_outlives_its_upstream_restarting_and_restarts_from_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let mut upstream = Process::upstream(&data, "127.0.0.1:0");
    let address = upstream.endpoint.trim_start_matches("http://").to_owned();
    upstream.flagctl_ok(&["set", "chat", "--percent", "5", "--reason", "first"]);
    let cache = dir.path().join("relay.cache");
    let mut relay = Process::relay(&upstream.endpoint, &cache, "relay");
    let client = sdk(&relay.endpoint, "app").await;
    assert_eq!(percent_on(&client, "chat"), Some(5.0));

    // The upstream dies and comes back on the same port and data: the relay resumes.
    upstream.sigkill();
    let upstream = Process::upstream(&data, &address);
    upstream.flagctl_ok(&["set", "chat", "--percent", "50", "--reason", "after the restart"]);
    until("the SDK on the relay serves 50 %", || percent_on(&client, "chat") == Some(50.0)).await;
    let stats = client.sync_stats();
    assert_eq!(stats.full_snapshots, 1, "the SDK never needed a second snapshot: {stats:?}");
    assert_eq!(relay.get("/readyz").0, 200);
    drop(client);

    // Now the relay restarts while its upstream is down: it serves what it had.
    drop(upstream);
    relay.stop();
    let relay = Process::relay(&format!("http://{address}"), &cache, "relay");
    let client = sdk(&relay.endpoint, "app-after-restart").await;
    assert_eq!(percent_on(&client, "chat"), Some(50.0), "served from the cache");
    let (code, _) = relay.get("/readyz");
    assert_eq!(code, 200, "ready: it has a copy of every environment it follows");
    let (_, metrics) = relay.get("/metrics");
    assert!(metrics.contains("flagd_relay_upstream_connected{environment=\"production\"} 0"), "{metrics}");
    // An environment it never had cannot be served while the upstream is away.
    let refused = flag_sdk::Client::builder(relay.endpoint.clone())
        .environment("staging")
        .start_timeout(Duration::from_secs(12), flag_sdk::OnTimeout::Fail)
        .connect()
        .await;
    let error = refused.expect_err("no copy of staging").to_string();
    assert!(error.contains("no copy of environment"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_on_another_store_replaces_what_the_relays_sdks_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = Process::upstream(&dir.path().join("first.redb"), "127.0.0.1:0");
    let address = upstream.endpoint.trim_start_matches("http://").to_owned();
    for key in ["chat", "search", "upload"] {
        upstream.flagctl_ok(&["set", key, "--percent", "5", "--reason", "the first store"]);
    }
    let relay = Process::relay(&upstream.endpoint, &dir.path().join("relay.cache"), "relay");
    let client = sdk(&relay.endpoint, "app").await;
    assert_eq!(percent_on(&client, "chat"), Some(5.0));

    // Another store on the same address, at a lower revision than the SDK holds: its
    // revisions do not count in the first one's, so the SDK is given its whole state.
    upstream.sigkill();
    let upstream = Process::upstream(&dir.path().join("second.redb"), &address);
    upstream.flagctl_ok(&["set", "chat", "--percent", "40", "--reason", "the second store"]);
    until("the SDK on the relay holds the second store", || {
        percent_on(&client, "chat") == Some(40.0) && percent_on(&client, "search").is_none()
    })
    .await;
    assert!(
        client.sync_stats().full_snapshots >= 2,
        "a snapshot of the second store: {:?}",
        client.sync_stats()
    );
}

/// The upstream's count of evaluations of `chat`'s `variant` in `/metrics`, if it has one.
fn evaluations_upstream(upstream: &Process, variant: &str) -> Option<u64> {
    let series = format!(
        "flagd_health_evaluations_total{{environment=\"production\",flag=\"chat\",variant=\"{variant}\"}} "
    );
    let (_, metrics) = upstream.get("/metrics");
    metrics.lines().find_map(|line| line.strip_prefix(&series)?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_of_sdks_behind_relays_are_counted_upstream_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path());
    let mut upstream = Process::upstream(&data, "127.0.0.1:0");
    let address = upstream.endpoint.trim_start_matches("http://").to_owned();
    upstream.flagctl_ok(&["set", "chat", "--percent", "50", "--reason", "a rollout to watch"]);
    let relay = Process::relay(&upstream.endpoint, &dir.path().join("eu.cache"), "relay-eu");
    let chained = Process::relay(&relay.endpoint, &dir.path().join("eu-2.cache"), "relay-eu-2");
    let report_every = Duration::from_millis(50);
    let behind_two = flag_sdk::Client::builder(chained.endpoint.as_str())
        .client_name("eu-chained")
        .report_interval(report_every)
        .connect()
        .await
        .unwrap();
    let serve = |users: std::ops::Range<u32>| {
        users
            .filter(|user| behind_two.is_enabled("chat", &flag_core::Context::new(&format!("user-{user}"))))
            .count() as u64
    };
    let on = serve(0..400);
    assert!((100..300).contains(&on), "a 50 % rollout splits 400 users: {on} on");
    until("the upstream counts the evaluations of the SDK two relays away", || {
        evaluations_upstream(&upstream, "on") == Some(on)
            && evaluations_upstream(&upstream, "off") == Some(400 - on)
    })
    .await;

    // Counted while the upstream is away: held by the SDK and the relays, counted once it is
    // back, and not twice (the upstream keeps its counts in memory, so they start again).
    upstream.sigkill();
    let more_on = serve(400..800);
    tokio::time::sleep(report_every * 4).await;
    let upstream = Process::upstream(&data, &address);
    until("the upstream counts what was evaluated while it was away", || {
        evaluations_upstream(&upstream, "on") == Some(more_on)
            && evaluations_upstream(&upstream, "off") == Some(400 - more_on)
    })
    .await;
    tokio::time::sleep(report_every * 6).await;
    assert_eq!(evaluations_upstream(&upstream, "on"), Some(more_on), "counted once");
}
