//! `flagd.evaluation.v2.Service`, which current RPC providers call: values and variants
//! optional, so "no value: the caller's default" is said by leaving them out.

use std::sync::Arc;

use flag_proto::flagd::evaluation::v2::service_server::Service;
use flag_proto::flagd::evaluation::v2::{
    EventStreamRequest, EventStreamResponse, ResolveBooleanRequest, ResolveBooleanResponse,
    ResolveFloatRequest, ResolveFloatResponse, ResolveIntRequest, ResolveIntResponse, ResolveObjectRequest,
    ResolveObjectResponse, ResolveStringRequest, ResolveStringResponse,
};
use tonic::{Request, Response, Status};

use crate::openfeature::answer::{Asked, Typed};
use crate::openfeature::events::Events;
use crate::openfeature::resolver::{Answer, resolve_typed};
use crate::openfeature::source::FlagSource;
use crate::openfeature::streams::open_events;
use crate::openfeature::structs::to_struct;

/// Serves `flagd.evaluation.v2.Service`.
#[derive(Debug)]
pub(crate) struct EvaluationV2<S> {
    source: Arc<S>,
}

impl<S> EvaluationV2<S> {
    pub(crate) fn new(source: Arc<S>) -> Self {
        EvaluationV2 { source }
    }
}

#[tonic::async_trait]
impl<S: FlagSource> Service for EvaluationV2<S> {
    async fn resolve_boolean(
        &self,
        request: Request<ResolveBooleanRequest>,
    ) -> Result<Response<ResolveBooleanResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Bool).await?;
        let value = value.and_then(Typed::into_bool);
        Ok(Response::new(ResolveBooleanResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_string(
        &self,
        request: Request<ResolveStringRequest>,
    ) -> Result<Response<ResolveStringResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::String).await?;
        let value = value.and_then(Typed::into_string);
        Ok(Response::new(ResolveStringResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_float(
        &self,
        request: Request<ResolveFloatRequest>,
    ) -> Result<Response<ResolveFloatResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Float).await?;
        let value = value.and_then(Typed::into_float);
        Ok(Response::new(ResolveFloatResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_int(
        &self,
        request: Request<ResolveIntRequest>,
    ) -> Result<Response<ResolveIntResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Int).await?;
        let value = value.and_then(Typed::into_int);
        Ok(Response::new(ResolveIntResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_object(
        &self,
        request: Request<ResolveObjectRequest>,
    ) -> Result<Response<ResolveObjectResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Object).await?;
        let value = value.and_then(Typed::into_object).map(to_struct);
        Ok(Response::new(ResolveObjectResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    type EventStreamStream = Events<EventStreamResponse>;

    async fn event_stream(
        &self,
        request: Request<EventStreamRequest>,
    ) -> Result<Response<Self::EventStreamStream>, Status> {
        let events =
            open_events(&self.source, &request, |r#type, data| EventStreamResponse { r#type, data }).await?;
        Ok(Response::new(events))
    }
}
