//! The management HTTP port: `/healthz`, `/readyz`, `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls::ServerConfig;

use crate::admin::WRITE_OPERATIONS;
use crate::console;
use crate::state::State;
use crate::store::Health;
use crate::tls::TlsListener;

/// The process-wide Prometheus recorder. `metrics` has one global recorder, so every server
/// in a process (tests run several) reports into the same one.
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then that one gets the metrics.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        register_at_zero();
        handle
    })
}

fn describe() {
    metrics::describe_counter!("flagd_writes_total", "Committed writes, by operation.");
    metrics::describe_histogram!(
        "flagd_commit_seconds",
        "Time from receiving a write to its durable commit."
    );
    metrics::describe_gauge!("flagd_streams_connected", "Connected Sync.Watch streams.");
    metrics::describe_counter!("flagd_changes_sent_total", "Change frames sent to streams.");
    metrics::describe_counter!("flagd_snapshots_sent_total", "Full snapshots sent to streams.");
    metrics::describe_counter!(
        "flagd_slow_clients_dropped_total",
        "Streams closed because the client stopped reading."
    );
    metrics::describe_counter!(
        "flagd_store_errors_total",
        "Store failures, by kind (io, corrupt, panic, closed, storage); each I/O error or panic reopens the store."
    );
    metrics::describe_counter!("flagd_acks_total", "Revision acknowledgements received from SDKs.");
    crate::webhooks::describe_metrics();
    metrics::describe_counter!(
        "flagd_rollout_decisions_total",
        "Rollout steps judged, by decision (advance, breach, inconclusive: the hold is extended, paused: inconclusive until the max hold)."
    );
    metrics::describe_histogram!(
        "flagd_rollout_kill_ack_seconds",
        "From a kill on a rollout breach to the slowest connected SDK's acknowledgement."
    );
    metrics::describe_counter!(
        "flagd_access_denied_total",
        "Calls and streams refused because their principal's role or environments do not allow them."
    );
    metrics::describe_counter!(
        "flagd_tokens_reloads_total",
        "Tokens file reloads on SIGHUP, by outcome (loaded, refused: the principals before stay in force)."
    );
}

/// Registers every series that has no per-client or per-webhook label at zero, so `/metrics`
/// shows them from the start: a dashboard built on a quiet day shows lines, not "no data".
fn register_at_zero() {
    for operation in WRITE_OPERATIONS {
        metrics::counter!("flagd_writes_total", "operation" => operation).increment(0);
    }
    for kind in ["io", "corrupt", "storage", "panic", "closed"] {
        metrics::counter!("flagd_store_errors_total", "kind" => kind).increment(0);
    }
    for decision in crate::rollout::DECISIONS {
        metrics::counter!("flagd_rollout_decisions_total", "decision" => decision).increment(0);
    }
    for outcome in ["loaded", "refused"] {
        metrics::counter!("flagd_tokens_reloads_total", "outcome" => outcome).increment(0);
    }
    for name in [
        "flagd_changes_sent_total",
        "flagd_snapshots_sent_total",
        "flagd_slow_clients_dropped_total",
        "flagd_acks_total",
        "flagd_access_denied_total",
        "flagd_writes_abandoned_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!("flagd_streams_connected").increment(0.0);
}

/// 200 only when gRPC is serving and the store can commit writes; otherwise 503 with the
/// cause, so an operator (or a load balancer) sees a full disk before a kill fails on it.
async fn readyz(Extract(state): Extract<Arc<State>>) -> (StatusCode, String) {
    if !state.serving.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "grpc not serving yet\n".into());
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.health()).await {
        Ok(Health::Ready) => (StatusCode::OK, "ready\n".into()),
        Ok(Health::WritesFailing { cause }) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("flag store cannot commit writes: {cause}\n"))
        }
        Ok(Health::Closed { cause }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("flag store closed after an error and not reopened yet: {cause}\n"),
        ),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("flag store check failed: {error}\n")),
    }
}

/// The process's metrics, then this server's aggregated SDK health figures (rendered from
/// its own state: every server in a process shares the one `metrics` recorder).
async fn metrics_text(Extract(state): Extract<Arc<State>>) -> String {
    let mut text = prometheus().render();
    text.push_str(&state.health.render());
    text
}

/// Serves the management endpoints (and the console, unless switched off) until `stopped`
/// turns `true`, over TLS when `tls` is given.
pub(crate) async fn serve_management(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<Arc<ServerConfig>>,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let console =
        state.config.console.then(|| console::router(Arc::clone(&state), tls.is_some(), stopped.clone()));
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    if let Some(console) = console {
        app = app.merge(console);
    }
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    match tls {
        Some(config) => {
            let listener = TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
    }
}
