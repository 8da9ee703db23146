//! What each Admin call does to which environments, read from its request: all an access
//! check needs to know of a call, so flagd decides who may make it without naming a
//! message's fields.
//!
//! Every request is destructured without `..`: a field added to a request (a second
//! environment, say) breaks the build here until its reach says what the call touches.

use super::environment_or_default;
use crate::v1;

/// What a call does to one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Touch {
    /// Reads its flags, segments, history, bookmarks or connected SDKs.
    Read,
    /// Changes its flags or segments (or names one of its revisions: a bookmark).
    Write,
    /// Creates or deletes the environment itself.
    Manage,
}

/// What an Admin call reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// These environments, each read or written: one for most calls, two for a diff (both
    /// read) and a promote (one read, one written). Empty names are already the default.
    Environments(Vec<(Touch, String)>),
    /// The whole store, every environment at once (a backup).
    Store,
}

impl Reach {
    fn one(touch: Touch, environment: &str) -> Reach {
        Reach::Environments(vec![(touch, environment_or_default(environment).to_owned())])
    }
}

/// An Admin request, as what it reaches.
pub trait Reaches {
    /// The environments the call reads and writes.
    fn reach(&self) -> Reach;
}

/// Requests that read or write the one environment they name.
macro_rules! one_environment {
    ($touch:ident: $($request:ident { $($field:ident),* })*) => {
        $(
            impl Reaches for v1::$request {
                fn reach(&self) -> Reach {
                    let v1::$request { environment, $($field: _),* } = self;
                    Reach::one(Touch::$touch, environment)
                }
            }
        )*
    };
}

one_environment! { Write:
    PutFlagRequest { flag, expected_version, change }
    SetRolloutRequest { key, percent, dark_percent, expected_version, change, create_if_missing }
    ServeVariantRequest { key, variant, expected_version, change }
    KillRequest { key, change, wait_ms }
    ReviveRequest { key, expected_version, change }
    DeleteFlagRequest { key, expected_version, change }
    RollbackRequest { key, to_version, expected_version, change, allow_revive }
    PutSegmentRequest { segment, change }
    DeleteSegmentRequest { key, change }
    ApplyRequest { flags, segments, prune, dry_run, expected_revision, change }
    PointInTimeRestoreRequest { point, allow_revive, dry_run, expected_revision, change }
    CreateBookmarkRequest { name, change }
    StartRolloutRequest { key, plan, change }
    ChangeRolloutRequest { key, change }
}

one_environment! { Read:
    GetFlagRequest { key }
    ListFlagsRequest { prefix, tag }
    FlagHistoryRequest { key, page_size, before_version }
    EnvironmentHistoryRequest { page_size, before_revision }
    ListSegmentsRequest {}
    WaitForAcksRequest { revision, wait_ms }
    ListBookmarksRequest {}
    EvaluateRequest { key, targeting_key, attributes }
    GetRolloutRequest { key }
    ListRolloutsRequest {}
}

impl Reaches for v1::DiffRequest {
    fn reach(&self) -> Reach {
        let v1::DiffRequest { from, to, keys: _ } = self;
        // A missing side is refused by the call itself; until then it reads the default.
        let environment = |side: &Option<v1::DiffSide>| {
            let environment = side.as_ref().map_or("", |v1::DiffSide { environment, point: _ }| environment);
            environment_or_default(environment).to_owned()
        };
        Reach::Environments(vec![(Touch::Read, environment(from)), (Touch::Read, environment(to))])
    }
}

impl Reaches for v1::PromoteRequest {
    fn reach(&self) -> Reach {
        let v1::PromoteRequest {
            from_environment,
            to_environment,
            keys: _,
            all: _,
            except: _,
            only: _,
            dry_run: _,
            expected_revision: _,
            change: _,
        } = self;
        Reach::Environments(vec![
            (Touch::Read, environment_or_default(from_environment).to_owned()),
            (Touch::Write, environment_or_default(to_environment).to_owned()),
        ])
    }
}

impl Reaches for v1::CreateEnvironmentRequest {
    fn reach(&self) -> Reach {
        let v1::CreateEnvironmentRequest { name, from, change: _ } = self;
        let mut touched = vec![(Touch::Manage, name.clone())];
        if !from.is_empty() {
            touched.push((Touch::Read, from.clone()));
        }
        Reach::Environments(touched)
    }
}

impl Reaches for v1::DeleteEnvironmentRequest {
    fn reach(&self) -> Reach {
        let v1::DeleteEnvironmentRequest { name, force: _, change: _ } = self;
        Reach::Environments(vec![(Touch::Manage, name.clone())])
    }
}

impl Reaches for v1::DescribeEnvironmentRequest {
    fn reach(&self) -> Reach {
        let v1::DescribeEnvironmentRequest { name } = self;
        Reach::Environments(vec![(Touch::Read, name.clone())])
    }
}

/// A list reaches no one environment: it is answered with those the caller may read.
impl Reaches for v1::ListEnvironmentsRequest {
    fn reach(&self) -> Reach {
        let v1::ListEnvironmentsRequest { include_deleted: _ } = self;
        Reach::Environments(Vec::new())
    }
}

/// All environments reach no one: the answer holds those the caller may read.
impl Reaches for v1::QueryLogRequest {
    fn reach(&self) -> Reach {
        let v1::QueryLogRequest {
            environment,
            all_environments,
            flags: _,
            actor: _,
            since_unix_ms: _,
            until_unix_ms: _,
            actions: _,
            page_size: _,
            cursor: _,
        } = self;
        if *all_environments {
            return Reach::Environments(Vec::new());
        }
        Reach::one(Touch::Read, environment)
    }
}

impl Reaches for v1::BackupRequest {
    fn reach(&self) -> Reach {
        let v1::BackupRequest {} = self;
        Reach::Store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environments(reach: Reach) -> Vec<(Touch, String)> {
        match reach {
            Reach::Environments(environments) => environments,
            Reach::Store => panic!("the whole store"),
        }
    }

    #[test]
    fn a_write_reaches_its_environment_and_an_empty_one_is_the_default() {
        let kill = v1::KillRequest { environment: "staging".into(), ..Default::default() };
        assert_eq!(environments(kill.reach()), [(Touch::Write, "staging".to_owned())]);
        let list = v1::ListFlagsRequest::default();
        assert_eq!(environments(list.reach()), [(Touch::Read, "production".to_owned())]);
    }

    #[test]
    fn a_diff_reads_both_sides_and_a_promote_reads_one_and_writes_the_other() {
        let side = |environment: &str| Some(v1::DiffSide { environment: environment.into(), point: None });
        let diff = v1::DiffRequest { from: side("staging"), to: side(""), keys: vec![] };
        assert_eq!(
            environments(diff.reach()),
            [(Touch::Read, "staging".to_owned()), (Touch::Read, "production".to_owned())]
        );
        let promote = v1::PromoteRequest {
            from_environment: "staging".into(),
            to_environment: "production".into(),
            ..Default::default()
        };
        assert_eq!(
            environments(promote.reach()),
            [(Touch::Read, "staging".to_owned()), (Touch::Write, "production".to_owned())]
        );
        assert_eq!(v1::BackupRequest {}.reach(), Reach::Store);
    }
}
