//! `flagd relay`'s wiring: load the cache, follow the upstreams, serve Sync, OpenFeature's
//! services and the Admin proxy on gRPC (OpenFeature's also on the sync port, OFREP on its
//! own) and `/healthz`, `/readyz`, `/metrics` on the management port.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::get;
use flag_proto::MAX_MESSAGE_BYTES;
use flag_proto::shared_sync::sync_server::SyncServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, ServerTlsConfig};
use tracing::{info, warn};

use super::admin_proxy::AdminProxy;
use super::upstream::Upstreams;
use super::{Relay, RelayConfig, cache};
use crate::acks::Connections;
use crate::auth::{Access, Service};
use crate::fanout::Hub;
use crate::intercept::Authenticate;
use crate::management::prometheus;
use crate::openfeature::{Currents, Services as OpenFeatureServices, serve_ofrep};
use crate::server::{Listeners, Ready, ServeError, coalesced, grpc_builder};
use crate::sync::SyncService;
use crate::sync_source::StreamSettings;
use crate::tls::server_config;

/// How long connections may stay open after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The cache is rewritten at most this often: a burst of changes costs one write.
const CACHE_PACE: Duration = Duration::from_millis(100);

/// Serves a relay on `listeners.grpc` (and `/healthz`, `/readyz`, `/metrics` on
/// `listeners.management`, OpenFeature's services on `listeners.sync`, OFREP on
/// `listeners.ofrep`) until `shutdown` completes, calling `ready` once all serve.
pub async fn serve_relay(
    listeners: Listeners,
    config: RelayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Ready) + Send,
) -> Result<(), ServeError> {
    let Listeners { grpc, management, sync: sync_listener, ofrep: ofrep_listener } = listeners;
    if config.heartbeat_interval.is_zero()
        || config.slow_client_timeout.is_zero()
        || config.stream_buffer == 0
    {
        return Err(ServeError::Config(
            "heartbeat, slow-client timeout and stream buffer must be above zero".into(),
        ));
    }
    let address = grpc.local_addr()?;
    let management_address = management.as_ref().map(TcpListener::local_addr).transpose()?;
    let sync_address = sync_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let ofrep_address = ofrep_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    for bound in [Some(address), management_address, sync_address, ofrep_address].into_iter().flatten() {
        if !bound.ip().is_loopback() && !config.insecure && config.tls.is_none() {
            return Err(ServeError::Plaintext(bound));
        }
    }
    let sdk_token = config.sdk_token.as_deref().filter(|token| !token.is_empty());
    let access = Access::new(None, sdk_token, None).map_err(|error| ServeError::Tokens(error.into()))?;
    let ca = match &config.upstream_ca {
        Some(path) => Some(std::fs::read(path).map_err(|error| {
            ServeError::Config(format!("--upstream-ca {}: cannot read it ({error})", path.display()))
        })?),
        None => None,
    };
    let upstreams =
        Upstreams::new(&config.upstreams, config.upstream_token.as_deref(), ca.as_deref(), &config.name)
            .map_err(ServeError::Config)?;
    let cached = match &config.cache {
        Some(path) => match cache::load(path) {
            Ok(cached) => cached,
            // Only a cache: the relay then waits for its upstream, as a new one would.
            Err(error) => {
                warn!(%error, "ignoring the relay cache");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    for (environment, mirror) in &cached {
        info!(%environment, revision = mirror.revision(), store_id = mirror.store_id(), "serving the cached copy until the upstream answers");
    }
    prometheus();
    let (stop, stopped) = watch::channel(false);
    let relay = Arc::new(Relay {
        settings: StreamSettings {
            heartbeat_interval: config.heartbeat_interval,
            slow_client_timeout: config.slow_client_timeout,
            stream_buffer: config.stream_buffer,
        },
        access: Arc::new(access),
        hub: Hub::default(),
        connections: Arc::new(Connections::default()),
        upstreams: Arc::new(upstreams),
        environments: std::sync::Mutex::new(HashMap::new()),
        changed: watch::Sender::new(0),
        stopped: stopped.clone(),
        serving: Default::default(),
        currents: Currents::default(),
    });
    relay.follow_cached(cached);
    let cache_task =
        config.cache.clone().map(|path| tokio::spawn(keep_cache(Arc::clone(&relay), path, stopped.clone())));
    tokio::spawn(async move {
        shutdown.await;
        stop.send_replace(true);
    });
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let management_task = management.map(|listener| {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .with_state(Arc::clone(&relay));
        tokio::spawn(
            axum::serve(listener, app).with_graceful_shutdown(until_stopped(stopped.clone())).into_future(),
        )
    });
    let sync = InterceptedService::new(
        SyncServer::new(SyncService::new(Arc::clone(&relay)))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        Authenticate { access: Arc::clone(&relay.access), service: Service::Sync },
    );
    let tls = config
        .tls
        .as_ref()
        .map(|tls| ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)));
    let ofrep_tls = config.tls.as_ref().map(server_config).transpose()?;
    let ofrep_task = ofrep_listener.map(|listener| {
        let shutdown = until_stopped(stopped.clone());
        tokio::spawn(serve_ofrep(listener, Arc::clone(&relay), ofrep_tls, shutdown))
    });
    let open_feature = OpenFeatureServices::new(&relay, &relay.access);
    // The same OpenFeature services on the port in-process providers default to.
    let sync_task = match sync_listener {
        Some(listener) => {
            let shutdown = until_stopped(stopped.clone());
            let server = grpc_builder(tls.clone())?
                .add_service(open_feature.evaluation_v1.clone())
                .add_service(open_feature.evaluation_v2.clone())
                .add_service(open_feature.sync.clone())
                .serve_with_incoming_shutdown(coalesced(listener), shutdown);
            Some(tokio::spawn(server))
        }
        None => None,
    };
    // As a flagd's: Nagle off and a connection's frames coalesced (see `server::coalesced`).
    let mut builder = grpc_builder(tls)?;
    let grpc_shutdown = {
        let (relay, stopped) = (Arc::clone(&relay), until_stopped(stopped.clone()));
        async move {
            stopped.await;
            info!("shutting down: ending streams");
            relay.hub.close();
        }
    };
    let served = builder
        .add_service(sync)
        .add_service(open_feature.evaluation_v1)
        .add_service(open_feature.evaluation_v2)
        .add_service(open_feature.sync)
        .add_service(AdminProxy::new(Arc::clone(&relay.upstreams)))
        .serve_with_incoming_shutdown(coalesced(grpc), grpc_shutdown);
    let (upstream, _) = relay.upstreams.current();
    info!(%address, management = ?management_address, sync = ?sync_address, ofrep = ?ofrep_address, %upstream, "relay listening");
    relay.serving.store(true, Ordering::Release);
    ready(Ready {
        grpc: address,
        management: management_address,
        sync: sync_address,
        ofrep: ofrep_address,
        tls: config.tls.is_some(),
    });
    let served = {
        let grace_over = async {
            until_stopped(stopped.clone()).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            served = served => served,
            () = grace_over => Ok(()),
        }
    };
    relay.serving.store(false, Ordering::Release);
    relay.hub.close();
    // The HTTP servers' tasks and the sync port's server end with the relay's grace period.
    management_task.into_iter().chain(ofrep_task).for_each(|task| task.abort());
    if let Some(task) = sync_task {
        task.abort();
    }
    if let Some(task) = cache_task {
        // It writes the last copies once more on its way out.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
    }
    served?;
    info!("stopped");
    Ok(())
}

/// Rewrites the cache after every change to a mirror, at most once per [`CACHE_PACE`], and
/// once more at shutdown.
async fn keep_cache(relay: Arc<Relay>, path: std::path::PathBuf, mut stopped: watch::Receiver<bool>) {
    let mut changed = relay.changed.subscribe();
    let mut written = 0;
    loop {
        let stopping = tokio::select! {
            _ = changed.changed() => false,
            _ = stopped.wait_for(|stop| *stop) => true,
        };
        let now = *changed.borrow_and_update();
        if now != written {
            let (relay, path) = (Arc::clone(&relay), path.clone());
            let saved = tokio::task::spawn_blocking(move || cache::save(&path, &relay.mirrors())).await;
            match saved {
                Ok(Ok(())) => written = now,
                Ok(Err(error)) => warn!(%error, "the relay cache was not written"),
                Err(error) => warn!(%error, "the relay cache writer failed"),
            }
        }
        if stopping {
            return;
        }
        tokio::time::sleep(CACHE_PACE).await;
    }
}

async fn readyz(Extract(relay): Extract<Arc<Relay>>) -> (StatusCode, String) {
    if relay.is_ready() {
        (StatusCode::OK, "ready\n".into())
    } else if !relay.serving.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "grpc not serving yet\n".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for a first copy of an environment from the upstream\n".into(),
        )
    }
}

/// The process's metrics, then whether each followed environment's upstream stream is up
/// (rendered from this relay's state: every server in a process shares one recorder).
async fn metrics_text(Extract(relay): Extract<Arc<Relay>>) -> String {
    let mut text = prometheus().render();
    text.push_str("# HELP flagd_relay_upstream_connected Whether the relay's stream of the environment from its upstream is up.\n");
    text.push_str("# TYPE flagd_relay_upstream_connected gauge\n");
    for (environment, connected) in relay.upstream_connected() {
        text.push_str(&format!(
            "flagd_relay_upstream_connected{{environment=\"{environment}\"}} {}\n",
            u8::from(connected)
        ));
    }
    text
}
