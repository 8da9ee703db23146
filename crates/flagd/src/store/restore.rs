//! Point-in-time restore: an environment made what it was at an earlier revision, in one
//! apply.
//!
//! The past state (`past`) becomes an apply with pruning: flags and segments created since
//! are deleted, deleted ones come back, changed ones get their old content — each as a new
//! version, so the history itself is never rewritten, and each history entry says which
//! point it restored. Going back to a killed state is safe and happens; going back to before
//! a kill would switch a flag back on during an incident, so those flags stay killed and are
//! reported unless the caller allows revival.

use std::time::{Duration, UNIX_EPOCH};

use super::backend::Database;

use super::apply::{Applied, Batch};
use super::error::WriteError;
use super::past::{self, Past};
use super::records::WriteMeta;
use super::write::Writer;

/// What a restore is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Restore {
    /// The revision whose state to restore.
    pub(crate) to_revision: u64,
    /// Switch back on the flags killed since `to_revision` (otherwise they stay killed).
    pub(crate) allow_revive: bool,
    /// Plan and validate, but commit nothing.
    pub(crate) dry_run: bool,
    /// Refuse unless the environment is at this revision.
    pub(crate) expected_revision: Option<u64>,
}

/// What a restore did (or, on a dry run, would do).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Restored {
    /// The revision restored, and when it was committed (ms since the Unix epoch).
    pub(crate) to_revision: u64,
    pub(crate) to_committed_ms: Option<i64>,
    /// The changes, as an apply reports them; `kept_killed` names the flags the restore
    /// would have switched back on and did not.
    pub(crate) applied: Applied,
}

impl Writer {
    /// Restores `environment` to `restore.to_revision`; see the module docs.
    pub(super) fn restore(
        &self,
        db: &Database,
        environment: &str,
        restore: Restore,
        meta: &WriteMeta,
        wanted: &dyn Fn() -> bool,
    ) -> Result<Option<Restored>, WriteError> {
        let Restore { to_revision, allow_revive, dry_run, expected_revision } = restore;
        let Past { revision, committed_ms, set, .. } = past::environment_at(db, environment, to_revision)?;
        let batch = Batch {
            flags: set.flags,
            segments: set.segments,
            prune: true,
            dry_run,
            expected_revision,
            allow_revive,
            from_history: true,
            lifecycle: None,
        };
        let meta = WriteMeta { reason: reason(revision, committed_ms, &meta.reason), ..meta.clone() };
        let applied = self.apply(db, environment, batch, &meta, wanted)?;
        Ok(applied.map(|applied| Restored { to_revision: revision, to_committed_ms: committed_ms, applied }))
    }
}

/// `restore to r120 (2026-12-01T10:00:00.000Z): <the caller's reason>`.
fn reason(revision: u64, committed_ms: Option<i64>, theirs: &str) -> String {
    let when = committed_ms
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| format!(" ({})", humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))))
        .unwrap_or_default();
    if theirs.is_empty() {
        format!("restore to r{revision}{when}")
    } else {
        format!("restore to r{revision}{when}: {theirs}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_point_and_keeps_the_callers() {
        assert_eq!(
            reason(120, Some(1_764_583_200_000), "bad deploy"),
            "restore to r120 (2025-12-01T10:00:00.000Z): bad deploy"
        );
        assert_eq!(reason(0, None, ""), "restore to r0");
    }
}
