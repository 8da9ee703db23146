//! `Admin.QueryLog`: the audit log, filtered and paged, answered by the store's query from
//! one read transaction (see `store::audit`).

use std::sync::Arc;

use flag_proto::{LogCursor, LogEnvironments, LogQuery, v1};
use tonic::Request;

use crate::auth::Caller;
use crate::principal::Principal;
use crate::state::State;
use crate::status::RequestError;
use crate::store::{AuditQuery, AuditStart};

/// Answers a `QueryLog` request; a bad filter is refused, naming the field, before the store
/// is read.
pub(crate) async fn query(
    state: &Arc<State>,
    request: Request<v1::QueryLogRequest>,
) -> Result<v1::QueryLogResponse, RequestError> {
    // Which environments the caller may read (the access check let the call through).
    let readable =
        Caller::of(&request).and_then(Caller::principal).and_then(Principal::readable_environments);
    let request = request.into_inner();
    let LogQuery { environments, flags, actor, since_ms, until_ms, actions, page_size, cursor } =
        flag_proto::log_request_from_proto(request)?;
    // A cursor continues the query it came from: its environments are the ones read (the
    // request checked that a one-environment query's cursor is that environment's).
    let start = match (cursor, environments) {
        (Some(cursor), _) => AuditStart::After(
            cursor.positions().map(|(environment, at)| (environment.to_owned(), at)).collect(),
        ),
        (None, LogEnvironments::One(environment)) => AuditStart::Newest(environment),
        (None, LogEnvironments::All) => AuditStart::NewestOfAll,
    };
    let query = AuditQuery {
        start,
        flags,
        actor,
        since_ms,
        until_ms,
        actions,
        page_size: page_size as usize,
        readable,
    };
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || store.audit(&query)).await??;
    let next = LogCursor::new(page.next);
    Ok(flag_proto::log_response(&page.entries, next.as_ref()))
}
