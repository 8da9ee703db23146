//! `Admin.Diff`: two environment sides read from one read transaction (a time or a bookmark
//! is first resolved to its revision), compared by flag-core's diff.

use std::sync::Arc;

use flag_proto::{Side, environment_or_default, v1};

use crate::state::State;
use crate::status::RequestError;
use crate::store::{Store, WriteError};

/// Answers a `Diff` request; see the module docs.
pub(crate) async fn diff(
    state: &Arc<State>,
    request: v1::DiffRequest,
) -> Result<v1::DiffResponse, RequestError> {
    let (from, to, keys) = flag_proto::diff_request_from_proto(request)?;
    let (from_environment, from_revision) = resolved(&state.store, from).await?;
    let (to_environment, to_revision) = resolved(&state.store, to).await?;
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || -> Result<_, WriteError> {
        let (from, to) = store.sides((&from_environment, from_revision), (&to_environment, to_revision))?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let diff = flag_core::diff(&from.set, &to.set, &keys);
        Ok(flag_proto::diff_response(from.revision, to.revision, &diff))
    })
    .await??;
    Ok(answer)
}

/// The side's environment and revision (`None`: now).
async fn resolved(store: &Store, side: Side) -> Result<(String, Option<u64>), RequestError> {
    let environment = environment_or_default(&side.environment).to_owned();
    let revision = match side.point {
        None => None,
        Some(point) => Some(crate::points::revision(store, &environment, point).await?),
    };
    Ok((environment, revision))
}
