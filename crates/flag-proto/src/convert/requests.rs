//! The Admin requests a client sends, from domain values: flagctl and the SDK's test server
//! say what they want (a key, a flag, a wait) and never spell out a request message, so a
//! field added to one is filled in here once.

use std::time::Duration;

use flag_core as core;

use super::admin::Authorship;
use super::answer::attribute_to_proto;
use super::records::millis;
use super::{InvalidMessage, Path};
use crate::v1;

/// A new rollout for `SetRollout`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rollout {
    /// Percentage that gets `on`.
    pub percent: f64,
    /// Percentage that runs the new path (on + dark); kept as it is when `None`.
    pub dark_percent: Option<f64>,
    /// Create an on/dark/off flag when the key is missing.
    pub create_if_missing: bool,
}

/// What a rollback restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restore {
    /// The version whose content to restore; the one before the current when `None`.
    pub to_version: Option<u64>,
    /// Restore the version's `enabled` even when that revives a killed flag.
    pub allow_revive: bool,
}

/// How an apply runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyPlan {
    /// Also delete the live flags and segments the set does not have.
    pub prune: bool,
    /// Plan and validate, commit nothing.
    pub dry_run: bool,
    /// Refuse unless the environment is at this revision.
    pub expected_revision: Option<u64>,
}

/// An earlier state of an environment: what a restore brings back, or a side of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Point {
    /// The state at this revision.
    Revision(u64),
    /// The state at the last revision committed at or before this time (ms since the Unix
    /// epoch).
    At(i64),
    /// The state at the revision a bookmark names.
    Bookmark(String),
}

/// How a point-in-time restore runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestorePlan {
    /// Switch back on the flags killed since the point.
    pub allow_revive: bool,
    /// Plan and validate, commit nothing.
    pub dry_run: bool,
    /// Refuse unless the environment is at this revision.
    pub expected_revision: Option<u64>,
}

/// Builds the Admin requests for one environment ("production" when empty, as the server
/// reads it).
#[derive(Clone, Copy, Debug)]
pub struct Requests<'a> {
    environment: &'a str,
}

impl<'a> Requests<'a> {
    /// Requests for `environment`.
    pub fn new(environment: &'a str) -> Self {
        Requests { environment }
    }

    pub(super) fn environment(&self) -> String {
        self.environment.to_owned()
    }

    /// `GetFlag`.
    pub fn get_flag(&self, key: &str) -> v1::GetFlagRequest {
        v1::GetFlagRequest { environment: self.environment(), key: key.to_owned() }
    }

    /// `ListFlags`: the flags whose key starts with `prefix` and that carry `tag` (empty:
    /// any prefix, any tag).
    pub fn list_flags(&self, prefix: &str, tag: &str) -> v1::ListFlagsRequest {
        v1::ListFlagsRequest {
            environment: self.environment(),
            prefix: prefix.to_owned(),
            tag: tag.to_owned(),
        }
    }

    /// `ListSegments`.
    pub fn list_segments(&self) -> v1::ListSegmentsRequest {
        v1::ListSegmentsRequest { environment: self.environment() }
    }

    /// `FlagHistory`: up to `page_size` versions of `key` before `before_version` (the newest
    /// when 0).
    pub fn flag_history(&self, key: &str, page_size: u32, before_version: u64) -> v1::FlagHistoryRequest {
        v1::FlagHistoryRequest {
            environment: self.environment(),
            key: key.to_owned(),
            page_size,
            before_version,
        }
    }

    /// `EnvironmentHistory`: up to `page_size` entries before `before_revision` (the newest
    /// when 0).
    pub fn environment_history(&self, page_size: u32, before_revision: u64) -> v1::EnvironmentHistoryRequest {
        v1::EnvironmentHistoryRequest { environment: self.environment(), page_size, before_revision }
    }

    /// `Evaluate` of `key` for a context.
    pub fn evaluate(
        &self,
        key: &str,
        targeting_key: &str,
        attributes: &[(&str, core::AttrValue<'_>)],
    ) -> v1::EvaluateRequest {
        v1::EvaluateRequest {
            environment: self.environment(),
            key: key.to_owned(),
            targeting_key: targeting_key.to_owned(),
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), attribute_to_proto(*value)))
                .collect(),
        }
    }

    /// `PutFlag`.
    pub fn put_flag(
        &self,
        flag: &core::Flag,
        expected_version: Option<u64>,
        by: Authorship,
    ) -> v1::PutFlagRequest {
        v1::PutFlagRequest {
            environment: self.environment(),
            flag: Some(v1::Flag::from(flag)),
            expected_version,
            change: Some(by.into()),
        }
    }

    /// `PutSegment`: creates or replaces the segment.
    pub fn put_segment(&self, segment: &core::Segment, by: Authorship) -> v1::PutSegmentRequest {
        v1::PutSegmentRequest {
            environment: self.environment(),
            segment: Some(v1::Segment::from(segment)),
            change: Some(by.into()),
        }
    }

    /// `DeleteSegment`.
    pub fn delete_segment(&self, key: &str, by: Authorship) -> v1::DeleteSegmentRequest {
        v1::DeleteSegmentRequest {
            environment: self.environment(),
            key: key.to_owned(),
            change: Some(by.into()),
        }
    }

    /// `SetRollout`.
    pub fn set_rollout(
        &self,
        key: &str,
        rollout: Rollout,
        expected_version: Option<u64>,
        by: Authorship,
    ) -> v1::SetRolloutRequest {
        let Rollout { percent, dark_percent, create_if_missing } = rollout;
        v1::SetRolloutRequest {
            environment: self.environment(),
            key: key.to_owned(),
            percent,
            dark_percent,
            expected_version,
            change: Some(by.into()),
            create_if_missing,
        }
    }

    /// `ServeVariant`.
    pub fn serve_variant(
        &self,
        key: &str,
        variant: &str,
        expected_version: Option<u64>,
        by: Authorship,
    ) -> v1::ServeVariantRequest {
        v1::ServeVariantRequest {
            environment: self.environment(),
            key: key.to_owned(),
            variant: variant.to_owned(),
            expected_version,
            change: Some(by.into()),
        }
    }

    /// `Kill`, waiting up to `wait` for acknowledgements (zero: answer at once).
    pub fn kill(&self, key: &str, wait: Duration, by: Authorship) -> v1::KillRequest {
        v1::KillRequest {
            environment: self.environment(),
            key: key.to_owned(),
            change: Some(by.into()),
            wait_ms: millis(wait),
        }
    }

    /// `Revive`.
    pub fn revive(&self, key: &str, expected_version: Option<u64>, by: Authorship) -> v1::ReviveRequest {
        v1::ReviveRequest {
            environment: self.environment(),
            key: key.to_owned(),
            expected_version,
            change: Some(by.into()),
        }
    }

    /// `DeleteFlag`.
    pub fn delete_flag(
        &self,
        key: &str,
        expected_version: Option<u64>,
        by: Authorship,
    ) -> v1::DeleteFlagRequest {
        v1::DeleteFlagRequest {
            environment: self.environment(),
            key: key.to_owned(),
            expected_version,
            change: Some(by.into()),
        }
    }

    /// `Rollback`.
    pub fn rollback(
        &self,
        key: &str,
        restore: Restore,
        expected_version: Option<u64>,
        by: Authorship,
    ) -> v1::RollbackRequest {
        let Restore { to_version, allow_revive } = restore;
        v1::RollbackRequest {
            environment: self.environment(),
            key: key.to_owned(),
            to_version,
            expected_version,
            change: Some(by.into()),
            allow_revive,
        }
    }

    /// `Apply` of `set`.
    pub fn apply(&self, set: &core::FlagSet, plan: ApplyPlan, by: Authorship) -> v1::ApplyRequest {
        let core::FlagSet { flags, segments } = set;
        let ApplyPlan { prune, dry_run, expected_revision } = plan;
        v1::ApplyRequest {
            environment: self.environment(),
            flags: flags.iter().map(v1::Flag::from).collect(),
            segments: segments.iter().map(v1::Segment::from).collect(),
            prune,
            dry_run,
            expected_revision,
            change: Some(by.into()),
        }
    }
}

impl Requests<'_> {
    /// `CreateBookmark` of the environment's current revision.
    pub fn create_bookmark(&self, name: &str, by: Authorship) -> v1::CreateBookmarkRequest {
        v1::CreateBookmarkRequest {
            environment: self.environment(),
            name: name.to_owned(),
            change: Some(by.into()),
        }
    }

    /// `ListBookmarks`.
    pub fn list_bookmarks(&self) -> v1::ListBookmarksRequest {
        v1::ListBookmarksRequest { environment: self.environment() }
    }

    /// `PointInTimeRestore` to `point`.
    pub fn point_in_time_restore(
        &self,
        point: Point,
        plan: RestorePlan,
        by: Authorship,
    ) -> v1::PointInTimeRestoreRequest {
        let RestorePlan { allow_revive, dry_run, expected_revision } = plan;
        let point = match point {
            Point::Revision(revision) => v1::point_in_time_restore_request::Point::ToRevision(revision),
            Point::At(ms) => v1::point_in_time_restore_request::Point::AtUnixMs(ms),
            Point::Bookmark(name) => v1::point_in_time_restore_request::Point::Bookmark(name),
        };
        v1::PointInTimeRestoreRequest {
            environment: self.environment(),
            point: Some(point),
            allow_revive,
            dry_run,
            expected_revision,
            change: Some(by.into()),
        }
    }
}

/// `PointInTimeRestore`'s request as the server reads it: the point and the plan.
pub fn restore_request_from_proto(
    request: v1::PointInTimeRestoreRequest,
) -> Result<(String, Point, RestorePlan, Authorship), InvalidMessage> {
    let v1::PointInTimeRestoreRequest {
        environment,
        point,
        allow_revive,
        dry_run,
        expected_revision,
        change,
    } = request;
    let point = match point {
        Some(v1::point_in_time_restore_request::Point::ToRevision(revision)) => Point::Revision(revision),
        Some(v1::point_in_time_restore_request::Point::AtUnixMs(ms)) => Point::At(ms),
        Some(v1::point_in_time_restore_request::Point::Bookmark(name)) => Point::Bookmark(name),
        None => return Err(Path::Root("point").invalid("to_revision, at_unix_ms or bookmark")),
    };
    Ok((environment, point, RestorePlan { allow_revive, dry_run, expected_revision }, change.into()))
}

/// `Backup` (of the whole store: no environment).
pub fn backup_request() -> v1::BackupRequest {
    v1::BackupRequest {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flag_set_from_proto;

    #[test]
    fn requests_carry_the_domain_values_they_were_given() {
        let requests = Requests::new("staging");
        let set = core::FlagSet { flags: vec![core::Flag::rollout("chat", 10.0).unwrap()], segments: vec![] };
        let by = Authorship { actor: "ana".into(), reason: "launch".into() };
        let plan = ApplyPlan { prune: true, dry_run: false, expected_revision: Some(4) };
        let v1::ApplyRequest { environment, flags, segments, prune, dry_run, expected_revision, change } =
            requests.apply(&set, plan, by.clone());
        assert_eq!(
            (environment.as_str(), prune, dry_run, expected_revision),
            ("staging", true, false, Some(4))
        );
        assert_eq!(flag_set_from_proto(flags, segments).unwrap(), set);
        assert_eq!(Authorship::from(change), by);

        // A wait too long for the wire's milliseconds saturates rather than wrapping.
        let kill = requests.kill("chat", Duration::from_secs(u64::MAX), by);
        assert_eq!(kill.wait_ms, u32::MAX);
        let attributes = [("country", core::AttrValue::Str("NZ")), ("age", core::AttrValue::Number(42.0))];
        let evaluate = requests.evaluate("chat", "user-1", &attributes);
        let mut read = crate::attributes_from_proto(&evaluate.attributes);
        read.sort_by_key(|(name, _)| *name);
        assert_eq!(read, [("age", core::AttrValue::Number(42.0)), ("country", core::AttrValue::Str("NZ"))]);
    }
}
