//! An environment larger than gRPC's default 4 MiB message limit, through the real binaries:
//! apply, list and export all of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::Flagd;

const FLAGS: usize = 12_000;

/// A JSON flag file of `FLAGS` flags with long descriptions: about 6 MB on the wire.
fn large_file() -> String {
    let description = "a description long enough to make the environment big ".repeat(6);
    let flags: Vec<serde_json::Value> = (0..FLAGS)
        .map(|i| {
            serde_json::json!({
                "key": format!("flag-{i:05}"),
                "description": format!("{i}: {description}"),
                "variants": [{ "name": "on", "value": true }, { "name": "off", "value": false }],
                "off_variant": "off",
                "default": { "variant": "off" },
            })
        })
        .collect();
    serde_json::json!({ "flags": flags }).to_string()
}

#[test]
fn apply_list_and_export_an_environment_over_four_mebibytes() {
    let flagd = Flagd::start();
    let path = flagd.dir.path().join("large.json");
    std::fs::write(&path, large_file()).unwrap();
    let out = flagd.flagctl(&["apply", "-f", path.to_str().unwrap(), "--timeout", "120s"]).ok();
    assert!(
        out.trim_end().ends_with(&format!("applied {FLAGS} changes to production (revision {FLAGS})")),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );

    let table = flagd.flagctl(&["list"]).ok();
    assert_eq!(table.lines().count(), FLAGS + 1, "a header and a line per flag");
    let listed = flagd.flagctl(&["list", "--json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let count = listed.as_array().map(Vec::len).or_else(|| listed["flags"].as_array().map(Vec::len));
    assert_eq!(count, Some(FLAGS));

    let exported = flagd.flagctl(&["export", "--format", "json"]).ok();
    let exported: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported["flags"].as_array().map(Vec::len), Some(FLAGS));
    assert_eq!(exported["flags"][FLAGS - 1]["key"], "flag-11999");
}

#[test]
fn a_write_past_the_environment_cap_is_refused_with_the_figures_and_exit_4() {
    let flagd = Flagd::start_with(&["--max-environment-bytes", "4096"]);
    let mut created = 0;
    let stderr = loop {
        let run = flagd.flagctl(&["set", &format!("flag-{created:03}"), "--percent", "5"]);
        if run.code != 0 {
            break run.fails_with(4);
        }
        created += 1;
        assert!(created < 200, "a 4 KiB cap never refused a write");
    };
    assert!(stderr.contains("over its cap of") && stderr.contains("4096 bytes"), "{stderr}");
    // The kill switch is never refused by the cap.
    flagd.flagctl(&["kill", "flag-000", "--wait", "0s"]).ok();
}
