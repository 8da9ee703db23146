//! Wiring: open the store, build the services, serve until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use flag_proto::MAX_MESSAGE_BYTES;
use flag_proto::shared_sync::sync_server::SyncServer;
use flag_proto::v1::admin_server::AdminServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

use crate::admin::AdminService;
use crate::admin_access::CheckedAdmin;
use crate::auth::{Access, Service};
use crate::coalescing_io::CoalescingIo;
use crate::config::{Config, PostgresStore};
use crate::intercept::Authenticate;
use crate::management::{prometheus, serve_management};
use crate::openfeature::{Services as OpenFeatureServices, serve_ofrep};
use crate::reload::reload_on_hangup;
use crate::state::State;
use crate::store::{Store, StoreError, StoreOptions, WriteError, WriteMeta};
use crate::sync::SyncService;
use crate::tls::{TlsError, server_config};
use crate::webhooks;

/// What a started server is bound to, reported once everything is bound, open and checked.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Ready {
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The management address, if served.
    pub management: Option<SocketAddr>,
    /// The second gRPC address for OpenFeature providers (their in-process default, 8015),
    /// if served.
    pub sync: Option<SocketAddr>,
    /// The OFREP address, if served.
    pub ofrep: Option<SocketAddr>,
    /// Whether both ports speak TLS.
    pub tls: bool,
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Listening beyond loopback needs an admin token (or `insecure`).
    #[error(
        "refusing to listen on {0} without an admin token: set FLAGD_ADMIN_TOKEN (or a tokens file, FLAGD_TOKENS), or pass --insecure to allow anyone on the network to change flags"
    )]
    InsecureListen(SocketAddr),
    /// Listening beyond loopback needs TLS (or `insecure`): tokens must not cross the
    /// network in clear text.
    #[error(
        "refusing to listen on {0} without TLS: tokens and flags would cross the network in clear text; pass --tls-cert and --tls-key, or --insecure to allow it"
    )]
    Plaintext(SocketAddr),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The tokens file cannot be read, or names something flagd cannot use (the message
    /// has the file, line and field).
    #[error("the tokens file cannot be used")]
    Tokens(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The flag store could not be opened.
    #[error("opening the flag store at {path}")]
    Store {
        /// The redb file, or the database's URL without its password.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting cannot work (a zero interval, timeout or buffer).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener failed.
    #[error("listener failed")]
    Io(#[from] std::io::Error),
    /// The gRPC transport failed.
    #[error("gRPC server failed")]
    Transport(#[from] tonic::transport::Error),
}

/// Accepted connections with Nagle's algorithm off: a change is a small frame, and waiting to
/// coalesce it with the next one (against the peer's delayed ACK) costs ~40 ms a time. What
/// the kernel no longer coalesces, `CoalescingIo` does: the frames of every stream of a
/// connection woken by one change leave in one write.
pub(crate) fn coalesced(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<CoalescingIo<tokio::net::TcpStream>>> {
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.map(|stream| {
            // Best effort: a socket that refuses the option still works, only slower.
            let _ = stream.set_nodelay(true);
            CoalescingIo::new(stream)
        })
    })
}

/// A gRPC server builder with the settings every port of ours shares.
pub(crate) fn grpc_builder(tls: Option<ServerTlsConfig>) -> Result<Server, ServeError> {
    let mut builder = Server::builder()
        // Thousands of SDK streams may share a few connections.
        .max_concurrent_streams(Some(1 << 20))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    Ok(builder)
}

/// The largest environment cap: a snapshot of that size plus its frame fits in one message.
const MAX_ENVIRONMENT_CAP: usize = MAX_MESSAGE_BYTES - (1 << 20);

/// Where the store is, for messages: the file, or the database's URL without its password.
fn store_location(data: &Path, postgres: Option<&PostgresStore>) -> PathBuf {
    match postgres {
        Some(postgres) => PathBuf::from(crate::store::without_password(&postgres.url)),
        None => data.to_owned(),
    }
}

/// Opens the store and creates the declared environments it lacks.
fn open_declaring(
    data: &Path,
    postgres: Option<&PostgresStore>,
    options: StoreOptions,
    declared: &[String],
) -> Result<Store, ServeError> {
    let path = &store_location(data, postgres);
    let opened = |source: StoreError| ServeError::Store { path: path.to_owned(), source: source.into() };
    let store = match postgres {
        Some(postgres) => {
            Store::open_postgres(&postgres.url, postgres.connections, postgres.ca.as_ref(), options)
                .map(|(store, _)| store)
        }
        None => Store::open(data, options),
    }
    .map_err(opened)?;
    let meta = WriteMeta {
        actor: "flagd".into(),
        on_behalf_of: None,
        reason: "declared with --environments".into(),
    };
    let created = store.declare(declared, &meta).map_err(|error| match error {
        WriteError::Store(source) => opened(source),
        other => ServeError::Config(format!("--environments: {other}")),
    })?;
    if !created.is_empty() {
        info!(environments = ?created, "declared environments created");
    }
    // Which file, which store and where each environment stands: what an operator checks
    // first after a restore or a move.
    info!(data = %path.display(), store_id = %store.id(), "store open");
    for environment in store.environments().map_err(opened)? {
        let revision = store.revision(&environment).map_err(opened)?;
        info!(%environment, revision, "environment");
    }
    Ok(store)
}

fn check(config: &Config) -> Result<(), ServeError> {
    let zero = [
        (config.heartbeat_interval.is_zero(), "the heartbeat interval must be above zero"),
        (config.slow_client_timeout.is_zero(), "the slow-client timeout must be above zero"),
        (config.stream_buffer == 0, "the stream buffer must hold at least one frame"),
        (config.max_environment_bytes == 0, "the environment cap must be above zero"),
        (config.webhook_timeout.is_zero(), "the webhook timeout must be above zero"),
        (config.webhook_retry_max.is_zero(), "the longest webhook retry wait must be above zero"),
        (
            config.max_environment_bytes > MAX_ENVIRONMENT_CAP,
            "the environment cap must leave a snapshot room in one gRPC message: at most 63 MiB (66060288 bytes)",
        ),
    ];
    if let Some((_, message)) = zero.iter().find(|(bad, _)| *bad) {
        return Err(ServeError::Config((*message).into()));
    }
    if let Some(name) = config.environments.iter().find(|name| !crate::store::is_environment_name(name)) {
        return Err(ServeError::Config(format!(
            "--environments: expected names of 1 to 64 letters, digits, `_`, `.` or `-`, found {name:?}"
        )));
    }
    webhooks::check_ids(&config.webhooks).map_err(ServeError::Config)
}

/// The network rule, the same for both ports: beyond loopback, flagd needs an admin token
/// (or anyone could change flags) and TLS (or tokens cross the network in clear), unless
/// `insecure` says the operator accepts that.
fn check_exposure(config: &Config, addresses: &[SocketAddr]) -> Result<(), ServeError> {
    for &address in addresses {
        if address.ip().is_loopback() || config.insecure {
            continue;
        }
        if config.admin_token.is_none() && config.tokens.is_none() {
            return Err(ServeError::InsecureListen(address));
        }
        if config.tls.is_none() {
            return Err(ServeError::Plaintext(address));
        }
    }
    if config.sdk_token.is_some() && config.admin_token.is_none() && config.tokens.is_none() {
        warn!(
            "an SDK token is set but no admin token: Admin calls (flag writes) are open to anyone who can reach {}; set FLAGD_ADMIN_TOKEN",
            if config.insecure { "the gRPC port" } else { "loopback" }
        );
    }
    Ok(())
}

/// What a server listens on.
#[derive(Debug)]
#[non_exhaustive]
pub struct Listeners {
    /// gRPC: our Admin and Sync services and OpenFeature's evaluation and sync services.
    pub grpc: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub management: Option<TcpListener>,
    /// OpenFeature's services again, for providers left on their in-process default port.
    pub sync: Option<TcpListener>,
    /// OFREP over HTTP.
    pub ofrep: Option<TcpListener>,
}

impl Listeners {
    /// gRPC on `grpc` and nothing else.
    pub fn grpc(grpc: TcpListener) -> Self {
        Listeners { grpc, management: None, sync: None, ofrep: None }
    }

    /// The same, with the management endpoints on `management`.
    pub fn with_management(mut self, management: Option<TcpListener>) -> Self {
        self.management = management;
        self
    }

    /// The same, with OpenFeature's services also on `sync` and OFREP on `ofrep`.
    pub fn with_open_feature(mut self, sync: Option<TcpListener>, ofrep: Option<TcpListener>) -> Self {
        self.sync = sync;
        self.ofrep = ofrep;
        self
    }
}

/// Serves gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_with_management(listener, None, config, shutdown).await
}

/// Serves gRPC on `grpc` and, if given, the management HTTP endpoints on `management`,
/// until `shutdown` completes. Open streams are ended at shutdown so it completes promptly.
pub async fn serve_with_management(
    grpc: TcpListener,
    management: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_reporting(grpc, management, config, shutdown, |_| {}).await
}

/// As [`serve_with_management`], calling `ready` once the store is open and checked, the
/// settings are checked and both listeners serve; a start that fails returns the error
/// without calling it. After `shutdown`, connections still open when the configured grace
/// period ends are dropped.
pub async fn serve_reporting(
    grpc: TcpListener,
    management: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Ready) + Send,
) -> Result<(), ServeError> {
    serve_listeners(Listeners::grpc(grpc).with_management(management), config, shutdown, ready).await
}

/// As [`serve_reporting`], on every listener of `listeners`.
pub async fn serve_listeners(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Ready) + Send,
) -> Result<(), ServeError> {
    let Listeners { grpc, management, sync: sync_listener, ofrep: ofrep_listener } = listeners;
    let mut config = config;
    // An empty token (say, a secret that was not filled in) is no token, here and in `Tokens`.
    config.admin_token = config.admin_token.filter(|token| !token.is_empty());
    config.sdk_token = config.sdk_token.filter(|token| !token.is_empty());
    check(&config)?;
    let address = grpc.local_addr()?;
    let management_address = management.as_ref().map(TcpListener::local_addr).transpose()?;
    let sync_address = sync_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let ofrep_address = ofrep_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let addresses = [Some(address), management_address, sync_address, ofrep_address];
    check_exposure(&config, &addresses.into_iter().flatten().collect::<Vec<_>>())?;
    // Both checked before the store is touched: a bad pair fails the start, not the first client.
    let management_tls = config.tls.as_ref().map(server_config).transpose()?;
    let grpc_tls = config
        .tls
        .as_ref()
        .map(|tls| ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)));
    let access =
        Access::new(config.admin_token.as_deref(), config.sdk_token.as_deref(), config.tokens.as_deref())
            .map_err(|error| ServeError::Tokens(error.into()))?;
    let grace = config.shutdown_grace;
    prometheus();
    let store = {
        let (path, postgres, options) = (
            config.data.clone(),
            config.postgres.clone(),
            StoreOptions {
                resume_window: config.resume_window,
                max_environment_bytes: config.max_environment_bytes,
            },
        );
        let declared = config.environments.clone();
        tokio::task::spawn_blocking(move || open_declaring(&path, postgres.as_ref(), options, &declared))
            .await
            .map_err(std::io::Error::other)??
    };
    let state = Arc::new(State::new(config, store, access));

    // One shutdown signal, observed by the gRPC server, the management server and the streams.
    let (stop, stopped) = watch::channel(false);
    let stop = Arc::new(stop);
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            shutdown.await;
            stop.send_replace(true);
        });
    }
    let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let deliveries = webhooks::start(&state, stopped.clone()).await.map_err(|source| ServeError::Store {
        path: store_location(&state.config.data, state.config.postgres.as_ref()),
        source: source.into(),
    })?;

    crate::replica::start(&state, stopped.clone()).await.map_err(|source| ServeError::Store {
        path: store_location(&state.config.data, state.config.postgres.as_ref()),
        source: source.into(),
    })?;
    crate::fleet::start(&state, stopped.clone());
    let engine = crate::rollout::start_engine(&state, stopped.clone());

    let management_task = match management {
        Some(listener) => {
            let state = Arc::clone(&state);
            let tls = management_tls.clone();
            Some(tokio::spawn(serve_management(listener, state, tls, stopped.clone())))
        }
        None => None,
    };
    let ofrep_task = ofrep_listener.map(|listener| {
        let state = Arc::clone(&state);
        tokio::spawn(serve_ofrep(listener, state, management_tls, until_stopped(stopped.clone())))
    });

    if state.access.file().is_some() {
        reload_on_hangup(Arc::clone(&state), until_stopped(stopped.clone()))?;
    }
    let authenticated = |service: Service| Authenticate { access: Arc::clone(&state.access), service };
    let admin = InterceptedService::new(
        AdminServer::new(CheckedAdmin(AdminService::new(Arc::clone(&state))))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        authenticated(Service::Admin),
    );
    let sync = InterceptedService::new(
        SyncServer::new(SyncService::new(Arc::clone(&state)))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        authenticated(Service::Sync),
    );
    let grpc_shutdown = {
        let state = Arc::clone(&state);
        let stopped = until_stopped(stopped.clone());
        async move {
            stopped.await;
            info!("shutting down: ending streams");
            state.hub.close();
        }
    };
    let open_feature = OpenFeatureServices::new(&state, &state.access);
    let tls = grpc_tls.is_some();
    let served = grpc_builder(grpc_tls.clone())?
        .add_service(admin)
        .add_service(sync)
        .add_service(open_feature.evaluation_v1.clone())
        .add_service(open_feature.evaluation_v2.clone())
        .add_service(open_feature.sync.clone())
        .serve_with_incoming_shutdown(coalesced(grpc), grpc_shutdown);
    // The same OpenFeature services on the port in-process providers default to.
    let sync_served = match sync_listener {
        Some(listener) => {
            let shutdown = until_stopped(stopped.clone());
            let server = grpc_builder(grpc_tls)?
                .add_service(open_feature.evaluation_v1)
                .add_service(open_feature.evaluation_v2)
                .add_service(open_feature.sync)
                .serve_with_incoming_shutdown(coalesced(listener), shutdown);
            Some(tokio::spawn(server))
        }
        None => None,
    };
    // Everything is bound and open: the listeners already accept (the kernel queues
    // connections until the servers poll), the store is open and the settings checked.
    info!(%address, management = ?management_address, sync = ?sync_address, ofrep = ?ofrep_address, tls, "listening");
    state.serving.store(true, Ordering::Release);
    ready(Ready {
        grpc: address,
        management: management_address,
        sync: sync_address,
        ofrep: ofrep_address,
        tls,
    });
    // Graceful shutdown waits for every connection to close, and a client that never closes
    // (an idle connection, a stuck proxy) would keep flagd up forever: one grace period,
    // counted from the stop signal, bounds both servers; then they are dropped, which drops
    // their connections.
    // A `watch`, not a future: both servers wait on it, and it stays over once over.
    let (expire, expired) = watch::channel(false);
    {
        let stopped = until_stopped(stopped.clone());
        tokio::spawn(async move {
            stopped.await;
            tokio::time::sleep(grace).await;
            expire.send_replace(true);
        });
    }
    let grace_over = || {
        let mut expired = expired.clone();
        async move {
            let _ = expired.wait_for(|over| *over).await;
        }
    };
    let served = {
        tokio::pin!(served);
        tokio::select! {
            served = &mut served => served,
            () = grace_over() => {
                warn!(?grace, "gRPC connections still open after the shutdown grace period: dropping them");
                Ok(())
            }
        }
    };
    state.serving.store(false, Ordering::Release);
    // If the gRPC server ended on its own, stop the rest too.
    stop.send_replace(true);
    state.hub.close();
    let http = [("management", management_task), ("OFREP", ofrep_task)];
    for (name, task) in http.into_iter().filter_map(|(name, task)| Some((name, task?))) {
        let mut task = task;
        tokio::select! {
            _ = &mut task => {}
            () = grace_over() => {
                warn!(?grace, "{name} connections still open after the shutdown grace period: dropping them");
                task.abort();
            }
        }
    }
    if let Some(mut task) = sync_served {
        tokio::select! {
            _ = &mut task => {}
            () = grace_over() => {
                warn!(?grace, "OpenFeature sync-port connections still open after the shutdown grace period: dropping them");
                task.abort();
            }
        }
    }
    tokio::select! {
        () = deliveries.finish() => {}
        () = grace_over() => warn!(?grace, "webhook deliverers still running after the shutdown grace period: dropping them"),
    }
    // The engine stops at the signal; a store call it is in finishes first.
    tokio::select! {
        _ = engine => {}
        () = grace_over() => warn!(?grace, "the rollout engine still running after the shutdown grace period: dropping it"),
    }
    served?;
    info!("stopped");
    Ok(())
}
