//! `flagctl segment` end to end: put from options and from a file, list, get, delete — and
//! refusals that name the file line or the option and leave the segment as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Flagd;

const RULES: &str = "\
segments:
  - key: beta
    description: beta testers
    included: [ana]
    rules:
      - clauses:
          - { attribute: country, op: in, values: [NZ] }
";

/// A segment rule may not name another segment (line 6 is the bad clause).
const BAD: &str = "\
segments:
  - key: beta
    rules:
      - clauses:
          - { attribute: country, op: in, values: [NZ] }
          - { attribute: key, op: in_segment, values: [staff] }
";

const FLAG: &str = "\
flags:
  - key: chat
    variants:
      - { name: on, value: true }
      - { name: off, value: false }
    off_variant: off
    rules:
      - clauses:
          - { attribute: key, op: in_segment, values: [beta] }
        serve: { variant: on }
    default: { variant: off }
";

fn file(flagd: &Flagd, name: &str, text: &str) -> String {
    let path = flagd.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn segments_are_put_listed_read_and_deleted_and_a_bad_one_changes_nothing() {
    let flagd = Flagd::start();
    // Other segments first: a refusal still names the line of the one being put.
    flagd.flagctl(&["segment", "put", "alpha", "--include", "al"]).ok();
    flagd.flagctl(&["segment", "put", "staff", "--include", "st"]).ok();
    let out = flagd
        .flagctl(&["segment", "put", "beta", "--include", "ana,bo", "--description", "beta testers"])
        .ok();
    assert!(out.starts_with("created segment beta (version 1, revision 3)"), "{out}");
    let out = flagd.flagctl(&["segment", "put", "beta", "--exclude", "cy"]).ok();
    assert!(out.starts_with("put segment beta (version 2, revision 4)"), "{out}");
    let shown = flagd.flagctl(&["segment", "get", "beta"]).ok();
    assert!(
        shown.contains("included: ana, bo") && shown.contains("excluded: cy"),
        "options change only what they name: {shown}"
    );

    let rules = file(&flagd, "rules.yaml", RULES);
    flagd.flagctl(&["segment", "put", "-f", &rules]).ok();
    let shown = flagd.flagctl(&["segment", "get", "beta"]).ok();
    assert!(
        shown.contains("included: ana\n") && shown.contains("excluded: none"),
        "a file replaces it: {shown}"
    );
    assert!(shown.contains("1. country in [\"NZ\"]"), "{shown}");
    let list = flagd.flagctl(&["segment", "list"]).ok();
    let row = list.lines().find(|line| line.starts_with("beta")).expect("listed");
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["beta", "1", "0", "1", "beta", "testers"]);

    // Refused with the file line, or the option: the segment stays at version 3.
    let bad = file(&flagd, "bad.yaml", BAD);
    let err = flagd.flagctl(&["segment", "put", "-f", &bad]).fails_with(4);
    assert!(err.contains(&format!("{bad}:6: segments[0].rules[0].clauses[1]")), "{err}");
    assert_eq!(err.matches(bad.as_str()).count(), 2, "the file's segment alone has lines: {err}");
    let err = flagd.flagctl(&["segment", "put", "bad key!", "--include", "ana"]).fails_with(4);
    assert!(err.contains("KEY: "), "{err}");
    let err = flagd.flagctl(&["segment", "put", "beta"]).fails_with(4);
    assert!(err.contains("expected --include, --exclude or --description"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&flagd.flagctl(&["segment", "get", "beta", "--json"]).ok()).unwrap();
    assert_eq!(json["included"], serde_json::json!(["ana"]));
    let history = flagd.flagctl(&["log"]).ok();
    assert_eq!(history.lines().filter(|line| line.contains("segment beta")).count(), 3, "{history}");

    // A segment a flag names cannot go; once the flag is gone it can.
    let flag = file(&flagd, "flag.yaml", FLAG);
    flagd.flagctl(&["apply", "-f", &flag]).ok();
    let err = flagd.flagctl(&["segment", "delete", "beta"]).fails_with(4);
    assert!(err.contains("chat"), "the refusal names the flag that uses it: {err}");
    flagd.flagctl(&["delete", "chat"]).ok();
    let out = flagd.flagctl(&["segment", "delete", "beta", "--reason", "beta over"]).ok();
    assert!(out.starts_with("deleted segment beta"), "{out}");
    let err = flagd.flagctl(&["segment", "get", "beta"]).fails_with(3);
    assert!(err.contains("no segment \"beta\" in production"), "{err}");
    let left = flagd.flagctl(&["segment", "list"]).ok();
    assert!(left.contains("alpha") && left.contains("staff") && !left.contains("beta"), "{left}");
}
