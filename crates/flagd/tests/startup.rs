//! What the real binary shows at start: a log without colour codes when it is not a
//! terminal, naming the data file, the store's id and each environment's revision; and
//! `/metrics` with every series at zero before anything happened; `--version`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn at_start_the_log_has_no_colour_in_a_file_names_the_store_and_metrics_show_zeroes() {
    let dir = tempfile::tempdir().unwrap();
    let data = support::data_file(dir.path());
    let log_path = dir.path().join("flagd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagd"))
        .args(support::ANY_PORTS)
        .args(["--environments", "staging,production"])
        .arg("--data")
        .arg(&data)
        .env("FLAGD_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("the flagd binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("grpc="), "flagd prints its address: {line}");
    let management: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("management="))
        .and_then(|address| address.parse().ok())
        .expect("flagd prints its management address");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, metrics) = runtime.block_on(support::http_get(management, "/metrics"));
    child.kill().unwrap();
    assert_eq!(status, 200);
    for series in [
        "flagd_writes_total{operation=\"kill\"} 0",
        "flagd_writes_total{operation=\"promote\"} 0",
        "flagd_store_errors_total{kind=\"io\"} 0",
        "flagd_acks_total 0",
        "flagd_streams_connected 0",
        "flagd_health_reports_total{outcome=\"counted\"} 0",
        "flagd_rollout_decisions_total{decision=\"breach\"} 0",
        "flagd_rollout_decisions_total{decision=\"advance\"} 0",
    ] {
        assert!(metrics.lines().any(|line| line == series), "{series} before any event:\n{metrics}");
    }
    child.wait().unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes in a file:\n{text}");
    let opened =
        text.lines().find(|line| line.contains("store open")).expect("the store's opening is logged");
    assert!(opened.contains(&format!("data={}", data.display())), "{opened}");
    assert!(opened.contains("store_id="), "{opened}");
    for environment in ["production", "staging"] {
        assert!(
            text.lines().any(|line| line.contains(&format!("environment={environment} revision=0"))),
            "{environment}'s revision is logged:\n{text}"
        );
    }
}

#[test]
fn version_names_the_release_the_store_format_and_the_protocol() {
    let output = Command::new(env!("CARGO_BIN_EXE_flagd")).arg("--version").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let expected = format!("flagd {} (store format 2, protocol flags.v1)\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn every_setting_of_the_example_service_environment_is_an_option_flagd_reads() {
    let help = Command::new(env!("CARGO_BIN_EXE_flagd")).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/systemd/flagd.env");
    let names: Vec<&str> = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/systemd/flagd.env"))
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.len() >= 8, "{file} sets flagd's settings: {names:?}");
    for name in names {
        // FLAGD_LOG is the log filter, read by the logger rather than as an option.
        assert!(
            name == "FLAGD_LOG" || help.contains(&format!("[env: {name}")),
            "{name} of {file} is not in `flagd --help`"
        );
    }
}
