//! `Admin.CreateEnvironment`, `ListEnvironments`, `DescribeEnvironment` and
//! `DeleteEnvironment`: environments exist once created (see `store::environments`).

use std::sync::Arc;

use flag_core::AppliedChange;
use flag_proto::{Deleted, EnvironmentInfo, v1};
use tonic::Request;
use tracing::info;

use crate::state::State;
use crate::status::RequestError;
use crate::store::Applied;
use crate::write_client::{Client, Unwritten, unwritten};

/// Creates an environment, empty or a copy of another.
pub(crate) async fn create(
    state: &Arc<State>,
    request: Request<v1::CreateEnvironmentRequest>,
) -> Result<v1::Environment, RequestError> {
    let client = Client::of(&request);
    let v1::CreateEnvironmentRequest { name, from, change } = request.into_inner();
    let meta = client.meta(change.into());
    let (wanted, present) = client.still_wanted();
    let store = state.store.clone();
    let target = name.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let from = (!from.is_empty()).then_some(from.as_str());
        if store.create_environment(&target, from, &meta, &wanted)?.is_none() {
            return Err(Unwritten::Abandoned);
        }
        Ok(store.environment_summary(&target).map_err(crate::store::WriteError::from)?)
    })
    .await?
    .map_err(|error| unwritten(error, &name, "create_environment"))?;
    drop(present);
    metrics::counter!("flagd_writes_total", "operation" => "create_environment").increment(1);
    info!(environment = %name, flags = summary.flags, copied_from = ?summary.copied_from, "environment created");
    Ok(v1::Environment::from(&EnvironmentInfo { summary, connected: Vec::new() }))
}

/// Every environment, by name.
pub(crate) async fn list(
    state: &Arc<State>,
    request: v1::ListEnvironmentsRequest,
) -> Result<v1::ListEnvironmentsResponse, RequestError> {
    let v1::ListEnvironmentsRequest { include_deleted } = request;
    let store = state.store.clone();
    let summaries =
        tokio::task::spawn_blocking(move || store.environment_summaries(include_deleted)).await??;
    let environments = summaries
        .into_iter()
        .map(|summary| v1::Environment::from(&EnvironmentInfo { summary, connected: Vec::new() }))
        .collect();
    Ok(v1::ListEnvironmentsResponse { environments })
}

/// One environment, with the SDKs streaming it.
pub(crate) async fn describe(
    state: &Arc<State>,
    request: v1::DescribeEnvironmentRequest,
) -> Result<v1::Environment, RequestError> {
    let v1::DescribeEnvironmentRequest { name } = request;
    let store = state.store.clone();
    let target = name.clone();
    let summary = tokio::task::spawn_blocking(move || store.environment_summary(&target)).await??;
    let connected = state.connections.connected(&name);
    Ok(v1::Environment::from(&EnvironmentInfo { summary, connected }))
}

/// Deletes an environment: refused while SDKs stream it, unless forced; then their streams
/// end with NOT_FOUND (they keep the flags they have, rather than all switching to defaults).
pub(crate) async fn delete(
    state: &Arc<State>,
    request: Request<v1::DeleteEnvironmentRequest>,
) -> Result<v1::DeleteEnvironmentResponse, RequestError> {
    let client = Client::of(&request);
    let v1::DeleteEnvironmentRequest { name, force, change } = request.into_inner();
    let connected = state.connections.connected(&name);
    if !connected.is_empty() && !force {
        return Err(RequestError::EnvironmentInUse { environment: name, connected });
    }
    let meta = client.meta(change.into());
    let (wanted, present) = client.still_wanted();
    let meta = crate::store::WriteMeta {
        reason: match meta.reason.as_str() {
            "" => "environment deleted".to_owned(),
            theirs => format!("environment deleted: {theirs}"),
        },
        ..meta
    };
    let (task_state, target) = (Arc::clone(state), name.clone());
    let applied = tokio::task::spawn_blocking(move || {
        let Some(applied) = task_state.store.delete_environment(&target, &meta, &wanted)? else {
            return Err(Unwritten::Abandoned);
        };
        // After the commit, whatever the client does now: its streams must not wait for a
        // change that will never come.
        task_state.hub.end(&target);
        Ok(applied)
    })
    .await?
    .map_err(|error| unwritten(error, &name, "delete_environment"))?;
    drop(present);
    let Applied { revision, changes, .. } = applied;
    metrics::counter!("flagd_writes_total", "operation" => "delete_environment").increment(1);
    info!(environment = %name, revision, deleted = changes.len(), disconnected = connected.len(), "environment deleted");
    let deleted: Vec<AppliedChange> = changes;
    Ok(flag_proto::delete_environment_response(&Deleted { revision, deleted, disconnected: connected }))
}
