//! `cargo run -p flag-examples --example kill_switch`: an HTTP service whose
//! `/recommendations/{user}` endpoint is guarded by the `recommendations` flag;
//! `flagctl kill recommendations` turns it off while the service runs.

use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use flag_core::Context;
use flag_sdk::{Client, Evaluate, OnTimeout};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flag_examples::init_logging();
    let address = flag_examples::flagd_address();
    let mut builder = Client::builder(&address)
        .client_name("kill-switch-example")
        .start_timeout(Duration::from_secs(3), OnTimeout::Serve);
    if let Ok(token) = std::env::var("FLAGD_SDK_TOKEN") {
        builder = builder.token(token);
    }
    let client = builder.connect().await.context("starting the flag client")?;

    let listen = std::env::var("KILL_SWITCH_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
    println!("serving http://{}/recommendations/{{user}} (flags from {address})", listener.local_addr()?);
    let app = axum::Router::new().route("/recommendations/{user}", get(recommendations)).with_state(client);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving http")
}

/// The guarded endpoint: the flag is read on every request, in nanoseconds, so a kill takes
/// effect on the very next request after the SDK applies it.
async fn recommendations(State(client): State<Client>, Path(user): Path<String>) -> (StatusCode, String) {
    if client.is_enabled("recommendations", &Context::new(&user)) {
        (StatusCode::OK, format!("recommendations for {user}: rust-book, tokio-tutorial, redb-docs\n"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "recommendations are switched off\n".into())
    }
}
