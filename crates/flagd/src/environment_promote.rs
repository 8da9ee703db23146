//! `Admin.Promote`: chosen parts of chosen flags from one environment to another, through
//! the store's promote (one apply on the target), then published like an apply.

use std::sync::Arc;

use flag_proto::{Part, PromoteAsk, environment_or_default, v1};
use tonic::Request;
use tracing::info;

use crate::state::State;
use crate::status::RequestError;
use crate::store::{Parts, Promote, Promoted};
use crate::write_client::{Client, Unwritten, unwritten};

/// Promotes what `request` asks for; see the module docs.
pub(crate) async fn promote(
    state: &Arc<State>,
    request: Request<v1::PromoteRequest>,
) -> Result<v1::PromoteResponse, RequestError> {
    let client = Client::of(&request);
    let (ask, change) = flag_proto::promote_request_from_proto(request.into_inner())?;
    // `all` is the empty key list (the request refuses both and neither).
    let PromoteAsk { from, to, keys, all: _, except, only, dry_run, expected_revision } = ask;
    let environment = environment_or_default(&to).to_owned();
    let promote = Promote {
        from: environment_or_default(&from).to_owned(),
        keys,
        except,
        parts: parts(&only),
        dry_run,
        expected_revision,
    };
    let meta = client.meta(change);
    let (wanted, present) = client.still_wanted();
    let (state, target) = (Arc::clone(state), environment.clone());
    let promoted = tokio::task::spawn_blocking(move || {
        let Some(promoted) = state.store.promote_if(&target, &promote, &meta, &wanted)? else {
            return Err(Unwritten::Abandoned);
        };
        Ok(promoted)
    })
    .await?
    .map_err(|error| unwritten(error, &environment, "promote"))?;
    drop(present);
    let Promoted { from_revision, applied, segments, kill_state_kept } = promoted;
    if applied.last.is_some() {
        metrics::counter!("flagd_writes_total", "operation" => "promote").increment(1);
        info!(%environment, from_revision, changes = applied.changes.len(), revision = applied.revision, "promote committed");
    }
    let applied = flag_proto::apply_response(applied.revision, &applied.changes, applied.kept_killed);
    Ok(flag_proto::promote_response(from_revision, applied, segments, kill_state_kept))
}

/// The parts named (everything but the kill state when none is).
fn parts(only: &[Part]) -> Parts {
    if only.is_empty() {
        return Parts::default();
    }
    Parts {
        rules: only.contains(&Part::Rules),
        default: only.contains(&Part::Default),
        variants: only.contains(&Part::Variants),
        prerequisites: only.contains(&Part::Prerequisites),
        metadata: only.contains(&Part::Metadata),
    }
}
