//! Environments on the wire: the summary a server gives of each, and the requests that
//! create, list, describe and delete them.

use flag_core as core;

use super::admin::Authorship;
use super::records::{applied_change_from_proto, history_entry_from_proto};
use super::{InvalidMessage, Path};
use crate::v1;

/// An environment as `DescribeEnvironment` tells of it: its summary and who streams it.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentInfo {
    /// Size, revision, last change and lifecycle.
    pub summary: core::EnvironmentSummary,
    /// Names of the SDKs connected to it now (empty in a list).
    pub connected: Vec<String>,
}

/// What a `DeleteEnvironment` did.
#[derive(Clone, Debug, PartialEq)]
pub struct Deleted {
    /// The environment's last revision.
    pub revision: u64,
    /// The flags and segments deleted with it.
    pub deleted: Vec<core::AppliedChange>,
    /// SDKs that were connected, whose streams were ended.
    pub disconnected: Vec<String>,
}

/// `CreateEnvironment` of `name`, empty or a copy of `from`.
pub fn create_environment_request(
    name: &str,
    from: Option<&str>,
    by: Authorship,
) -> v1::CreateEnvironmentRequest {
    v1::CreateEnvironmentRequest {
        name: name.to_owned(),
        from: from.unwrap_or_default().to_owned(),
        change: Some(by.into()),
    }
}

/// `DeleteEnvironment` of `name`.
pub fn delete_environment_request(name: &str, force: bool, by: Authorship) -> v1::DeleteEnvironmentRequest {
    v1::DeleteEnvironmentRequest { name: name.to_owned(), force, change: Some(by.into()) }
}

/// The answer to a `DeleteEnvironment`.
pub fn delete_environment_response(deleted: &Deleted) -> v1::DeleteEnvironmentResponse {
    let Deleted { revision, deleted, disconnected } = deleted;
    v1::DeleteEnvironmentResponse {
        revision: *revision,
        deleted: deleted.iter().map(v1::AppliedChange::from).collect(),
        disconnected_sdks: disconnected.clone(),
    }
}

impl TryFrom<v1::DeleteEnvironmentResponse> for Deleted {
    type Error = InvalidMessage;

    fn try_from(response: v1::DeleteEnvironmentResponse) -> Result<Self, Self::Error> {
        let v1::DeleteEnvironmentResponse { revision, deleted, disconnected_sdks } = response;
        let path = Path::Root("deleted");
        let deleted = deleted
            .into_iter()
            .enumerate()
            .map(|(index, change)| applied_change_from_proto(change, &path.index(index)))
            .collect::<Result<_, _>>()?;
        Ok(Deleted { revision, deleted, disconnected: disconnected_sdks })
    }
}

impl From<&EnvironmentInfo> for v1::Environment {
    fn from(info: &EnvironmentInfo) -> Self {
        let EnvironmentInfo { summary, connected } = info;
        let core::EnvironmentSummary {
            name,
            revision,
            flags,
            segments,
            last_change,
            created,
            copied_from,
            deleted,
        } = summary;
        let (copied_from, copied_from_revision) = match copied_from {
            Some(core::CopiedFrom { environment, revision }) => (environment.clone(), *revision),
            None => (String::new(), 0),
        };
        v1::Environment {
            name: name.clone(),
            revision: *revision,
            flag_count: *flags,
            segment_count: *segments,
            last_change: last_change.as_ref().map(v1::HistoryEntry::from),
            created: created.as_ref().map(stamp_to_proto),
            copied_from,
            copied_from_revision,
            deleted: deleted.as_ref().map(stamp_to_proto),
            connected_sdks: connected.clone(),
        }
    }
}

impl TryFrom<v1::Environment> for EnvironmentInfo {
    type Error = InvalidMessage;

    fn try_from(environment: v1::Environment) -> Result<Self, Self::Error> {
        environment_from_proto(environment, &Path::Root("environment"))
    }
}

/// The environments of a `ListEnvironments` answer.
pub fn environments_from_proto(
    response: v1::ListEnvironmentsResponse,
) -> Result<Vec<EnvironmentInfo>, InvalidMessage> {
    let v1::ListEnvironmentsResponse { environments } = response;
    let path = Path::Root("environments");
    environments
        .into_iter()
        .enumerate()
        .map(|(index, environment)| environment_from_proto(environment, &path.index(index)))
        .collect()
}

fn environment_from_proto(
    environment: v1::Environment,
    path: &Path<'_>,
) -> Result<EnvironmentInfo, InvalidMessage> {
    let v1::Environment {
        name,
        revision,
        flag_count,
        segment_count,
        last_change,
        created,
        copied_from,
        copied_from_revision,
        deleted,
        connected_sdks,
    } = environment;
    let last_change =
        last_change.map(|entry| history_entry_from_proto(entry, &path.field("last_change"))).transpose()?;
    let copied_from = (!copied_from.is_empty())
        .then_some(core::CopiedFrom { environment: copied_from, revision: copied_from_revision });
    Ok(EnvironmentInfo {
        summary: core::EnvironmentSummary {
            name,
            revision,
            flags: flag_count,
            segments: segment_count,
            last_change,
            created: created.map(stamp_from_proto),
            copied_from,
            deleted: deleted.map(stamp_from_proto),
        },
        connected: connected_sdks,
    })
}

fn stamp_to_proto(stamp: &core::Stamp) -> v1::EnvironmentStamp {
    let core::Stamp { actor, reason, timestamp_ms } = stamp;
    v1::EnvironmentStamp { actor: actor.clone(), reason: reason.clone(), timestamp_ms: *timestamp_ms }
}

fn stamp_from_proto(stamp: v1::EnvironmentStamp) -> core::Stamp {
    let v1::EnvironmentStamp { actor, reason, timestamp_ms } = stamp;
    core::Stamp { actor, reason, timestamp_ms }
}
