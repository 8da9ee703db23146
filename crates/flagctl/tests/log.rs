//! `flagctl log` against the real flagd binary: filters by flag, actor, action and time, one
//! environment or all, pages continued with the cursor it prints, JSON lines whose `after`s
//! replay to the environment's flags, and refusals that name the argument.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::Flagd;

/// `log --format jsonl ARGS`: one JSON object per stdout line, and stderr.
fn lines(flagd: &Flagd, args: &[&str]) -> (Vec<Value>, String) {
    let run = flagd.flagctl(&[&["log", "--format", "jsonl"], args].concat());
    let stderr = run.stderr.clone();
    let stdout = run.ok();
    (stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect(), stderr)
}

/// The revisions `log --format jsonl ARGS --limit all` lists, in its order.
fn revisions(flagd: &Flagd, args: &[&str]) -> Vec<u64> {
    ids(&lines(flagd, &[args, &["--limit", "all"]].concat()).0)
        .into_iter()
        .map(|(_, revision)| revision)
        .collect()
}

fn ids(lines: &[Value]) -> Vec<(String, u64)> {
    lines
        .iter()
        .map(|line| (line["environment"].as_str().unwrap().to_owned(), line["revision"].as_u64().unwrap()))
        .collect()
}

/// The cursor a run printed to continue with, if any.
fn cursor(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("continue with --before ")?;
    Some(rest.split_whitespace().next().unwrap().to_owned())
}

/// Six changes to two flags by two people.
fn six_changes(flagd: &Flagd) {
    flagd.flagctl(&["set", "chat", "--percent", "5", "--reason", "first cohort", "--actor", "ana"]).ok();
    flagd.flagctl(&["set", "search", "--percent", "10", "--actor", "ben"]).ok();
    flagd.flagctl(&["set", "chat", "--percent", "25", "--actor", "ana"]).ok();
    flagd.flagctl(&["kill", "chat", "--wait", "0s", "--reason", "incident 4711", "--actor", "ben"]).ok();
    flagd.flagctl(&["rollback", "chat", "--to", "1", "--actor", "ana"]).ok();
    flagd.flagctl(&["delete", "search", "--actor", "ben"]).ok();
}

#[test]
fn filters_by_flag_actor_action_and_time_combine() {
    let flagd = Flagd::start();
    six_changes(&flagd);
    assert_eq!(revisions(&flagd, &[]), [6, 5, 4, 3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--flag", "chat"]), [5, 4, 3, 1]);
    assert_eq!(revisions(&flagd, &["--flag", "chat,search"]), [6, 5, 4, 3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--flag", "search", "--flag", "chat"]), [6, 5, 4, 3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--flag", "nothing"]), Vec::<u64>::new());
    assert_eq!(revisions(&flagd, &["--actor", "ben"]), [6, 4, 2]);
    assert_eq!(revisions(&flagd, &["--action", "kill,rollback"]), [5, 4]);
    assert_eq!(revisions(&flagd, &["--action", "create", "--action", "delete"]), [6, 2, 1]);
    let combined = ["--flag", "chat", "--actor", "ana", "--action", "set_rollout,create,kill"];
    assert_eq!(revisions(&flagd, &combined), [3, 1]);

    // Times as the lines print them (RFC 3339 with milliseconds) bound a window exactly.
    let (all, _) = lines(&flagd, &[]);
    let time = |revision: u64| all[6 - revision as usize]["time"].as_str().unwrap().to_owned();
    assert_eq!(revisions(&flagd, &["--since", &time(3)]), [6, 5, 4, 3]);
    assert_eq!(revisions(&flagd, &["--until", &time(3)]), [3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--since", &time(2), "--until", &time(4), "--actor", "ben"]), [4, 2]);
    assert_eq!(revisions(&flagd, &["--since", "-1h"]), [6, 5, 4, 3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--since", "1h"]), [6, 5, 4, 3, 2, 1]);
    assert_eq!(revisions(&flagd, &["--until", "-1h"]), Vec::<u64>::new());

    // The table shows the same filters.
    let table = flagd.flagctl(&["log", "--actor", "ben"]).ok();
    assert!(table.contains("r4    chat v3") && table.contains("kill by ben: \"incident 4711\""), "{table}");
    assert!(!table.contains("by ana"), "{table}");
    assert_eq!(flagd.flagctl(&["log", "--until", "2h"]).ok().trim(), "no changes");
}

#[test]
fn flagd_actor_names_the_writer_and_never_filters_the_log() {
    let flagd = Flagd::start();
    flagd.flagctl_env(&["set", "beta", "--on"], &[("FLAGD_ACTOR", "carol")]).ok();
    flagd.flagctl(&["set", "chat", "--on"]).ok();
    assert_eq!(revisions(&flagd, &["--actor", "carol"]), [1]);
    assert_eq!(revisions(&flagd, &["--actor", "ana"]), [2], "$USER when FLAGD_ACTOR is not set");
    let run = flagd.flagctl_env(&["log", "--format", "jsonl"], &[("FLAGD_ACTOR", "nobody")]);
    assert_eq!(run.ok().lines().count(), 2);
}

#[test]
fn all_environments_merge_newest_first_and_pages_continue_with_the_cursor() {
    let flagd = Flagd::start_with(&["--environments", "staging"]);
    for i in 0..4 {
        flagd.flagctl(&["set", &format!("p{i}"), "--percent", "5"]).ok();
        flagd.flagctl(&["--env", "staging", "set", &format!("s{i}"), "--percent", "5"]).ok();
    }
    flagd.flagctl(&["--env", "staging", "kill", "s0", "--wait", "0s"]).ok();
    let (all, more) = lines(&flagd, &["--all-environments", "--limit", "all"]);
    assert!(more.is_empty(), "nothing left to continue with: {more}");
    assert_eq!(lines(&flagd, &["--all-environments", "--all"]).0, all, "--all is --limit all");
    let staging: Vec<(String, u64)> = (1..=5).rev().map(|r| ("staging".to_owned(), r)).collect();
    let production: Vec<(String, u64)> = (1..=4).rev().map(|r| ("production".to_owned(), r)).collect();
    // Newest first: the kill, then staging and production in turn, as they were written.
    let mut expected: Vec<(String, u64)> = vec![staging[0].clone()];
    for i in 0..4 {
        expected.push(staging[i + 1].clone());
        expected.push(production[i].clone());
    }
    assert_eq!(ids(&all), expected);
    let times: Vec<&str> = all.iter().map(|line| line["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    assert_eq!(revisions(&flagd, &["--env", "staging"]), [5, 4, 3, 2, 1]);

    // Pages of 3, each continued from the cursor the last printed; a write in between
    // belongs to a new query.
    let (mut paged, mut next) = (Vec::new(), None::<String>);
    loop {
        let mut args = vec!["--all-environments", "--limit", "3"];
        if let Some(cursor) = &next {
            args.extend(["--before", cursor]);
        }
        let (page, stderr) = lines(&flagd, &args);
        assert!(page.len() <= 3);
        paged.extend(ids(&page));
        flagd.flagctl(&["set", "late", "--percent", "1"]).ok();
        next = cursor(&stderr);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(paged, expected);

    // The table names each change's environment and ends with the cursor.
    let total = revisions(&flagd, &["--all-environments"]).len();
    assert_eq!(total, expected.len() + 3, "with the writes made between pages");
    let table = flagd.flagctl(&["log", "--all-environments", "--limit", "2"]).ok();
    let rows: Vec<&str> = table.lines().filter(|line| line.contains(" by ")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|row| row.starts_with("production ") || row.starts_with("staging ")), "{table}");
    let continued = cursor(&table).expect("a cursor");
    let rest = flagd.flagctl(&["log", "--all-environments", "--limit", "all", "--before", &continued]).ok();
    assert_eq!(rest.lines().filter(|line| line.contains(" by ")).count(), total - 2, "{rest}");
    assert!(cursor(&rest).is_none(), "{rest}");
}

#[test]
fn a_limit_beyond_one_page_follows_the_pages() {
    let flagd = Flagd::start_with(&["--environments", "bulk"]);
    let mut file = String::from("flags:\n");
    for i in 0..1005 {
        file.push_str(&format!(
            "  - {{ key: f{i}, variants: [{{ name: on, value: true }}, {{ name: off, value: false }}], \
             off_variant: off, default: {{ variant: on }} }}\n"
        ));
    }
    let path = flagd.dir.path().join("many.yaml");
    std::fs::write(&path, file).unwrap();
    flagd.flagctl(&["--env", "bulk", "apply", "-f", path.to_str().unwrap()]).ok();

    let every = revisions(&flagd, &["--env", "bulk"]);
    assert_eq!(every, (1..=1005).rev().collect::<Vec<u64>>());
    let (most, stderr) = lines(&flagd, &["--env", "bulk", "--limit", "1003"]);
    assert_eq!(ids(&most).last(), Some(&("bulk".to_owned(), 3)));
    assert_eq!(most.len(), 1003);
    assert_eq!(cursor(&stderr).as_deref(), Some("bulk=2"), "{stderr}");
}

/// `flag` without what the store stamps on it, as `export` prints it.
fn as_exported(flag: &Value) -> flag_core::Flag {
    let mut flag: flag_core::Flag = serde_json::from_value(flag.clone()).unwrap();
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    flag
}

#[test]
fn json_lines_replay_to_the_current_flags() {
    let flagd = Flagd::start_with(&["--environments", "staging"]);
    let file = |name: &str, text: &str| {
        let path = flagd.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let banner = "  - { key: banner, variants: [{ name: blue, value: \"#00f\" }, { name: red, value: \"#f00\" }], \
                  off_variant: blue, default: { variant: ";
    let first = file(
        "first.yaml",
        &format!("segments:\n  - {{ key: staff, included: [ana] }}\nflags:\n{banner}red }} }}\n"),
    );
    let second = file(
        "second.yaml",
        &format!("segments:\n  - {{ key: staff, included: [ana, bo] }}\nflags:\n{banner}blue }} }}\n"),
    );
    let last = file(
        "last.yaml",
        &format!(
            "flags:\n{banner}red }} }}\n  - {{ key: chat, variants: [{{ name: on, value: true }}, {{ name: off, value: false }}], \
             off_variant: off, default: {{ variant: off }} }}\n"
        ),
    );
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    flagd.flagctl(&["set", "chat", "--percent", "25", "--dark", "50"]).ok();
    flagd.flagctl(&["set", "chat", "--variant", "dark"]).ok();
    flagd.flagctl(&["kill", "chat", "--wait", "0s"]).ok();
    flagd.flagctl(&["revive", "chat"]).ok();
    flagd.flagctl(&["apply", "-f", &first]).ok();
    flagd.flagctl(&["apply", "-f", &second]).ok();
    flagd.flagctl(&["set", "search", "--on"]).ok();
    flagd.flagctl(&["delete", "search"]).ok();
    flagd.flagctl(&["rollback", "search", "--to", "1", "--allow-revive"]).ok();
    flagd.flagctl(&["apply", "--prune", "-f", &last]).ok();
    flagd.flagctl(&["set", "chat", "--percent", "40"]).ok();
    flagd.flagctl(&["--env", "staging", "set", "elsewhere", "--on"]).ok();

    let (newest_first, _) = lines(&flagd, &["--limit", "all"]);
    let actions: BTreeSet<(&str, &str)> = newest_first
        .iter()
        .map(|line| (line["kind"].as_str().unwrap(), line["action"].as_str().unwrap()))
        .collect();
    let every: BTreeSet<(&str, &str)> = [
        ("flag", "create"),
        ("flag", "update"),
        ("flag", "delete"),
        ("flag", "kill"),
        ("flag", "revive"),
        ("flag", "rollback"),
        ("flag", "set_rollout"),
        ("flag", "serve_variant"),
        ("segment", "create"),
        ("segment", "update"),
        ("segment", "delete"),
    ]
    .into();
    assert_eq!(actions, every, "every kind of change is in the log");

    // Oldest first, each line's `before` is what the replay holds, and its `after` what
    // it holds next.
    let mut replayed: BTreeMap<(String, String), Value> = BTreeMap::new();
    for line in newest_first.iter().rev() {
        let keys = ["environment", "revision", "version", "key", "kind", "action", "actor", "reason", "time"];
        for field in keys {
            assert!(!line[field].is_null(), "{field} in {line}");
        }
        assert_eq!(line["environment"], "production");
        let subject = (line["kind"].as_str().unwrap().to_owned(), line["key"].as_str().unwrap().to_owned());
        assert_eq!(replayed.get(&subject).unwrap_or(&Value::Null), &line["before"], "before of {line}");
        match &line["after"] {
            Value::Null => replayed.remove(&subject),
            after => {
                if subject.0 == "flag" {
                    assert_eq!(after["version"], line["version"], "{line}");
                }
                replayed.insert(subject, after.clone())
            }
        };
    }
    let export: flag_core::FlagSet =
        serde_json::from_str(&flagd.flagctl(&["export", "--format", "json"]).ok()).unwrap();
    let (mut flags, mut segments) = (Vec::new(), Vec::new());
    for ((kind, _), content) in &replayed {
        match kind.as_str() {
            "flag" => flags.push(as_exported(content)),
            _ => segments.push(serde_json::from_value::<flag_core::Segment>(content.clone()).unwrap()),
        }
    }
    assert_eq!(flag_core::FlagSet { flags, segments }, export);
    assert_eq!(export.flags.len(), 2);
}

#[test]
fn refusals_name_the_argument() {
    let flagd = Flagd::start();
    flagd.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let unknown = flagd.flagctl(&["log", "--action", "kill,explode"]).fails_with(4);
    assert!(unknown.contains("--action: expected one of create, update, delete, kill, revive, rollback, set_rollout, serve_variant, found \"explode\""), "{unknown}");
    let backwards = flagd.flagctl(&["log", "--since", "-1h", "--until", "-2h"]).fails_with(4);
    assert!(backwards.contains("--until: expected a time at or after --since"), "{backwards}");
    let garbled = flagd.flagctl(&["log", "--since", "yesterday"]).fails_with(4);
    assert!(garbled.contains("--since: expected a time (RFC 3339"), "{garbled}");
    let bad_until = flagd.flagctl(&["log", "--until", "2026-13-01T00:00:00Z"]).fails_with(4);
    assert!(bad_until.contains("--until: expected a time"), "{bad_until}");
    let not_a_cursor = flagd.flagctl(&["log", "--before", "r12"]).fails_with(4);
    assert!(not_a_cursor.contains("--before: expected a cursor"), "{not_a_cursor}");
    let elsewhere = flagd.flagctl(&["log", "--before", "staging=3"]).fails_with(4);
    assert!(
        elsewhere.contains("--before: expected a cursor of environment \"production\"'s log"),
        "{elsewhere}"
    );
    let zero = flagd.flagctl(&["log", "--limit", "0"]).fails_with(2);
    assert!(zero.contains("--limit"), "{zero}");
    let format = flagd.flagctl(&["log", "--format", "csv"]).fails_with(2);
    assert!(format.contains("--format") && format.contains("jsonl"), "{format}");
    // Nothing was written by any of them.
    assert_eq!(revisions(&flagd, &[]), [1]);
}
