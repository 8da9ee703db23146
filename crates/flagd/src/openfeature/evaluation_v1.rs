//! `flagd.evaluation.v1.Service`, which older RPC providers call. Its values are not
//! optional: an answer without a value (the caller's default) is sent as the type's zero
//! value with an empty variant and reason `DEFAULT` or `DISABLED`, the shape flagd itself
//! sends and providers read as "use the caller's default".

use std::collections::HashMap;
use std::sync::Arc;

use flag_core::Value;
use flag_proto::flagd::evaluation::v1::any_flag;
use flag_proto::flagd::evaluation::v1::service_server::Service;
use flag_proto::flagd::evaluation::v1::{
    AnyFlag, EventStreamRequest, EventStreamResponse, ResolveAllRequest, ResolveAllResponse,
    ResolveBooleanRequest, ResolveBooleanResponse, ResolveFloatRequest, ResolveFloatResponse,
    ResolveIntRequest, ResolveIntResponse, ResolveObjectRequest, ResolveObjectResponse, ResolveStringRequest,
    ResolveStringResponse,
};
use tonic::{Request, Response, Status};

use crate::openfeature::answer::{Asked, Resolved, Typed, resolve};
use crate::openfeature::context::OwnedContext;
use crate::openfeature::events::Events;
use crate::openfeature::resolver::{Answer, current_of, resolve_typed};
use crate::openfeature::source::FlagSource;
use crate::openfeature::streams::open_events;
use crate::openfeature::structs::to_struct;

/// Serves `flagd.evaluation.v1.Service`.
#[derive(Debug)]
pub(crate) struct EvaluationV1<S> {
    source: Arc<S>,
}

impl<S> EvaluationV1<S> {
    pub(crate) fn new(source: Arc<S>) -> Self {
        EvaluationV1 { source }
    }
}

#[tonic::async_trait]
impl<S: FlagSource> Service for EvaluationV1<S> {
    async fn resolve_all(
        &self,
        request: Request<ResolveAllRequest>,
    ) -> Result<Response<ResolveAllResponse>, Status> {
        let (_, current) = current_of(&self.source, &request, "").await?;
        let context = OwnedContext::from_struct(request.into_inner().context);
        // As flagd does: every flag that resolves to a value; errors and no-value answers
        // are left out (the provider then uses the caller's default).
        let flags: HashMap<String, AnyFlag> = context.with(|ctx| {
            current
                .set
                .flags
                .iter()
                .filter_map(|flag| {
                    let Resolved { value, variant, reason } = resolve(&current, &flag.key, ctx).ok()?;
                    let value = match value? {
                        Value::Bool(b) => any_flag::Value::BoolValue(b),
                        Value::String(s) => any_flag::Value::StringValue(s.into()),
                        Value::Number(n) => any_flag::Value::DoubleValue(n),
                        Value::Json(json) => match *json {
                            serde_json::Value::Object(map) => any_flag::Value::ObjectValue(to_struct(map)),
                            _ => return None,
                        },
                    };
                    let any = AnyFlag {
                        reason: reason.into(),
                        variant: variant.unwrap_or_default(),
                        value: Some(value),
                        metadata: None,
                    };
                    Some((flag.key.clone(), any))
                })
                .collect()
        });
        metrics::counter!("flagd_openfeature_evaluations_total", "api" => "rpc")
            .increment(flags.len() as u64);
        Ok(Response::new(ResolveAllResponse { flags, metadata: None }))
    }

    async fn resolve_boolean(
        &self,
        request: Request<ResolveBooleanRequest>,
    ) -> Result<Response<ResolveBooleanResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Bool).await?;
        let value = value.and_then(Typed::into_bool).unwrap_or_default();
        let variant = variant.unwrap_or_default();
        Ok(Response::new(ResolveBooleanResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_string(
        &self,
        request: Request<ResolveStringRequest>,
    ) -> Result<Response<ResolveStringResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::String).await?;
        let value = value.and_then(Typed::into_string).unwrap_or_default();
        let variant = variant.unwrap_or_default();
        Ok(Response::new(ResolveStringResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_float(
        &self,
        request: Request<ResolveFloatRequest>,
    ) -> Result<Response<ResolveFloatResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Float).await?;
        let value = value.and_then(Typed::into_float).unwrap_or_default();
        let variant = variant.unwrap_or_default();
        Ok(Response::new(ResolveFloatResponse { value, reason: reason.into(), variant, metadata: None }))
    }

    async fn resolve_int(
        &self,
        request: Request<ResolveIntRequest>,
    ) -> Result<Response<ResolveIntResponse>, Status> {
        let (key, context) = (request.get_ref().flag_key.clone(), request.get_ref().context.clone());
        let Answer { value, variant, reason } =
            resolve_typed(&self.source, &request, &key, context, Asked::Int).await?;
        let value = value.and_then(Typed::into_int).unwrap_or_default();
        let variant = variant.unwrap_or_default();
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
        let variant = variant.unwrap_or_default();
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
