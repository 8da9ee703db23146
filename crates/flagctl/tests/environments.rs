//! `flagctl env …` against the real flagd binary, and what a typo in `--env` gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Flagd;

#[test]
fn environments_are_created_listed_described_and_deleted() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5", "--reason", "first"]).ok();
    let created = flagd.flagctl(&["env", "create", "staging", "--from", "production"]).ok();
    assert_eq!(created.trim(), "created staging as a copy of production@r1: 1 flag, 0 segments, revision 1");
    let empty = flagd.flagctl(&["env", "create", "qa"]).ok();
    assert!(empty.starts_with("created qa (empty)"), "{empty}");

    let listed = flagd.flagctl(&["env", "list"]).ok();
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        rows[0].starts_with("production") && rows[0].contains("create chat by ana: \"first\""),
        "{listed}"
    );
    assert!(rows[1].starts_with("qa") && rows[1].ends_with("none yet"), "{listed}");
    assert!(rows[2].starts_with("staging"), "{listed}");

    let described = flagd.flagctl(&["--json", "env", "describe", "staging"]).ok();
    let described: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described["copied_from"], "production@r1");
    assert_eq!(described["flags"], 1);
    assert_eq!(described["connected_sdks"], serde_json::json!([]));

    let taken = flagd.flagctl(&["env", "create", "staging"]).fails_with(5);
    assert!(taken.contains(r#"environment "staging" exists already (revision 1)"#), "{taken}");

    let deleted = flagd.flagctl(&["env", "delete", "staging", "--reason", "done"]).ok();
    assert!(deleted.starts_with("deleted staging at revision 2: 1 flag, 0 segments"), "{deleted}");
    let gone = flagd.flagctl(&["--env", "staging", "list"]).fails_with(3);
    assert!(gone.contains(r#"no environment "staging""#), "{gone}");
    let log = flagd.flagctl(&["--env", "staging", "log"]).ok();
    assert!(log.contains(r#"delete by ana: "environment deleted: done""#), "its history stays: {log}");
    let with_deleted = flagd.flagctl(&["env", "list", "--deleted"]).ok();
    assert!(with_deleted.contains("deleted") && with_deleted.contains("staging"), "{with_deleted}");
}

#[test]
fn a_typo_in_the_environment_is_refused_with_the_name_meant_and_creates_nothing() {
    let flagd = Flagd::start();
    let refused = flagd.flagctl(&["--env", "prodution", "set", "chat", "--percent", "5"]).fails_with(3);
    assert!(refused.contains(r#"no environment "prodution"; did you mean "production"?"#), "{refused}");
    let listed = flagd.flagctl(&["env", "list"]).ok();
    assert_eq!(listed.lines().count(), 2, "only production: {listed}");
    for read in [&["get", "chat"][..], &["log"], &["history", "chat"]] {
        let words: Vec<&str> = ["--env", "prodution"].iter().chain(read).copied().collect();
        let refused = flagd.flagctl(&words).fails_with(3);
        assert!(refused.contains("did you mean"), "{read:?}: {refused}");
    }
}

#[test]
fn declared_environments_exist_from_the_start() {
    let flagd = Flagd::start_with(&["--environments", "staging,dev"]);
    let listed = flagd.flagctl(&["env", "list"]).ok();
    let names: Vec<&str> = listed.lines().skip(1).map(|row| row.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["dev", "production", "staging"]);
    flagd.flagctl(&["--env", "dev", "set", "chat", "--on"]).ok();
}
