//! The web console, served by flagd on its management port under `/ui/`.
//!
//! Pages are rendered on the server with maud (compile-time checked templates that escape
//! every value), with one small hand-written script for what must be live: the flags table
//! following the change feed, the kill's acknowledgement progress, confirmations. So flagd
//! needs no Node.js to build or run, the assets are in the binary, and every read-only page
//! is complete without JavaScript. Every form posts without it too; a kill then asks no
//! confirmation (its reason is required) and answers with the acknowledgement report.
//!
//! Every write goes through the Admin service in-process, behind the same access check as a
//! gRPC call ([`CheckedAdmin`]): the page only hides buttons a principal may not use; the
//! server refuses them whatever is posted.
//!
//! # Layout
//! - `session` — sessions in a cookie, each with its CSRF token
//! - `extract` — the signed-in caller and CSRF-checked forms of a request, and failures as pages
//! - `layout` — the page shell and the small pieces every page uses
//! - `sign_in` — sign-in and sign-out
//! - `flags_page` — every flag across environments, live
//! - `flag_page`, `flag_view` — one flag's environments side by side; its forms and history
//! - `flag_actions` — kill, revive, rollout, rollback and promote posted from the flag page
//! - `live` — server-sent events: the change feed and a kill's acknowledgements
//! - `kill_follow` — a kill's acknowledgements followed from its commit
//! - `audit_page`, `sdks_page`, `environments_page` — the other pages
//! - `figures`, `chart` — evaluations and rollout cohorts over time, drawn as SVG
//! - `assets` — the stylesheet and the script

mod assets;
mod audit_page;
mod chart;
mod environments_page;
mod extract;
mod figures;
mod flag_actions;
mod flag_page;
mod flag_view;
mod flags_page;
mod kill_follow;
mod layout;
mod live;
mod sdks_page;
mod session;
mod sign_in;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::admin::AdminService;
use crate::admin_access::CheckedAdmin;
use crate::state::State;

/// What every console handler shares.
#[derive(Debug)]
pub(crate) struct Console {
    state: Arc<State>,
    /// The Admin service behind its access check, called in-process for every write.
    admin: CheckedAdmin,
    sessions: session::Sessions,
    /// Kills posted from pages, their acknowledgements followed from the commit.
    kills: kill_follow::KillFollows,
    /// Served over TLS: the session cookie is `Secure`.
    secure: bool,
    /// Turns `true` at shutdown: live streams end so the management server can stop.
    stopped: watch::Receiver<bool>,
}

type Shared = Arc<Console>;

/// The console's routes, all under `/ui`.
pub(crate) fn router(state: Arc<State>, secure: bool, stopped: watch::Receiver<bool>) -> Router {
    let admin = CheckedAdmin(AdminService::new(Arc::clone(&state)));
    let console = Arc::new(Console {
        state,
        admin,
        sessions: session::Sessions::default(),
        kills: Default::default(),
        secure,
        stopped,
    });
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/flags") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/flags") }))
        .route("/ui/login", get(sign_in::form).post(sign_in::sign_in))
        .route("/ui/logout", post(sign_in::sign_out))
        .route("/ui/assets/{name}", get(assets::asset))
        .route("/ui/flags", get(flags_page::page))
        .route("/ui/flags/{key}", get(flag_page::page))
        .route("/ui/flags/{key}/row", get(flags_page::row))
        .route("/ui/flags/{key}/kill", post(flag_actions::kill))
        .route("/ui/flags/{key}/revive", post(flag_actions::revive))
        .route("/ui/flags/{key}/rollout", post(flag_actions::rollout))
        .route("/ui/flags/{key}/rollback", get(flag_actions::rollback_preview).post(flag_actions::rollback))
        .route("/ui/flags/{key}/promote", get(flag_actions::promote_preview).post(flag_actions::promote))
        .route("/ui/events", get(live::changes))
        .route("/ui/acks", get(live::acks))
        .route("/ui/audit", get(audit_page::page))
        .route("/ui/sdks", get(sdks_page::page))
        .route("/ui/environments", get(environments_page::page))
        .route(
            "/ui/environments/restore",
            get(environments_page::restore_preview).post(environments_page::restore),
        )
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_FORM_BYTES))
        .with_state(console)
}

/// Every console answer: scripts, styles and connections only from flagd itself, no
/// framing (a kill button must not be clickable through another site's page), no sniffing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
