//! `flagctl restore` against the real flagd binary: a bad deploy undone in one command,
//! every change a new version, a kill made since kept unless revival is asked for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Flagd;

/// The environment as `export` prints it.
fn export(flagd: &Flagd) -> String {
    flagd.flagctl(&["export"]).ok()
}

#[test]
fn a_bad_deploy_is_undone_by_restoring_the_revision_before_it() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    flagd.flagctl(&["set", "search", "--percent", "20"]).ok();
    let before = export(&flagd);
    let good = 2;

    // The deploy: a ramp, a new flag, a deletion, and one flag killed during the incident.
    flagd.flagctl(&["set", "chat", "--percent", "50"]).ok();
    flagd.flagctl(&["set", "beta", "--percent", "1"]).ok();
    flagd.flagctl(&["delete", "search"]).ok();
    flagd.flagctl(&["kill", "chat", "--wait", "0s"]).ok();

    let plan = flagd.flagctl(&["restore", "production", "--to-revision", "2", "--dry-run"]).ok();
    assert!(plan.contains("dry run: 3 changes would put production back to r2"), "{plan}");
    assert!(plan.contains("- flag beta (delete)"), "{plan}");
    assert!(plan.contains("+ flag search (create)"), "{plan}");
    assert!(plan.contains("flag chat was live at r2"), "the kill is kept and said so: {plan}");
    assert!(plan.contains("--expect-revision 6"), "{plan}");

    // A stale expectation restores nothing.
    let stale = flagd
        .flagctl(&["restore", "production", "--to-revision", "2", "--expect-revision", "5"])
        .fails_with(5);
    assert!(stale.contains("not the expected 5"), "{stale}");

    let done = flagd
        .flagctl(&[
            "restore",
            "production",
            "--reason",
            "undo deploy 4711",
            "--to-revision",
            &good.to_string(),
        ])
        .ok();
    assert!(done.contains("restored production to r2 ("), "{done}");
    let history = flagd.flagctl(&["history", "search"]).ok();
    assert!(history.contains("restore to r2 ("), "{history}");
    assert!(history.contains("undo deploy 4711"), "{history}");
    // Everything is as before except chat's kill, which the restore kept.
    let kept = export(&flagd);
    assert!(kept.contains("enabled: false"), "{kept}");
    assert_eq!(kept.replace("enabled: false", "enabled: true"), before);
    flagd.flagctl(&["restore", "production", "--to-revision", "2", "--allow-revive"]).ok();
    assert_eq!(export(&flagd), before);
}

#[test]
fn a_time_or_a_duration_names_the_point_and_bad_points_are_refused() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let before = export(&flagd);
    // Far enough apart that "2 s ago" falls between the two writes however slow this runs.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    flagd.flagctl(&["set", "chat", "--percent", "80"]).ok();

    // Two seconds ago, chat was at 5 %.
    let restored = flagd.flagctl(&["restore", "production", "--ago", "2s"]).ok();
    assert!(restored.contains("restored production to r1 ("), "{restored}");
    assert_eq!(export(&flagd), before);

    let future = flagd.flagctl(&["restore", "production", "--to-revision", "99"]).fails_with(3);
    assert!(future.contains("no revision 99 yet"), "{future}");
    let bad_time = flagd.flagctl(&["restore", "production", "--at", "yesterday"]).fails_with(2);
    assert!(bad_time.contains("--at"), "{bad_time}");
    let no_point = flagd.flagctl(&["restore", "production"]).fails_with(2);
    assert!(no_point.contains("--to-revision"), "{no_point}");
}

#[test]
fn a_bookmark_names_the_point_for_diff_and_restore() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let made =
        flagd.flagctl(&["bookmark", "production", "pre-deploy-4711", "--reason", "before deploy 4711"]).ok();
    assert!(made.contains("bookmarked production at revision 1 as \"pre-deploy-4711\""), "{made}");
    let before = export(&flagd);
    flagd.flagctl(&["set", "chat", "--percent", "60"]).ok();
    flagd.flagctl(&["set", "beta", "--percent", "1"]).ok();

    let diff = flagd.flagctl(&["diff", "production@pre-deploy-4711", "production"]);
    assert_eq!(diff.code, 1, "{diff:?}");
    assert!(diff.stdout.contains("  + flag beta (only in production)"), "{}", diff.stdout);
    flagd.flagctl(&["restore", "production", "--to", "pre-deploy-4711"]).ok();
    assert_eq!(export(&flagd), before);
    flagd.flagctl(&["diff", "production@pre-deploy-4711", "production"]).ok();

    let listed = flagd.flagctl(&["bookmark", "list"]).ok();
    assert!(
        listed.contains("pre-deploy-4711") && listed.contains("r1") && listed.contains("before deploy 4711"),
        "{listed}"
    );
    let taken = flagd.flagctl(&["bookmark", "production", "pre-deploy-4711"]).fails_with(5);
    assert!(taken.contains("exists already (revision 1)"), "{taken}");
    let missing = flagd.flagctl(&["restore", "production", "--to", "nope"]).fails_with(3);
    assert!(missing.contains("no bookmark \"nope\""), "{missing}");
}
