//! `flagctl promote` against the real flagd binary: staging's flags made so in production,
//! reviewed with a dry run and a diff, never touching production's kill state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Flagd, Run};

/// `flagctl [GLOBAL…] promote --all --except search --from staging --to production [ARGS…]`.
fn promote_all_but_search(flagd: &Flagd, global: &[&str], args: &[&str]) -> Run {
    let promote = ["promote", "--all", "--except", "search", "--from", "staging", "--to", "production"];
    let words: Vec<&str> = global.iter().chain(&promote).chain(args).copied().collect();
    flagd.flagctl(&words)
}

#[test]
fn a_reviewed_promote_makes_production_match_staging_and_keeps_its_kills() {
    let flagd = Flagd::start();
    flagd.flagctl(&["env", "create", "staging"]).ok();
    for env in ["staging", "production"] {
        flagd.flagctl(&["--env", env, "set", "chat", "--percent", "5"]).ok();
        flagd.flagctl(&["--env", env, "set", "search", "--percent", "5"]).ok();
    }
    flagd.flagctl(&["--env", "staging", "set", "chat", "--percent", "40"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "search", "--percent", "60"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "beta", "--percent", "1"]).ok();
    flagd.flagctl(&["--env", "production", "kill", "chat", "--wait", "0s"]).ok();

    let plan = promote_all_but_search(&flagd, &[], &["--dry-run"]).ok();
    assert!(plan.contains("+ flag beta (create)"), "{plan}");
    assert!(plan.contains("~ flag chat (update)"), "{plan}");
    assert!(!plan.contains("search"), "left out: {plan}");
    assert!(plan.contains("flag chat: its kill state differs; production's is kept"), "{plan}");
    assert!(
        plan.contains("dry run: 2 changes from staging@r5 planned for production at revision 3"),
        "{plan}"
    );

    let stale = promote_all_but_search(&flagd, &[], &["--expect-revision", "2"]).fails_with(5);
    assert!(stale.contains("not the expected 2"), "{stale}");

    let done =
        promote_all_but_search(&flagd, &[], &["--expect-revision", "3", "--reason", "release 42"]).ok();
    assert!(done.contains("promoted 2 changes from staging@r5 to production (revision 5)"), "{done}");
    let history = flagd.flagctl(&["history", "chat"]).ok();
    assert!(history.contains("promote from staging@r5: release 42"), "{history}");

    // What differs now is what was left out, and the kill that was kept.
    let diff = flagd.flagctl(&["diff", "staging", "production"]);
    assert_eq!(diff.code, 1);
    assert!(diff.stdout.contains("  ~ flag chat\n      enabled: true → false\n"), "{}", diff.stdout);
    assert!(diff.stdout.contains("  ~ flag search\n"), "{}", diff.stdout);
    assert!(diff.stdout.contains("2 flags and 0 segments differ; 1 flag"), "{}", diff.stdout);
    flagd.flagctl(&["diff", "staging", "production", "beta"]).ok();
}

#[test]
fn only_some_parts_and_refusals() {
    let flagd = Flagd::start();
    flagd.flagctl(&["env", "create", "staging"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "chat", "--percent", "40"]).ok();
    let missing =
        flagd.flagctl(&["promote", "chat", "nope", "--from", "staging", "--to", "production"]).fails_with(3);
    assert!(missing.contains(r#"no flag "nope" in environment "staging""#), "{missing}");
    let bad_part = flagd
        .flagctl(&["promote", "chat", "--from", "staging", "--to", "production", "--only", "enabled"])
        .fails_with(2);
    assert!(bad_part.contains("expected rules, default, variants, prerequisites or metadata"), "{bad_part}");
    let neither = flagd.flagctl(&["promote", "--from", "staging", "--to", "production"]).fails_with(2);
    assert!(neither.contains("--all"), "{neither}");
    let itself = flagd.flagctl(&["promote", "chat", "--from", "staging", "--to", "staging"]).fails_with(4);
    assert!(itself.contains("to itself"), "{itself}");

    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    flagd.flagctl(&["promote", "chat", "--from", "staging", "--to", "production", "--only", "metadata"]).ok();
    let unchanged = flagd.flagctl(&["diff", "staging", "production", "chat"]);
    assert!(
        unchanged.stdout.contains("default.split.weights[0].weight: 40000 → 5000"),
        "the default was not taken: {}",
        unchanged.stdout
    );
    flagd.flagctl(&["promote", "chat", "--from", "staging", "--to", "production", "--only", "default"]).ok();
    flagd.flagctl(&["diff", "staging", "production", "chat"]).ok();
}
