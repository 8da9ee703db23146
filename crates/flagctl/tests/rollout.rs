//! Guarded rollouts end to end, with the real flagd and flagctl binaries: a plan started
//! with its first step, read back by `status` and `list`, paused, resumed and aborted, a
//! manual change pausing it, and every bad plan refused naming its argument with nothing
//! stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::Flagd;

/// `rollout start KEY` with a good plan, each option in `overrides` given that value
/// instead, and `extra` options after it.
fn plan_args<'a>(key: &'a str, overrides: &[(&str, &'a str)], extra: &[&'a str]) -> Vec<&'a str> {
    let options = [
        ("--steps", "1,5,25,50,100"),
        ("--hold", "10m"),
        ("--max-hold", "30m"),
        ("--max-error-ratio", "1.5"),
        ("--max-latency-p99-ratio", "2"),
        ("--min-samples", "1000"),
    ];
    let mut args = vec!["rollout", "start", key];
    for (option, value) in options {
        let value = overrides.iter().find(|(name, _)| *name == option).map_or(value, |(_, value)| *value);
        args.extend([option, value]);
    }
    args.extend_from_slice(extra);
    args
}

fn start_args<'a>(key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    plan_args(key, &[], extra)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// What the store holds that a refused plan must leave alone: the environment's log and
/// its plans.
fn stored(flagd: &Flagd) -> (String, String) {
    (
        flagd.flagctl(&["log", "--json", "--limit", "all"]).ok(),
        flagd.flagctl(&["rollout", "list", "--json"]).ok(),
    )
}

#[test]
fn a_plan_starts_with_its_first_step_and_is_read_paused_resumed_and_aborted() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "0"]).ok();

    let out = flagd
        .flagctl(&[&start_args("chat", &["--on-breach", "rollback"])[..], &["--reason", "ramp"]].concat())
        .ok();
    assert!(out.contains("started a rollout plan on chat (revision 2): chat now at 1 %"), "{out}");
    assert!(out.contains("steps 1, 5, 25, 50, 100 %; each held 10m"), "{out}");
    assert!(out.contains("on breach: rollback"), "{out}");
    let got = flagd.flagctl(&["get", "chat"]).ok();
    assert!(got.contains("1% on"), "the first step is written: {got}");
    let history = flagd.flagctl(&["history", "chat"]).ok();
    assert!(history.contains("step 1/5: 1 %; ramp"), "one history entry names the step: {history}");

    let status = flagd.flagctl(&["rollout", "status", "chat"]).ok();
    assert!(
        status.contains("chat (production): running, step 1/5 at 1 % — steps 1, 5, 25, 50, 100 %"),
        "{status}"
    );
    assert!(status.contains("hold 10m (extended up to 30m while too few evaluations)"), "{status}");
    assert!(status.contains("next judgement in "), "{status}");
    assert!(status.contains("error rate at most 1.5×"), "{status}");
    assert!(status.contains("1,000 evaluations per cohort to judge; on breach: rollback"), "{status}");
    assert!(status.contains("started by ana at "), "{status}");
    let shown = json(&flagd.flagctl(&["rollout", "status", "chat", "--json"]).ok());
    assert_eq!(
        (shown["state"].as_str(), shown["step"].as_u64(), shown["percent"].as_f64()),
        (Some("running"), Some(1), Some(1.0))
    );
    assert_eq!(shown["hold_ms"].as_u64(), Some(600_000));
    assert_eq!(shown["max_hold_ms"].as_u64(), Some(1_800_000));

    let paused = flagd.flagctl(&["rollout", "pause", "chat", "--reason", "lunch"]).ok();
    assert!(paused.contains("paused the rollout plan of chat at step 1/5 (1 %)"), "{paused}");
    let list = flagd.flagctl(&["rollout", "list"]).ok();
    assert!(
        list.contains("chat") && list.contains("paused") && list.contains("paused by ana: lunch"),
        "{list}"
    );
    let again = flagd.flagctl(&["rollout", "pause", "chat"]).fails_with(9);
    assert!(again.contains("cannot pause a rollout plan that is paused; it must be running"), "{again}");

    let resumed = flagd.flagctl(&["rollout", "resume", "chat"]).ok();
    assert!(
        resumed.contains("resumed the rollout plan of chat at step 1/5 (1 %), written again (revision 3)"),
        "{resumed}"
    );

    let aborted = flagd.flagctl(&["rollout", "abort", "chat", "--reason", "wrong flag"]).ok();
    assert!(aborted.contains("aborted the rollout plan of chat"), "{aborted}");
    let status = flagd.flagctl(&["rollout", "status"]).ok();
    assert!(status.contains("aborted") && status.contains("why: aborted by ana: wrong flag"), "{status}");
    assert!(flagd.flagctl(&["get", "chat"]).ok().contains("1% on"), "an abort leaves the flag");

    let missing = flagd.flagctl(&["rollout", "status", "search"]).fails_with(3);
    assert!(
        missing.contains("flag \"search\" in environment \"production\" has no rollout plan"),
        "{missing}"
    );
    let none = flagd.flagctl(&["rollout", "resume", "search"]).fails_with(3);
    assert!(none.contains("flag \"search\" has no rollout plan"), "{none}");
}

#[test]
fn a_manual_change_pauses_the_plan_and_it_survives_a_restart() {
    let mut flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "0"]).ok();
    flagd.flagctl(&start_args("chat", &[])).ok();
    flagd.flagctl(&["set", "chat", "--percent", "40", "--reason", "by hand"]).ok();
    flagd.restart();
    let status = flagd.flagctl(&["rollout", "status", "chat"]).ok();
    assert!(status.contains("paused, step 1/5"), "{status}");
    assert!(
        status.contains("why: the flag was changed outside the plan by ana (version 3): by hand"),
        "{status}"
    );
    // Resuming writes the plan's step again.
    flagd.flagctl(&["rollout", "resume", "chat"]).ok();
    assert!(flagd.flagctl(&["get", "chat"]).ok().contains("1% on"));
}

#[test]
fn each_bad_plan_is_refused_naming_its_argument_and_nothing_is_stored() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "0"]).ok();
    flagd.flagctl(&["set", "planned", "--percent", "0"]).ok();
    flagd.flagctl(&start_args("planned", &[])).ok();
    flagd.flagctl(&["set", "killed", "--percent", "0"]).ok();
    flagd.flagctl(&["kill", "killed", "--wait", "0s"]).ok();
    let file: PathBuf = flagd.dir.path().join("banner.yaml");
    std::fs::write(
        &file,
        "flags:\n  - key: banner\n    variants:\n      - { name: blue, value: \"#00f\" }\n      - { name: red, value: \"#f00\" }\n    off_variant: blue\n    default: { variant: red }\n",
    )
    .unwrap();
    flagd.flagctl(&["apply", "-f", file.to_str().unwrap()]).ok();
    let before = stored(&flagd);

    let invalid: [(&str, &str, &str); 8] = [
        ("--steps", "5,1", "--steps[1]: expected a percentage above 5 and at most 100, found 1"),
        ("--steps", "50,120", "--steps[1]: expected a percentage above 50 and at most 100, found 120"),
        ("--hold", "0s", "--hold: expected a duration above 0"),
        ("--max-error-ratio", "1", "--max-error-ratio: expected a ratio above 1, found 1"),
        ("--max-latency-p99-ratio", "0.9", "--max-latency-p99-ratio: expected a ratio above 1, found 0.9"),
        ("--min-samples", "0", "--min-samples: expected a count above 0, found 0"),
        ("--max-hold", "1m", "--max-hold: expected at least the hold (600000 ms), found 60000 ms"),
        (
            "--max-hold",
            "2h",
            "--max-hold: expected at most 3600000 ms (flagd keeps an hour of the SDKs' figures)",
        ),
    ];
    for (option, value, message) in invalid {
        let error = flagd.flagctl(&plan_args("chat", &[(option, value)], &[])).fails_with(4);
        assert!(error.contains(message), "{option} {value}: {error}");
    }
    let refused: [(&str, &str); 3] = [
        ("banner", "flag \"banner\": expected a variant `off` as the control cohort; the flag has blue, red"),
        ("killed", "flag \"killed\" is killed: revive it before a rollout plan runs on it"),
        ("planned", "flag \"planned\" already has a rollout plan (running, step 1/5): abort it first"),
    ];
    for (key, message) in refused {
        let error = flagd.flagctl(&start_args(key, &[])).fails_with(9);
        assert!(error.contains(message), "{key}: {error}");
    }
    let missing = flagd.flagctl(&start_args("nope", &[])).fails_with(3);
    assert!(missing.contains("nope"), "{missing}");
    let bad_breach = flagd.flagctl(&start_args("chat", &["--on-breach", "explode"])).fails_with(2);
    assert!(bad_breach.contains("--on-breach"), "{bad_breach}");
    assert_eq!(stored(&flagd), before, "a refused plan stores nothing");
}
