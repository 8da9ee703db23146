//! Criterion's estimates read back after a run, so a bench can print the ratios between
//! its own measurements (ratios hold across machines; nanoseconds do not).

use std::path::PathBuf;
use std::time::SystemTime;

/// Where criterion writes its estimates, found as criterion finds it: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else the target directory the bench runs from
/// (`<target>/release/deps/<bench>`; criterion asks `cargo metadata`, which answers the same
/// directory for this workspace).
fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.ancestors().nth(3)?.join("criterion"))
}

/// The median (ns) criterion estimated for `group/id` in a run that ended after `since`;
/// `None` when `id` did not run then (filtered out), so that a stale figure from an earlier
/// run is never read as this run's.
pub fn median_ns(group: &str, id: &str, since: SystemTime) -> Option<f64> {
    // Criterion's directory names replace `/` (and a few other characters) with `_`.
    let dir: String = id.chars().map(|c| if "?\"/\\*<>:|^".contains(c) { '_' } else { c }).collect();
    let path = criterion_home()?.join(group).join(dir).join("new").join("estimates.json");
    if std::fs::metadata(&path).and_then(|m| m.modified()).ok()? < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}
