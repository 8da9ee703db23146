//! `flagctl apply` of OpenFeature flagd flag files and `export --format flagd`, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Flagd;

const FLAGD_FILE: &str = r##"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "banner": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off",
      "targeting": { "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "on"] },
      "metadata": { "owner": "web" }
    },
    "colour": {
      "state": "DISABLED",
      "variants": { "red": "#f00", "blue": "#00f" },
      "defaultVariant": "red"
    },
    "nested": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off",
      "targeting": { "if": [{ "==": [{ "var": "user.tier" }, "gold"] }, "on"] }
    }
  }
}"##;

fn write(flagd: &Flagd, name: &str, text: &str) -> String {
    let path = flagd.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_flagd_file_with_untranslatable_flags_is_refused_naming_each() {
    let flagd = Flagd::start();
    let file = write(&flagd, "flags.flagd.json", FLAGD_FILE);
    let err = flagd.flagctl(&["apply", "-f", &file, "--reason", "import"]).fails_with(4);
    assert!(err.contains("/flags/nested/targeting/if/0/==") && err.contains("nested field"), "{err}");
    // Nothing was applied.
    flagd.flagctl(&["get", "banner"]).fails_with(3);
}

#[test]
fn skip_invalid_applies_the_rest_and_lists_what_it_skipped() {
    let flagd = Flagd::start();
    let file = write(&flagd, "flags.flagd.json", FLAGD_FILE);
    let out = flagd.flagctl(&["apply", "-f", &file, "--skip-invalid", "--reason", "import"]).ok();
    assert!(out.contains("+ flag banner (create)") && out.contains("+ flag colour (create)"), "{out}");
    assert!(out.contains("skipped (no exact translation) /flags/nested/targeting/if/0/=="), "{out}");
    assert!(!out.contains("+ flag nested"), "{out}");
    // Pruning would delete the skipped flag: refused.
    flagd.flagctl(&["apply", "-f", &file, "--skip-invalid", "--prune", "--reason", "import"]).fails_with(4);
}

#[test]
fn export_as_flagd_round_trips_through_apply() {
    let flagd = Flagd::start();
    let file = write(&flagd, "in.json", FLAGD_FILE);
    flagd.flagctl(&["apply", "-f", &file, "--skip-invalid", "--reason", "import"]).ok();
    let exported = flagd.flagctl(&["export", "--format", "flagd"]).ok();
    let json: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(json["flags"]["colour"]["state"], "DISABLED", "{exported}");
    assert_eq!(json["flags"]["banner"]["defaultVariant"], "off", "{exported}");
    assert_eq!(json["flags"]["banner"]["metadata"]["owner"], "web", "{exported}");
    assert_eq!(json["flags"]["banner"]["variants"], serde_json::json!({ "on": true, "off": false }));

    // The export reads back (recognised by its `$schema`). Its guards come back as clauses
    // (`!== null` as `exists`), so a rule may be rewritten, but no flag is added or removed.
    let again = write(&flagd, "again.json", &exported);
    let out = flagd.flagctl(&["apply", "-f", &again, "--dry-run"]).ok();
    assert!(!out.contains("(create)") && !out.contains("(delete)") && !out.contains("flag colour"), "{out}");
}
