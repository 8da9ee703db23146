//! What both versions of `flagd.evaluation` do for a call, whatever its message types: find
//! the environment (the selector) and check the caller may read it, evaluate, type the value,
//! and say failures with the gRPC codes flagd's providers read — `NOT_FOUND` (no such
//! flag), `INVALID_ARGUMENT` (type mismatch), `UNKNOWN` (any other evaluation error).

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::Caller;
use crate::openfeature::answer::{Asked, Resolved, Typed, Unresolved, resolve, typed};
use crate::openfeature::context::OwnedContext;
use crate::openfeature::current::{Current, Currents};
use crate::openfeature::selector;
use crate::openfeature::source::FlagSource;
use crate::status::RequestError;

/// A resolution: the typed value (none: the caller's default), the variant and the reason.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) value: Option<Typed>,
    pub(crate) variant: Option<String>,
    pub(crate) reason: &'static str,
}

/// The environment a call reads, checked against its caller, and its current flags.
pub(crate) async fn current_of<S: FlagSource, T>(
    source: &Arc<S>,
    request: &Request<T>,
    field: &str,
) -> Result<(String, Arc<Current>), Status> {
    let environment = selector::of_call(request.metadata(), field)?;
    let caller = Caller::of(request)
        .ok_or_else(|| RequestError::Unauthenticated("the call was not authenticated".into()))?;
    if let Some(principal) = caller.principal() {
        principal.may_follow(&environment).map_err(RequestError::from)?;
    }
    let following = Currents::follow(source, &environment).await?;
    let current = following
        .borrow()
        .clone()
        .ok_or(RequestError::EnvironmentDeleted { environment: environment.clone() })?;
    Ok((environment, current))
}

/// Resolves `key` as `asked` for a call carrying `context`.
pub(crate) async fn resolve_typed<S: FlagSource, T>(
    source: &Arc<S>,
    request: &Request<T>,
    key: &str,
    context: Option<prost_types::Struct>,
    asked: Asked,
) -> Result<Answer, Status> {
    let (_, current) = current_of(source, request, "").await?;
    let context = OwnedContext::from_struct(context);
    let Resolved { value, variant, reason } =
        context.with(|ctx| resolve(&current, key, ctx)).map_err(status)?;
    let value = value.map(|value| typed(key, value, asked)).transpose().map_err(status)?;
    metrics::counter!("flagd_openfeature_evaluations_total", "api" => "rpc").increment(1);
    Ok(Answer { value, variant, reason })
}

/// The status a provider maps back to an OpenFeature error code.
pub(crate) fn status(unresolved: Unresolved) -> Status {
    match unresolved {
        Unresolved::NotFound(_) => Status::not_found(unresolved.to_string()),
        Unresolved::TypeMismatch(_) => Status::invalid_argument(unresolved.to_string()),
        Unresolved::General(_) => Status::unknown(unresolved.to_string()),
    }
}
