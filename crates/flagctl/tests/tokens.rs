//! Named principals end to end, with the real flagd and flagctl binaries: a tokens file made
//! with `flagctl token hash`, a writer for staging that writes staging in its own name (and
//! on behalf of whom `--actor` names) and is refused production, a reader that writes
//! nowhere, an SDK token that makes no Admin call, and `--admin-token` as a principal named
//! `admin`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use support::{FLAGCTL, Flagd, Run};

const ADMIN: &str = "admin-secret-0123456789";
const BOT: &str = "ci-bot-secret-0123456789";
const AUDITOR: &str = "auditor-secret-0123456789";
const WEB: &str = "web-secret-0123456789";

/// `printf SECRET\n | flagctl token hash`: the line the tokens file takes.
fn hash_line(secret: &str) -> String {
    let mut child = Command::new(FLAGCTL)
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{secret}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let line = String::from_utf8(output.stdout).unwrap().trim_end().to_owned();
    assert!(line.starts_with("sha256: ") && line.len() == "sha256: ".len() + 64, "{line}");
    line
}

/// flagd with `--admin-token` and a tokens file of a writer for staging, a reader for all
/// environments and an SDK token for production.
fn flagd(dir: &Path) -> Flagd {
    let tokens = dir.join("tokens.yaml");
    let entry = |name: &str, secret: &str, role: &str, environments: &str| {
        format!(
            "  - name: {name}\n    {}\n    role: {role}\n    environments: {environments}\n",
            hash_line(secret)
        )
    };
    let text = format!(
        "principals:\n{}{}{}",
        entry("ci-bot", BOT, "writer", "[staging]"),
        entry("auditor", AUDITOR, "reader", "[\"*\"]"),
        entry("web", WEB, "sdk", "[production]"),
    );
    std::fs::write(&tokens, text).unwrap();
    Flagd::start_with(&[
        "--tokens",
        tokens.to_str().unwrap(),
        "--admin-token",
        ADMIN,
        "--environments",
        "staging",
    ])
}

fn with(flagd: &Flagd, token: &str, args: &[&str]) -> Run {
    let words: Vec<&str> = ["--token", token].iter().chain(args).copied().collect();
    flagd.flagctl(&words)
}

#[test]
fn a_writer_for_staging_writes_staging_in_its_own_name_and_is_refused_production() {
    let dir = tempfile::tempdir().unwrap();
    let flagd = flagd(dir.path());
    let bot = |args: &[&str]| with(&flagd, BOT, args);
    bot(&["--env", "staging", "set", "chat", "--percent", "5", "--actor", "ci-bot"]).ok();
    bot(&["--env", "staging", "set", "chat", "--percent", "10", "--actor", "ana", "--reason", "ramp"]).ok();

    let history = bot(&["--env", "staging", "history", "chat"]).ok();
    assert!(history.contains(r#"set-rollout by ci-bot on behalf of ana: "ramp""#), "{history}");
    assert!(history.contains("create by ci-bot\n"), "the same name is nobody else: {history}");
    let json: serde_json::Value =
        serde_json::from_str(&bot(&["--env", "staging", "--json", "history", "chat"]).ok()).unwrap();
    assert_eq!((&json[0]["actor"], &json[0]["on_behalf_of"]), (&"ci-bot".into(), &"ana".into()));
    assert!(json[1].get("on_behalf_of").is_none(), "{json}");
    let shown = bot(&["--env", "staging", "get", "chat"]).ok();
    assert!(shown.contains("set-rollout by ci-bot on behalf of ana at"), "{shown}");

    let refused = r#"principal "ci-bot" (writer for staging) may not write environment "production""#;
    let denied = bot(&["set", "chat", "--percent", "5"]).fails_with(7);
    assert!(denied.contains(refused), "{denied}");
    assert!(!denied.contains("pass a valid token"), "the token is valid: {denied}");
    let denied = bot(&["promote", "chat", "--from", "staging", "--to", "production"]).fails_with(7);
    assert!(denied.contains(refused), "{denied}");
    let denied = bot(&["diff", "staging", "production"]).fails_with(7);
    assert!(denied.contains(r#"may not read environment "production""#), "{denied}");
    // Environments are an admin's to make, and a list shows only those the writer may read.
    let denied = bot(&["env", "create", "qa"]).fails_with(7);
    assert!(denied.contains(r#"may not create or delete environment "qa""#), "{denied}");
    let denied = bot(&["env", "delete", "staging"]).fails_with(7);
    assert!(denied.contains(r#"may not create or delete environment "staging""#), "{denied}");
    let listed = bot(&["env", "list"]).ok();
    let names: Vec<&str> = listed.lines().skip(1).filter_map(|row| row.split_whitespace().next()).collect();
    assert_eq!(names, ["staging"], "{listed}");
    with(&flagd, ADMIN, &["set", "secret", "--on"]).ok();
    let log = bot(&["log", "--all-environments", "--format", "jsonl"]).ok();
    let environments: Vec<String> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["environment"].to_string())
        .collect();
    assert_eq!(environments, ["\"staging\"", "\"staging\""], "only what the writer may read: {log}");
    let denied = bot(&["log"]).fails_with(7);
    assert!(denied.contains(r#"may not read environment "production""#), "{denied}");
    with(&flagd, ADMIN, &["delete", "secret"]).ok();
    // Nothing was written to production but that flag, deleted again.
    let production = with(&flagd, ADMIN, &["list"]).ok();
    assert!(production.contains("no flags in production"), "{production}");
    let log = with(&flagd, ADMIN, &["log"]).ok();
    assert_eq!(
        log.lines().filter(|line| line.starts_with('r')).count(),
        2,
        "the admin's two writes only: {log}"
    );
}

#[test]
fn a_reader_reads_every_environment_and_writes_none() {
    let dir = tempfile::tempdir().unwrap();
    let flagd = flagd(dir.path());
    with(&flagd, ADMIN, &["--env", "staging", "set", "chat", "--percent", "5"]).ok();
    with(&flagd, ADMIN, &["set", "chat", "--percent", "5"]).ok();
    let auditor = |args: &[&str]| with(&flagd, AUDITOR, args);
    for read in [
        &["list"][..],
        &["--env", "staging", "get", "chat"],
        &["history", "chat"],
        &["log"],
        &["diff", "staging", "production"],
        &["eval", "chat", "--user", "user-1"],
        &["bookmark", "list"],
    ] {
        auditor(read).ok();
    }
    let refused = r#"principal "auditor" (reader for all environments) may not write environment"#;
    for write in [
        &["set", "chat", "--percent", "50"][..],
        &["--env", "staging", "kill", "chat"],
        &["bookmark", "production", "before"],
        &["restore", "production", "--to-revision", "0"],
    ] {
        let denied = auditor(write).fails_with(7);
        assert!(denied.contains(refused), "{write:?}: {denied}");
    }
    // A backup is the whole store: for an admin of every environment only.
    let backup = Command::new(support::flagd_binary())
        .args(["backup", "--server", &flagd.url(), "--token", AUDITOR, "--to"])
        .arg(dir.path().join("copy.redb"))
        .output()
        .unwrap();
    assert!(!backup.status.success());
    let stderr = String::from_utf8_lossy(&backup.stderr);
    assert!(stderr.contains("may not copy the whole store"), "{stderr}");
}

#[test]
fn an_sdk_token_makes_no_admin_call_and_the_admin_token_is_a_principal_named_admin() {
    let dir = tempfile::tempdir().unwrap();
    let flagd = flagd(dir.path());
    let refused = with(&flagd, WEB, &["list"]).fails_with(7);
    assert!(refused.contains(r#"principal "web" is an SDK token"#), "{refused}");
    with(&flagd, "not-a-token-anyone-has", &["list"]).fails_with(7);
    flagd.flagctl(&["list"]).fails_with(7);

    with(&flagd, ADMIN, &["set", "chat", "--percent", "5"]).ok();
    with(&flagd, ADMIN, &["kill", "chat", "--wait", "0s", "--actor", "admin"]).ok();
    let history = with(&flagd, ADMIN, &["history", "chat"]).ok();
    assert!(history.contains("create by admin on behalf of ana\n"), "$USER is the client's actor: {history}");
    assert!(history.contains("kill by admin\n"), "{history}");
}

#[test]
fn rollout_plans_are_started_and_steered_by_writers_of_their_environment_and_read_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let flagd = flagd(dir.path());
    let plan = [
        "rollout",
        "start",
        "chat",
        "--steps",
        "1,50,100",
        "--hold",
        "10m",
        "--max-error-ratio",
        "1.5",
        "--max-latency-p99-ratio",
        "2",
        "--min-samples",
        "1000",
    ];
    let bot = |args: &[&str]| with(&flagd, BOT, args);
    fn in_staging<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--env", "staging"][..], args].concat()
    }
    bot(&in_staging(&["set", "chat", "--percent", "0"])).ok();
    bot(&in_staging(&plan)).ok();
    with(&flagd, ADMIN, &["set", "chat", "--percent", "0"]).ok();
    let denied = bot(&plan).fails_with(7);
    assert!(
        denied.contains(r#"principal "ci-bot" (writer for staging) may not write environment "production""#),
        "{denied}"
    );

    let auditor = |args: &[&str]| with(&flagd, AUDITOR, args);
    let status = auditor(&in_staging(&["rollout", "status", "chat"])).ok();
    assert!(status.contains("chat (staging): running, step 1/3"), "{status}");
    assert!(auditor(&in_staging(&["rollout", "list"])).ok().contains("chat"));
    let denied = auditor(&in_staging(&["rollout", "pause", "chat"])).fails_with(7);
    assert!(denied.contains(r#"may not write environment "staging""#), "{denied}");
    let denied = with(&flagd, WEB, &["rollout", "list"]).fails_with(7);
    assert!(!denied.is_empty());
    bot(&in_staging(&["rollout", "pause", "chat"])).ok();
}
