//! `Admin.PointInTimeRestore`: an environment made what it was at an earlier revision or
//! time, through the store's restore (one apply), then published like an apply.

use std::sync::Arc;

use flag_proto::{RestorePlan, environment_or_default, v1};
use tonic::Request;
use tracing::info;

use crate::state::State;
use crate::status::RequestError;
use crate::store::{Restore, Restored};
use crate::write_client::{Client, Unwritten, unwritten};

/// Restores the environment `request` names; see the module docs.
pub(crate) async fn restore(
    state: &Arc<State>,
    request: Request<v1::PointInTimeRestoreRequest>,
) -> Result<v1::PointInTimeRestoreResponse, RequestError> {
    let client = Client::of(&request);
    let (environment, point, plan, change) = flag_proto::restore_request_from_proto(request.into_inner())?;
    let environment = environment_or_default(&environment).to_owned();
    let meta = client.meta(change);
    let (wanted, present) = client.still_wanted();
    let RestorePlan { allow_revive, dry_run, expected_revision } = plan;
    let to_revision = crate::points::revision(&state.store, &environment, point).await?;
    let (state, target) = (Arc::clone(state), environment.clone());
    let restored = tokio::task::spawn_blocking(move || {
        let restore = Restore { to_revision, allow_revive, dry_run, expected_revision };
        let Some(restored) = state.store.restore_if(&target, restore, &meta, &wanted)? else {
            return Err(Unwritten::Abandoned);
        };
        Ok(restored)
    })
    .await?
    .map_err(|error| unwritten(error, &environment, "restore"))?;
    drop(present);
    let Restored { to_revision, to_committed_ms, applied } = restored;
    if applied.last.is_some() {
        metrics::counter!("flagd_writes_total", "operation" => "restore").increment(1);
        info!(%environment, to_revision, changes = applied.changes.len(), revision = applied.revision, "restore committed");
    }
    let applied = flag_proto::apply_response(applied.revision, &applied.changes, applied.kept_killed);
    Ok(flag_proto::restore_response(to_revision, to_committed_ms, applied))
}
