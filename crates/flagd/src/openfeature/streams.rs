//! Opening an OpenFeature stream: the call's environment, its caller's right to follow it
//! (kept watch over, as for our own streams), and the environment's follower.

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::{Caller, StreamAccess};
use crate::openfeature::current::{Currents, Following};
use crate::openfeature::events::{Events, event_stream};
use crate::openfeature::selector;
use crate::openfeature::source::FlagSource;
use crate::status::RequestError;

/// The environment a stream follows, its access and its follower.
pub(crate) async fn open<S: FlagSource, T>(
    source: &Arc<S>,
    request: &Request<T>,
    field: &str,
) -> Result<(String, StreamAccess, Following), Status> {
    let environment = selector::of_call(request.metadata(), field)?;
    let caller = Caller::of(request)
        .ok_or_else(|| RequestError::Unauthenticated("the stream was not authenticated".into()))?;
    let access = source.access().follow(caller, &environment)?;
    let following = Currents::follow(source, &environment).await?;
    Ok((environment, access, following))
}

/// An `EventStream` call, answered with `event` making each version's message.
pub(crate) async fn open_events<S: FlagSource, T, M: Send + 'static>(
    source: &Arc<S>,
    request: &Request<T>,
    event: fn(String, Option<prost_types::Struct>) -> M,
) -> Result<Events<M>, Status> {
    let (environment, access, following) = open(source, request, "").await?;
    Ok(event_stream(Arc::clone(source), environment, following, access, event))
}
