//! OFREP, the OpenFeature Remote Evaluation Protocol, over HTTP/1.1 (its own port):
//! `POST /ofrep/v1/evaluate/flags/{key}` evaluates one flag and `POST /ofrep/v1/evaluate/flags`
//! all of them, with an `ETag` so a client polling with `If-None-Match` gets `304` until
//! the environment or its context changes.
//!
//! The token and the selector travel as for RPC: `Authorization: Bearer`, `Flagd-Selector`.
//! A killed flag answers its off variant's value with reason `DISABLED`; a flag that serves
//! no variant here (our `caller_default`) answers without `value`, as flagd does, which the
//! pinned clients turn into the caller's default.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value as Json, json};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::auth::Service;
use crate::openfeature::answer::{Resolved, Unresolved, resolve};
use crate::openfeature::context::OwnedContext;
use crate::openfeature::current::{Current, Currents};
use crate::openfeature::selector::{self, SELECTOR_HEADER};
use crate::openfeature::source::FlagSource;
use crate::status::RequestError;

/// The OFREP routes.
pub(crate) fn router<S: FlagSource>(source: Arc<S>) -> Router {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_flag::<S>))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_flags::<S>))
        .with_state(source)
}

/// A refusal before any flag is evaluated.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let Refused(status, details) = self;
        (status, axum::Json(json!({ "errorCode": "GENERAL", "errorDetails": details }))).into_response()
    }
}

impl From<RequestError> for Refused {
    fn from(error: RequestError) -> Self {
        let status = match &error {
            RequestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            RequestError::Denied(_) => StatusCode::FORBIDDEN,
            RequestError::Store(crate::store::StoreError::UnknownEnvironment { .. }) => StatusCode::NOT_FOUND,
            RequestError::Write(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refused(status, error.to_string())
    }
}

impl From<Status> for Refused {
    fn from(status: Status) -> Self {
        let code = match status.code() {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refused(code, status.message().to_owned())
    }
}

/// The request's environment, checked against its token, at its current revision.
async fn current<S: FlagSource>(source: &Arc<S>, headers: &HeaderMap) -> Result<Arc<Current>, Refused> {
    let caller = source.access().authenticate(&MetadataMap::from_headers(headers.clone()), Service::Sync)?;
    let selected = headers.get(SELECTOR_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let environment = selector::environment(selected)?;
    if let Some(principal) = caller.principal() {
        principal.may_follow(&environment).map_err(RequestError::from)?;
    }
    let following = Currents::follow(source, &environment).await?;
    let current = following.borrow().clone();
    current.ok_or_else(|| RequestError::EnvironmentDeleted { environment }.into())
}

/// The request's `context`; an absent body or context is an empty one.
fn context_of(body: &[u8]) -> Result<OwnedContext, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(OwnedContext::default());
    }
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(mut request)) => match request.remove("context") {
            None | Some(Json::Null) => Ok(OwnedContext::default()),
            Some(Json::Object(context)) => Ok(OwnedContext::from_json(context)),
            Some(_) => Err("`context` must be a JSON object".into()),
        },
        Ok(_) => Err("the request body must be a JSON object".into()),
        Err(error) => Err(format!("the request body is not JSON: {error}")),
    }
}

/// One flag's answer as OFREP writes it.
fn answer(key: &str, resolved: Result<Resolved, Unresolved>) -> (StatusCode, Json) {
    match resolved {
        Ok(Resolved { value, variant, reason }) => {
            let mut body = json!({ "key": key, "reason": reason, "variant": variant, "metadata": {} });
            if let Some(value) = value {
                body["value"] = Json::from(value);
            }
            (StatusCode::OK, body)
        }
        Err(unresolved @ Unresolved::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            json!({ "key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": unresolved.to_string() }),
        ),
        // Untyped here, OFREP has no type mismatch: the client checks the type.
        Err(unresolved) => (
            StatusCode::BAD_REQUEST,
            json!({ "key": key, "errorCode": "GENERAL", "errorDetails": unresolved.to_string() }),
        ),
    }
}

async fn evaluate_flag<S: FlagSource>(
    Extract(source): Extract<Arc<S>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let current = match current(&source, &headers).await {
        Ok(current) => current,
        Err(refused) => return refused.into_response(),
    };
    let context = match context_of(&body) {
        Ok(context) => context,
        Err(details) => {
            let body = json!({ "key": key, "errorCode": "INVALID_CONTEXT", "errorDetails": details });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    metrics::counter!("flagd_openfeature_evaluations_total", "api" => "ofrep").increment(1);
    let (status, body) = answer(&key, context.with(|ctx| resolve(&current, &key, ctx)));
    (status, axum::Json(body)).into_response()
}

async fn evaluate_flags<S: FlagSource>(
    Extract(source): Extract<Arc<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let current = match current(&source, &headers).await {
        Ok(current) => current,
        Err(refused) => return refused.into_response(),
    };
    let context = match context_of(&body) {
        Ok(context) => context,
        Err(details) => {
            let body = json!({ "errorCode": "INVALID_CONTEXT", "errorDetails": details });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    // The answers depend on the store, the revision and the context, and nothing else.
    let etag = entity_tag(&current.store_id, &current.environment, current.revision, &body);
    let unchanged = headers.get(header::IF_NONE_MATCH).is_some_and(|tags| matches_tag(tags, &etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (header::VARY, vary())]).into_response();
    }
    let flags: Vec<Json> = context.with(|ctx| {
        current.set.flags.iter().map(|flag| answer(&flag.key, resolve(&current, &flag.key, ctx)).1).collect()
    });
    metrics::counter!("flagd_openfeature_evaluations_total", "api" => "ofrep").increment(flags.len() as u64);
    (StatusCode::OK, [(header::ETAG, etag), (header::VARY, vary())], axum::Json(json!({ "flags": flags })))
        .into_response()
}

/// The answers differ by environment and by token: caches must keep them apart.
fn vary() -> HeaderValue {
    HeaderValue::from_static("Flagd-Selector, Authorization")
}

/// A strong entity tag over the store, the environment, its revision and the request body.
fn entity_tag(store_id: &str, environment: &str, revision: u64, body: &[u8]) -> HeaderValue {
    let mut hashed = Vec::with_capacity(store_id.len() + environment.len() + 10 + body.len());
    hashed.extend_from_slice(store_id.as_bytes());
    hashed.push(0);
    hashed.extend_from_slice(environment.as_bytes());
    hashed.push(0);
    hashed.extend_from_slice(&revision.to_be_bytes());
    hashed.extend_from_slice(body);
    let digest = ring::digest::digest(&ring::digest::SHA256, &hashed);
    let hex: String = digest.as_ref()[..12].iter().map(|byte| format!("{byte:02x}")).collect();
    HeaderValue::from_str(&format!("\"{revision}-{hex}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// Whether an `If-None-Match` list names `etag` (or is `*`).
fn matches_tag(tags: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(tags), Ok(etag)) = (tags.to_str(), etag.to_str()) else { return false };
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_is_read_from_the_body_or_refused_plainly() {
        assert!(context_of(b"").is_ok());
        assert!(context_of(b"{}").is_ok());
        let context = context_of(br#"{"context": {"targetingKey": "u-1"}}"#).unwrap();
        context.with(|ctx| assert_eq!(ctx.key(), "u-1"));
        assert!(context_of(br#"{"context": 5}"#).unwrap_err().contains("object"));
        assert!(context_of(b"{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn the_tag_changes_with_the_environment_revision_and_context_and_matches_itself() {
        let tag = entity_tag("store", "production", 3, b"{}");
        assert_ne!(tag, entity_tag("store", "production", 4, b"{}"));
        assert_ne!(tag, entity_tag("store", "staging", 3, b"{}"));
        assert_ne!(tag, entity_tag("store", "production", 3, br#"{"context":{"a":1}}"#));
        assert!(matches_tag(&tag, &tag));
        let list = HeaderValue::from_str(&format!("\"x\", {}", tag.to_str().unwrap())).unwrap();
        assert!(matches_tag(&list, &tag));
        assert!(!matches_tag(&HeaderValue::from_static("\"x\""), &tag));
    }
}
