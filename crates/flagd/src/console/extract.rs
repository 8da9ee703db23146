//! What a console request carries: its signed-in caller (or a redirect to sign in), a form
//! whose CSRF token is checked, and failures answered as pages.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::de::DeserializeOwned;
use tonic::{Code, Status};

use super::Shared;
use super::layout::shell;
use super::session::{SignedIn, cookie_value};

/// The header a script sends the CSRF token in; forms send it as the `csrf` field.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Largest form accepted: a reason and a few fields, never a flag file. The router refuses
/// a larger body before it is read.
pub(crate) const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether the page's script made the request (it asks for JSON and shows failures as text).
pub(crate) fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Shared) -> Result<Self, Self::Rejection> {
        let cookie = parts.headers.get(header::COOKIE).and_then(|value| value.to_str().ok());
        let signed =
            cookie.and_then(cookie_value).and_then(|id| console.sessions.resolve(id, &console.state.access));
        signed.ok_or_else(|| {
            if parts.method == Method::GET {
                let next = parts.uri.path_and_query().map_or("/ui/flags", |p| p.as_str());
                let next: String = form_encode(next);
                Redirect::to(&format!("/ui/login?next={next}")).into_response()
            } else {
                Failure::new(StatusCode::UNAUTHORIZED, "not signed in, or the session ended: sign in again")
                    .into_response()
            }
        })
    }
}

/// `/ui/flags?q=a b` as a query value.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A posted form of a signed-in session whose CSRF token matched (the `csrf` field or the
/// `x-csrf-token` header); anything else is refused with 403 before the handler runs.
#[derive(Debug)]
pub(crate) struct Posted<T> {
    pub(crate) signed: SignedIn,
    pub(crate) form: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned> FromRequest<Shared> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Shared) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let signed = SignedIn::from_request_parts(&mut parts, console).await?;
        let header = parts.headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let script = wants_json(&parts.headers);
        let request = Request::from_parts(parts, body);
        let body = Bytes::from_request(request, console).await.map_err(|_| {
            Failure::new(StatusCode::BAD_REQUEST, "the form could not be read").into_response()
        })?;
        if body.len() > MAX_FORM_BYTES {
            return Err(Failure::new(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response());
        }
        let field = serde_urlencoded::from_bytes::<CsrfField>(&body).map(|f| f.csrf).unwrap_or_default();
        let offered = header.unwrap_or(field);
        if !signed.csrf_matches(&offered) {
            let refused = Failure::new(
                StatusCode::FORBIDDEN,
                "the request's CSRF token is missing or wrong: nothing was changed (reload the page and try again)",
            );
            return Err(refused.respond(script));
        }
        let form = serde_urlencoded::from_bytes::<T>(&body).map_err(|error| {
            Failure::new(StatusCode::BAD_REQUEST, format!("the form is not valid: {error}")).into_response()
        })?;
        Ok(Posted { signed, form })
    }
}

/// A refusal or failure, answered as a page saying what happened, or as plain text to the
/// page's script ([`Failure::respond`]): the same message either way.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }
}

impl Failure {
    /// As plain text to the page's script, as a page otherwise.
    pub(crate) fn respond(self, script: bool) -> Response {
        if script { (self.status, self.message).into_response() } else { self.into_response() }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Failure {
        let code = match status.code() {
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::Unavailable | Code::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure { status: code, message: status.message().to_owned() }
    }
}

// Store failures read as the Admin service reports them: one mapping, `status`'s.
impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Failure {
        Failure::from(Status::from(crate::status::RequestError::from(error)))
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(error: tokio::task::JoinError) -> Failure {
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the store task failed: {error}"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = shell(
            title,
            None,
            html! {
                section.failure role="alert" {
                    h1 { (self.status.as_u16()) " " (title) }
                    p #failure-message { (self.message) }
                    p { a href="/ui/flags" { "Back to the flags" } }
                }
            },
        );
        (self.status, page).into_response()
    }
}
