//! End to end: the real `flagctl` binary against the real `flagd` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::Flagd;

#[test]
fn set_then_get_list_and_eval_show_the_rollout() {
    let flagd = Flagd::start();
    let out = flagd.flagctl(&["set", "chat", "--percent", "10", "--reason", "first cohort"]).ok();
    assert_eq!(out.trim(), "created chat (version 1, revision 1): 10% on, 90% off");

    let out = flagd.flagctl(&["get", "chat"]).ok();
    assert!(out.contains("serves:    10% on, 90% off"), "{out}");
    assert!(out.contains("create by ana at "), "{out}");
    assert!(out.contains("\"first cohort\""), "{out}");

    // The reference buckets of docs/architecture.md: user-1 is at 8 328, user-42 at 68 275.
    let out = flagd.flagctl(&["eval", "chat", "--user", "user-1"]).ok();
    assert!(out.starts_with("chat for user-1: on = true"), "{out}");
    assert!(out.contains("bucket 8328)"), "{out}");
    let out = flagd.flagctl(&["eval", "chat", "--user", "user-42", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((json["variant"].as_str(), json["bucket"].as_u64()), (Some("off"), Some(68275)));

    flagd.flagctl(&["set", "chat", "--percent", "25", "--dark", "50"]).ok();
    let out = flagd.flagctl(&["list"]).ok();
    assert!(out.lines().any(|l| l.starts_with("chat") && l.ends_with("25% on, 25% dark, 50% off")), "{out}");
    let out = flagd.flagctl(&["list", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["version"], 2);

    flagd.flagctl(&["set", "chat", "--variant", "off"]).ok();
    let out = flagd.flagctl(&["eval", "chat", "--user", "user-1"]).ok();
    assert!(out.starts_with("chat for user-1: off = false (no rule matched; the default)"), "{out}");
}

#[test]
fn history_lists_every_change_with_its_reason_and_rollback_restores_a_version() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5", "--reason", "first cohort"]).ok();
    flagd.flagctl(&["set", "chat", "--percent", "50", "--reason", "widen"]).ok();
    flagd.flagctl(&["kill", "chat", "--reason", "incident 4711", "--wait", "0s"]).ok();
    let out = flagd.flagctl(&["revive", "chat", "--reason", "fixed"]).ok();
    assert!(out.starts_with("revived chat (version 4, revision 4): 50% on, 50% off"), "{out}");

    let history = flagd.flagctl(&["history", "chat"]).ok();
    let heads: Vec<&str> = history.lines().filter(|l| l.starts_with('v')).collect();
    assert_eq!(heads.len(), 4, "{history}");
    for (line, (operation, reason)) in heads.iter().zip([
        ("revive", "fixed"),
        ("kill", "incident 4711"),
        ("set-rollout", "widen"),
        ("create", "first cohort"),
    ]) {
        assert!(line.contains(&format!("{operation} by ana: \"{reason}\"")), "{line}");
    }

    let out = flagd.flagctl(&["rollback", "chat", "--to", "1", "--reason", "back to 5"]).ok();
    assert_eq!(out.trim(), "rolled back chat to version 1 (version 5, revision 5): 5% on, 95% off");
    let log = flagd.flagctl(&["log", "--json"]).ok();
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(log[0]["operation"], "rollback");
    assert_eq!(log[0]["reason"], "back to 5");
    assert_eq!(log.as_array().unwrap().len(), 5);

    let out = flagd.flagctl(&["delete", "chat", "--reason", "cleanup"]).ok();
    assert_eq!(out.trim(), "deleted chat (version 6, revision 6)");
    flagd.flagctl(&["get", "chat"]).fails_with(3);
    let history = flagd.flagctl(&["history", "chat", "--json"]).ok();
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 6, "a deleted flag keeps its history");
}

#[test]
fn environments_are_separate() {
    let flagd = Flagd::start();
    flagd.flagctl(&["env", "create", "staging"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "chat", "--on"]).ok();
    assert_eq!(flagd.flagctl(&["list"]).ok().trim(), "no flags in production");
    let out = flagd.flagctl_env(&["list"], &[("FLAGD_ENV", "staging")]).ok();
    assert!(out.contains("100% on"), "{out}");
}

#[test]
fn errors_have_distinct_exit_codes_and_say_what_happened() {
    let flagd = Flagd::start();
    let err = flagd.flagctl(&["get", "nope"]).fails_with(3);
    assert!(err.contains("no flag \"nope\""), "{err}");
    flagd.flagctl(&["eval", "nope", "--user", "u"]).fails_with(3);
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let err = flagd.flagctl(&["set", "chat", "--percent", "150"]).fails_with(4);
    assert!(err.contains("150"), "{err}");
    let err = flagd.flagctl(&["set", "chat", "--percent", "10", "--expect-version", "7"]).fails_with(5);
    assert!(err.contains("version 1, not the expected 7"), "{err}");
    flagd.flagctl(&["rollback", "chat", "--to", "9"]).fails_with(3);
    flagd.flagctl(&["set", "chat"]).fails_with(2);

    let err = support::flagctl("127.0.0.1:1", &["list"], &[]).fails_with(6);
    assert!(err.contains("cannot reach flagd at http://127.0.0.1:1"), "{err}");
    // Nothing above changed the flag.
    let out = flagd.flagctl(&["get", "chat", "--json"]).ok();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["flag"]["version"], 1);
}

#[test]
fn a_wrong_or_missing_token_is_refused() {
    let flagd = Flagd::start_with(&["--admin-token", "s3cret"]);
    let err = flagd.flagctl(&["list"]).fails_with(7);
    assert!(err.contains("--token"), "{err}");
    flagd.flagctl(&["--token", "wrong", "set", "chat", "--on"]).fails_with(7);
    flagd.flagctl_env(&["set", "chat", "--on"], &[("FLAGD_TOKEN", "s3cret")]).ok();
    let out = flagd.flagctl(&["--token", "s3cret", "list"]).ok();
    assert!(out.contains("100% on"), "{out}");
}

#[test]
fn watch_prints_changes_as_they_commit() {
    let mut flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let watch = Command::new(support::FLAGCTL)
        .args(["watch"])
        .env("FLAGD_ADDR", &flagd.address)
        .env_remove("FLAGD_ENV")
        .env_remove("FLAGD_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch = KillOnDrop(watch);
    // Lines arrive through a thread, so a watch that prints nothing fails the test instead
    // of hanging it.
    let (sender, lines) = mpsc::channel();
    let stdout = watch.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = sender.send(line.unwrap());
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(10)).expect("watch printed a line in time");
    assert_eq!(next(), "watching production from revision 1 (Ctrl-C to stop)");
    flagd.flagctl(&["set", "chat", "--percent", "10", "--reason", "widen"]).ok();
    assert!(next().starts_with("r2    chat v2"));
    assert_eq!(next().trim(), "→ 10% on, 90% off");

    // The watch follows the stream, but it is not an SDK: a kill does not wait for it.
    let out = flagd.flagctl(&["kill", "chat", "--reason", "incident 4711", "--wait", "1s"]).ok();
    assert_eq!(out.trim(), "killed chat (revision 3): no SDKs connected");
    let line = next();
    assert!(line.starts_with("r3    chat v3"), "{line}");
    assert!(line.contains("kill by ana: \"incident 4711\""), "{line}");
    assert!(next().contains("KILLED"));

    // flagd crashes and comes back: the watch resumes where it was.
    flagd.restart();
    flagd.flagctl(&["revive", "chat", "--reason", "fixed"]).ok();
    let line = next();
    assert!(line.starts_with("r4    chat v4") && line.contains("revive by ana: \"fixed\""), "{line}");
}

/// A child process that is killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn eval_types_attributes_and_names_the_matching_rule() {
    let flagd = Flagd::start();
    let file = flagd.dir.path().join("flags.yaml");
    std::fs::write(
        &file,
        "flags:
  - key: checkout
    variants: [{ name: new, value: \"v2\" }, { name: old, value: \"v1\" }]
    off_variant: old
    rules:
      - clauses: [{ attribute: country, op: in, values: [NZ] }, { attribute: age, op: number_gte, values: [18] }]
        serve: { variant: new }
    default: { variant: old }
",
    )
    .unwrap();
    flagd.flagctl(&["apply", "-f", file.to_str().unwrap()]).ok();
    let out =
        flagd.flagctl(&["eval", "checkout", "--user", "u1", "--attr", "country=NZ", "--attr", "age=21"]).ok();
    assert_eq!(out.trim(), "checkout for u1: new = \"v2\" (rule 1 matched)");
    let out =
        flagd.flagctl(&["eval", "checkout", "--user", "u1", "--attr", "country=NZ", "--attr", "age=17"]).ok();
    assert!(out.contains("old = \"v1\" (no rule matched; the default)"), "{out}");
    let json = flagd
        .flagctl(&["eval", "checkout", "--user", "u1", "--attr", "country=NZ", "--attr", "age=30", "--json"])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((json["value"].as_str(), json["rule"].as_u64()), (Some("v2"), Some(1)));
    flagd.flagctl(&["eval", "checkout", "--user", "u1", "--attr", "age=1", "--attr", "age=2"]).fails_with(4);
}

#[test]
fn a_refused_operation_and_a_closed_pipe_are_reported_plainly() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--on"]).ok();
    let err = flagd.flagctl(&["revive", "chat"]).fails_with(9);
    assert!(err.contains("is not killed"), "{err}");

    // `flagctl log | head -1`: the reader leaves early; no panic, no error.
    for _ in 0..5 {
        flagd.flagctl(&["set", "chat", "--percent", "10"]).ok();
    }
    let mut log = Command::new(support::FLAGCTL)
        .args(["log", "--limit", "1000"])
        .env("FLAGD_ADDR", &flagd.address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(log.stdout.take());
    let output = log.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"), "{output:?}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = support::flagctl("127.0.0.1:1", &["completions", shell], &[]).ok();
        assert!(out.contains("rollback") && out.contains("--percent"), "{shell}: {out}");
    }
}

#[test]
fn version_names_the_release_the_store_format_and_the_protocol() {
    let out = support::flagctl("127.0.0.1:1", &["--version"], &[]).ok();
    let expected = format!("flagctl {} (store format 2, protocol flags.v1)\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(out, expected);
}

#[test]
fn who_and_why_are_options_of_the_commands_that_write_only() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--on", "--reason", "launch", "--actor", "bo"]).ok();
    let history = flagd.flagctl(&["history", "chat"]).ok();
    assert!(
        history.contains("by ana on behalf of bo: \"launch\"") || history.contains("by bo: \"launch\""),
        "{history}"
    );
    for read in
        [&["get", "chat"][..], &["list"], &["history", "chat"], &["eval", "chat", "--user", "u"], &["export"]]
    {
        let args: Vec<&str> = read.iter().copied().chain(["--reason", "nothing to record"]).collect();
        let err = flagd.flagctl(&args).fails_with(2);
        assert!(err.contains("unexpected argument '--reason'"), "{read:?}: {err}");
    }
    // `log --actor` is the filter of that name, not an author.
    flagd.flagctl(&["log", "--actor", "bo"]).ok();
}
