//! Wiring: open the store, build the services, serve until shut down.

use std::future::Future;
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
use tonic::transport::Server;
use tracing::info;

use crate::acks::Connections;
use crate::admin::AdminService;
use crate::auth::Tokens;
use crate::config::Config;
use crate::fanout::Hub;
use crate::management::{prometheus, serve_management};
use crate::state::State;
use crate::store::{Store, StoreError, StoreOptions};
use crate::sync::SyncService;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Listening beyond loopback needs an admin token (or `insecure`).
    #[error(
        "refusing to listen on {0} without an admin token: set FLAGD_ADMIN_TOKEN, or pass --insecure to allow anyone on the network to change flags"
    )]
    InsecureListen(std::net::SocketAddr),
    /// The flag store could not be opened.
    #[error("opening the flag store at {path}")]
    Store {
        /// The redb file.
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
/// coalesce it with the next one (against the peer's delayed ACK) costs ~40 ms a time.
fn without_nagle(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            // Best effort: a socket that refuses the option still works, only slower.
            let _ = stream.set_nodelay(true);
        }
        accepted
    })
}

fn check(config: &Config) -> Result<(), ServeError> {
    let zero = [
        (config.heartbeat_interval.is_zero(), "the heartbeat interval must be above zero"),
        (config.slow_client_timeout.is_zero(), "the slow-client timeout must be above zero"),
        (config.stream_buffer == 0, "the stream buffer must hold at least one frame"),
    ];
    match zero.iter().find(|(bad, _)| *bad) {
        Some((_, message)) => Err(ServeError::Config((*message).into())),
        None => Ok(()),
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
    let mut config = config;
    // An empty token (say, a secret that was not filled in) is no token, here and in `Tokens`.
    config.admin_token = config.admin_token.filter(|token| !token.is_empty());
    config.sdk_token = config.sdk_token.filter(|token| !token.is_empty());
    check(&config)?;
    let address = grpc.local_addr()?;
    if !address.ip().is_loopback() && config.admin_token.is_none() && !config.insecure {
        return Err(ServeError::InsecureListen(address));
    }
    prometheus();
    let store = {
        let (path, options) = (config.data.clone(), StoreOptions { resume_window: config.resume_window });
        tokio::task::spawn_blocking(move || Store::open(&path, options))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|source: StoreError| ServeError::Store {
                path: config.data.clone(),
                source: source.into(),
            })?
    };
    let tokens = Tokens::new(config.admin_token.as_deref(), config.sdk_token.as_deref());
    let state = Arc::new(State {
        config,
        store,
        hub: Hub::default(),
        connections: Arc::new(Connections::default()),
        serving: Default::default(),
    });

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

    let management_task = match management {
        Some(listener) => {
            info!(address = %listener.local_addr()?, "management endpoints listening");
            let state = Arc::clone(&state);
            Some(tokio::spawn(serve_management(listener, state, until_stopped(stopped.clone()))))
        }
        None => None,
    };

    let admin_tokens = tokens.clone();
    let admin = InterceptedService::new(
        AdminServer::new(AdminService::new(Arc::clone(&state)))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        move |request: tonic::Request<()>| {
            admin_tokens.check_admin(request.metadata())?;
            Ok(request)
        },
    );
    let sync = InterceptedService::new(
        SyncServer::new(SyncService::new(Arc::clone(&state)))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        move |request: tonic::Request<()>| {
            tokens.check_sdk(request.metadata())?;
            Ok(request)
        },
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
    info!(%address, "grpc listening");
    state.serving.store(true, Ordering::Release);
    let served = Server::builder()
        // Thousands of SDK streams may share a few connections.
        .max_concurrent_streams(Some(1 << 20))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(admin)
        .add_service(sync)
        .serve_with_incoming_shutdown(without_nagle(grpc), grpc_shutdown)
        .await;
    state.serving.store(false, Ordering::Release);
    // If the gRPC server ended on its own, stop the rest too.
    stop.send_replace(true);
    state.hub.close();
    if let Some(task) = management_task {
        let _ = task.await;
    }
    served?;
    info!("stopped");
    Ok(())
}
