//! `flagctl apply` and `export` end to end: a flag set that lives in git.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::Flagd;

const FILE: &str = "\
segments:
  - key: staff
    included: [ana, bo]
flags:
  - key: chat
    variants:
      - { name: on, value: true }
      - { name: off, value: false }
    off_variant: off
    rules:
      - clauses:
          - { attribute: key, op: in_segment, values: [staff] }
        serve: { variant: on }
    default:
      split:
        weights:
          - { variant: on, weight: 5000 }
          - { variant: off, weight: 95000 }
  - key: banner
    variants:
      - { name: blue, value: \"#00f\" }
      - { name: red, value: \"#f00\" }
    off_variant: blue
    default: { variant: red }
";

fn write(flagd: &Flagd, name: &str, text: &str) -> String {
    let path: PathBuf = flagd.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn applying_a_file_twice_changes_nothing_the_second_time_and_export_round_trips() {
    let flagd = Flagd::start();
    let file = write(&flagd, "flags.yaml", FILE);
    let out = flagd.flagctl(&["apply", "-f", &file, "--reason", "from git"]).ok();
    assert!(out.contains("+ segment staff (create)"), "{out}");
    assert!(out.contains("+ flag chat (create)") && out.contains("+ flag banner (create)"), "{out}");
    assert!(out.trim_end().ends_with("applied 3 changes to production (revision 3)"), "{out}");
    let out = flagd.flagctl(&["eval", "chat", "--user", "bo"]).ok();
    assert!(out.contains("on = true (rule 1 matched)"), "{out}");

    let out = flagd.flagctl(&["apply", "-f", &file]).ok();
    assert_eq!(out.trim(), format!("production already matches {file} (revision 3): nothing to change"));

    let exported = flagd.flagctl(&["export"]).ok();
    let exported_file = write(&flagd, "exported.yaml", &exported);
    let out = flagd.flagctl(&["apply", "-f", &exported_file]).ok();
    assert!(out.contains("nothing to change"), "{out}");
    let json = flagd.flagctl(&["export", "--format", "json"]).ok();
    let json_file = write(&flagd, "exported.json", &json);
    assert!(flagd.flagctl(&["apply", "-f", &json_file]).ok().contains("nothing to change"));
}

#[test]
fn a_dry_run_shows_the_change_and_writes_nothing_and_prune_deletes() {
    let flagd = Flagd::start();
    let file = write(&flagd, "flags.yaml", FILE);
    flagd.flagctl(&["apply", "-f", &file]).ok();
    flagd.flagctl(&["set", "legacy", "--on"]).ok();
    let ramped = write(
        &flagd,
        "ramped.yaml",
        &FILE.replace("weight: 5000", "weight: 25000").replace("weight: 95000", "weight: 75000"),
    );

    let log_before = flagd.flagctl(&["log", "--json"]).ok();
    let out = flagd.flagctl(&["apply", "-f", &ramped, "--prune", "--dry-run"]).ok();
    assert_eq!(flagd.flagctl(&["log", "--json"]).ok(), log_before, "a dry run wrote something");
    assert!(out.contains("~ flag chat (update)"), "{out}");
    let diff: Vec<String> = out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert!(
        diff.contains(&"- weight: 5000".to_owned()) && diff.contains(&"+ weight: 25000".to_owned()),
        "{out}"
    );
    assert!(out.contains("- flag legacy (delete)"), "{out}");
    assert!(
        out.contains("dry run: 2 changes planned for production at revision 4; nothing written"),
        "{out}"
    );

    // The reviewed plan is refused once the environment has moved on…
    flagd.flagctl(&["set", "banner", "--variant", "blue"]).ok();
    let err = flagd.flagctl(&["apply", "-f", &ramped, "--prune", "--expect-revision", "4"]).fails_with(5);
    assert!(err.contains("production is at revision 5, not the expected 4"), "{err}");
    // …and applies when it has not (the banner change is undone by the file, so three changes now).
    let out = flagd.flagctl(&["apply", "-f", &ramped, "--prune", "--expect-revision", "5"]).ok();
    assert!(out.trim_end().ends_with("applied 3 changes to production (revision 8)"), "{out}");
    flagd.flagctl(&["get", "legacy"]).fails_with(3);
    assert!(flagd.flagctl(&["get", "chat"]).ok().contains("25% on, 75% off"));
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_field_and_nothing_changes() {
    let flagd = Flagd::start();
    let good = write(&flagd, "flags.yaml", FILE);
    flagd.flagctl(&["apply", "-f", &good]).ok();
    let before = flagd.flagctl(&["log", "--json"]).ok();

    // A typo: serde refuses the unknown field, at its line.
    let typo = write(
        &flagd,
        "typo.yaml",
        &FILE.replace("    off_variant: blue", "    off_variant: blue\n    enabeld: false"),
    );
    let err = flagd.flagctl(&["apply", "-f", &typo]).fails_with(4);
    assert!(err.contains("typo.yaml:24:"), "{err}");
    assert!(err.contains("unknown field `enabeld`"), "{err}");

    // Well-formed but invalid: the off variant is not a variant, and a weight is not a number
    // the split can use (negative, so the total is too). Each problem names the file line and
    // the field path.
    let invalid = FILE
        .replace("    off_variant: blue", "    off_variant: green")
        .replace("weight: 95000", "weight: -95000");
    let invalid = write(&flagd, "invalid.yaml", &invalid);
    let err = flagd.flagctl(&["apply", "-f", &invalid]).fails_with(4);
    assert!(err.contains("invalid.yaml:23: flags[1].off_variant:"), "{err}");
    assert!(err.contains("invalid.yaml:16: flags[0].default.split"), "{err}");

    // Not YAML at all.
    let broken = write(&flagd, "broken.yaml", "flags: [\n  {key: chat,\n");
    let err = flagd.flagctl(&["apply", "-f", &broken]).fails_with(4);
    assert!(err.contains("broken.yaml:"), "{err}");

    assert_eq!(flagd.flagctl(&["log", "--json"]).ok(), before, "a refused apply changed the environment");
}

#[test]
fn a_file_can_come_from_stdin_and_an_empty_one_is_refused() {
    let flagd = Flagd::start();
    let mut child = std::process::Command::new(support::FLAGCTL)
        .args(["apply", "-f", "-"])
        .env("FLAGD_ADDR", &flagd.address)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), FILE.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8(output.stdout).unwrap().contains("applied 3 changes"));

    // An empty (say, truncated) file with --prune would delete everything: refused.
    let empty = write(&flagd, "empty.yaml", "");
    let err = flagd.flagctl(&["apply", "-f", &empty, "--prune"]).fails_with(4);
    assert!(err.contains("neither `flags:` nor `segments:`"), "{err}");
    assert!(flagd.flagctl(&["list"]).ok().contains("chat"));
}

#[test]
fn an_apply_keeps_a_killed_flag_killed_and_set_ramps_an_on_off_flag() {
    let flagd = Flagd::start();
    let file = write(&flagd, "flags.yaml", FILE);
    flagd.flagctl(&["apply", "-f", &file]).ok();
    // chat has only on/off variants: set --percent ramps its two-way split.
    let out = flagd.flagctl(&["set", "chat", "--percent", "20"]).ok();
    assert!(out.contains("20% on, 80% off"), "{out}");
    flagd.flagctl(&["kill", "chat", "--wait", "0s"]).ok();

    // The file in git still says 5 % and enabled: applying it during the incident keeps the kill.
    let out = flagd.flagctl(&["apply", "-f", &file]).ok();
    assert!(out.contains("~ flag chat (update)"), "{out}");
    assert!(out.contains("flag chat is killed and stays killed"), "{out}");
    let shown = flagd.flagctl(&["get", "chat"]).ok();
    assert!(shown.contains("KILLED") && shown.contains("5% on, 95% off"), "{shown}");
}
