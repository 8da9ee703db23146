//! A write that times out on flagctl's side may still commit on the server: flagctl says
//! "outcome unknown; check revision N" and exits 10, never a bare "timed out".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;

use support::Flagd;

#[test]
fn a_write_timing_out_here_exits_10_with_the_revision_to_check() {
    let flagd = Flagd::start();
    // Large enough that the apply takes far longer than the deadline given below.
    let mut file = String::from("flags:\n");
    for n in 0..5_000 {
        writeln!(
            file,
            "  - {{ key: bulk-{n:05}, variants: [{{ name: on, value: true }}, {{ name: off, value: false }}], \
             off_variant: off, default: {{ variant: on }} }}"
        )
        .unwrap();
    }
    let path = flagd.dir.path().join("bulk.yaml");
    std::fs::write(&path, file).unwrap();
    let stderr = flagd.flagctl(&["--timeout", "50ms", "apply", "-f", path.to_str().unwrap()]).fails_with(10);
    assert!(stderr.contains("outcome unknown; check"), "{stderr}");
    assert!(stderr.contains("applying"), "the message says which write: {stderr}");
    let help = flagd.flagctl(&["--help"]).ok();
    assert!(help.contains("10  a write timed out: outcome unknown"), "{help}");
}
