//! Sign-in with a token (or, on a server without tokens, a name), and sign-out.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::extract::Posted;
use super::layout::shell;
use super::session::{Who, clear_cookie, set_cookie};
use crate::auth::{Caller, Service};

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: only a console path, never another site.
fn after_sign_in(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("//") { next } else { "/ui/flags" }
}

fn sign_in_page(open: bool, next: &str, refusal: Option<&str>) -> Markup {
    shell(
        "Sign in",
        None,
        html! {
            section.sign-in {
                h1 { "Sign in" }
                @if let Some(refusal) = refusal { p.refusal #sign-in-refused role="alert" { (refusal) } }
                form method="post" action="/ui/login" {
                    input type="hidden" name="next" value=(next);
                    @if open {
                        p.note { "This server takes Admin calls without a token: anyone who reaches it may change flags. Your name is recorded as the actor of your changes." }
                        label { "Your name" input #name type="text" name="name" required autofocus; }
                    } @else {
                        label { "Token" input #token type="password" name="token" required autofocus autocomplete="current-password"; }
                    }
                    button #sign-in type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// `GET /ui/login`.
pub(crate) async fn form(State(console): State<Shared>, Query(next): Query<Next>) -> Markup {
    sign_in_page(console.state.access.is_open(Service::Admin), after_sign_in(&next.next), None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    next: String,
}

/// `POST /ui/login`: a session for the token's principal. Needs no CSRF token (there is no
/// session yet); the cookie is `SameSite=Strict`, so another site cannot use what it sets.
pub(crate) async fn sign_in(
    State(console): State<Shared>,
    headers: HeaderMap,
    axum::Form(credentials): axum::Form<Credentials>,
) -> Response {
    if !same_origin(&headers) {
        // Another site's form signing a browser in to a session of the attacker's choosing.
        return (StatusCode::FORBIDDEN, "sign-in is accepted only from flagd's own sign-in page\n")
            .into_response();
    }
    let Credentials { token, name, next } = credentials;
    let open = console.state.access.is_open(Service::Admin);
    let refuse = |message: &str| {
        (StatusCode::UNAUTHORIZED, sign_in_page(open, after_sign_in(&next), Some(message))).into_response()
    };
    let who = match console.state.access.authenticate_secret(Some(token.trim().as_bytes()), Service::Admin) {
        Ok(Caller::Principal(principal)) => Who::Token(principal.digest),
        Ok(Caller::Anyone) => {
            let name = name.trim();
            if name.is_empty() {
                return refuse("say who you are: your name is recorded with your changes");
            }
            Who::Anyone(name.chars().take(64).collect())
        }
        Err(error) => return refuse(&error.to_string()),
    };
    let Some(id) = console.sessions.start(who) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no random source for a session id\n").into_response();
    };
    let cookie = set_cookie(&id, console.secure);
    ([(header::SET_COOKIE, cookie)], Redirect::to(after_sign_in(&next))).into_response()
}

/// Whether a request's `Origin`, when the browser sends one, is the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value: &axum::http::HeaderValue| value.to_str().ok());
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            origin.split_once("://").is_some_and(|(_, authority)| authority == host)
        }
        (Some(_), None) => false,
    }
}

/// `POST /ui/logout`.
pub(crate) async fn sign_out(State(console): State<Shared>, posted: Posted<Next>) -> Response {
    console.sessions.end(&posted.signed.id);
    ([(header::SET_COOKIE, clear_cookie(console.secure))], Redirect::to("/ui/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_from_another_origin_is_refused() {
        let headers = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name, axum::http::HeaderValue::from_static(value));
            }
            map
        };
        assert!(same_origin(&headers(&[(header::HOST, "127.0.0.1:8014")])));
        assert!(same_origin(&headers(&[
            (header::HOST, "127.0.0.1:8014"),
            (header::ORIGIN, "http://127.0.0.1:8014")
        ])));
        assert!(!same_origin(&headers(&[
            (header::HOST, "127.0.0.1:8014"),
            (header::ORIGIN, "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[(header::ORIGIN, "http://127.0.0.1:8014")])));
    }

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(after_sign_in("/ui/flags/chat"), "/ui/flags/chat");
        assert_eq!(after_sign_in("https://evil.example/"), "/ui/flags");
        assert_eq!(after_sign_in("//evil.example/ui/"), "/ui/flags");
        assert_eq!(after_sign_in(""), "/ui/flags");
    }
}
