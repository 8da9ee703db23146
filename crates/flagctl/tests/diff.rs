//! `flagctl diff` against the real flagd binary: two environments, or one at two points,
//! field by field; exit 0 when the same and 1 when they differ, like `diff`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Flagd, Run};

/// A diff that found differences: exit 1, the differences on stdout and nothing on stderr.
fn differs(run: Run) -> String {
    let Run { code, stdout, stderr } = run;
    assert_eq!((code, stderr.as_str()), (1, ""), "stdout: {stdout}");
    stdout
}

#[test]
fn two_environments_differ_field_by_field_and_exit_1() {
    let flagd = Flagd::start();
    flagd.flagctl(&["env", "create", "staging"]).ok();
    for env in ["staging", "production"] {
        flagd.flagctl(&["--env", env, "set", "chat", "--percent", "5"]).ok();
        flagd.flagctl(&["--env", env, "set", "search", "--percent", "20"]).ok();
    }
    // The same content, written separately: versions and times differ, nothing else.
    let same = flagd.flagctl(&["diff", "staging", "production"]).ok();
    assert!(same.contains("identical: 2 flags and 0 segments the same"), "{same}");

    flagd.flagctl(&["--env", "staging", "set", "chat", "--percent", "25"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "beta", "--percent", "1"]).ok();
    flagd.flagctl(&["--env", "production", "kill", "search", "--wait", "0s"]).ok();
    let text = differs(flagd.flagctl(&["diff", "staging", "production"]));
    assert!(text.contains("staging (r4) → production (r3)"), "{text}");
    assert!(text.contains("  - flag beta (only in staging)"), "{text}");
    assert!(text.contains("  ~ flag chat\n      default.split.weights[0].weight: 25000 → 5000"), "{text}");
    assert!(text.contains("  ~ flag search\n      enabled: true → false"), "{text}");
    assert!(text.contains("3 flags and 0 segments differ; 0 flags and 0 segments the same"), "{text}");

    let json = differs(flagd.flagctl(&["--json", "diff", "staging", "production", "search"]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["identical"], false);
    assert_eq!(json["flags"].as_array().unwrap().len(), 1, "only the key asked for: {json}");
    assert_eq!(json["flags"][0]["fields"][0]["path"], "enabled");
    assert_eq!(json["flags"][0]["fields"][0]["to"], false);
}

#[test]
fn one_environment_at_two_points_and_bad_sides() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    flagd.flagctl(&["set", "chat", "--percent", "50"]).ok();
    let text = differs(flagd.flagctl(&["diff", "production@r1", "production"]));
    assert!(text.contains("production@r1 (r1) → production (r2)"), "{text}");
    assert!(text.contains("default.split.weights[0].weight: 5000 → 50000"), "{text}");
    flagd.flagctl(&["diff", "production@r2", "production@-0s"]).ok();

    let future = flagd.flagctl(&["diff", "production@r9", "production"]).fails_with(3);
    assert!(future.contains("no revision 9 yet"), "{future}");
    let bad = flagd.flagctl(&["diff", "production@2026-13-01T00:00:00Z", "production"]).fails_with(4);
    assert!(bad.contains("expected ENV@rN"), "{bad}");
    // Anything else after `@` names a bookmark.
    let unknown = flagd.flagctl(&["diff", "production@yesterday", "production"]).fails_with(3);
    assert!(unknown.contains("no bookmark \"yesterday\""), "{unknown}");
}
