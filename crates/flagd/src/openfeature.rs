//! OpenFeature flagd compatibility: what its unmodified providers in every language call,
//! served from our store (or a relay's copy of it) with our evaluator, so they get the same
//! answers and cohorts as our own SDK.
//!
//! - `source` — what the services read: a flagd's store ([`State`](crate::state::State))
//!   or a relay's mirror (`relay::Relay`), behind [`FlagSource`].
//! - `current` — each environment's flags compiled once per revision, kept current by one
//!   follower task per environment; what every service here reads.
//! - `context`, `answer`, `structs` — an OpenFeature context as ours; our answer in
//!   OpenFeature's terms (reasons, typed values, the errors providers tell apart); JSON as
//!   protobuf `Struct`.
//! - `selector` — the environment a call names (`Flagd-Selector`; `production` when none).
//! - `resolver`, `evaluation_v1`, `evaluation_v2` — `flagd.evaluation.v1/v2.Service` (the
//!   RPC resolver); `events`, `streams` — their `EventStream`.
//! - `sync`, `flag_json` — `flagd.sync.v1.FlagSyncService` (the in-process resolver) and the
//!   flagd flag JSON it sends, made by `openfeature-json`.
//! - `ofrep` — OFREP over HTTP on its own port.
//!
//! Imports run one way: the services → `resolver`/`streams` → `current`, `answer`,
//! `context` → `source` (the store or a relay's mirror, and the hub). Nothing outside this
//! module but `server` and `relay` imports it (and `state`, which holds the followers).

mod answer;
mod context;
mod current;
mod evaluation_v1;
mod evaluation_v2;
mod events;
mod flag_json;
mod ofrep;
mod resolver;
mod selector;
mod source;
mod streams;
mod structs;
mod sync;

use std::future::Future;
use std::sync::Arc;

use flag_proto::MAX_MESSAGE_BYTES;
use flag_proto::flagd::evaluation::v1::service_server::ServiceServer as EvaluationV1Server;
use flag_proto::flagd::evaluation::v2::service_server::ServiceServer as EvaluationV2Server;
use flag_proto::shared_flag_sync::flag_sync_service_server::FlagSyncServiceServer;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tonic::service::interceptor::InterceptedService;

pub(crate) use current::Currents;
pub(crate) use source::{FlagSource, Flags};

use crate::auth::Service;
use crate::intercept::Authenticate;
use crate::tls::TlsListener;

/// The OpenFeature gRPC services over `S`, each behind the SDK token's check.
pub(crate) struct Services<S> {
    pub(crate) evaluation_v1:
        InterceptedService<EvaluationV1Server<evaluation_v1::EvaluationV1<S>>, Authenticate>,
    pub(crate) evaluation_v2:
        InterceptedService<EvaluationV2Server<evaluation_v2::EvaluationV2<S>>, Authenticate>,
    pub(crate) sync: InterceptedService<FlagSyncServiceServer<sync::FlagSync<S>>, Authenticate>,
}

// By hand: the services share `S` behind an `Arc`, so a copy needs no `S: Clone`.
impl<S> Clone for Services<S> {
    fn clone(&self) -> Self {
        Services {
            evaluation_v1: self.evaluation_v1.clone(),
            evaluation_v2: self.evaluation_v2.clone(),
            sync: self.sync.clone(),
        }
    }
}

impl<S: FlagSource> Services<S> {
    /// The services over `source`, checking callers against `access`.
    pub(crate) fn new(source: &Arc<S>, access: &Arc<crate::auth::Access>) -> Self {
        // Providers authenticate like our SDKs: with the SDK token, when one is required.
        let authenticate = Authenticate { access: Arc::clone(access), service: Service::Sync };
        Services {
            evaluation_v1: InterceptedService::new(
                EvaluationV1Server::new(evaluation_v1::EvaluationV1::new(Arc::clone(source)))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
                authenticate.clone(),
            ),
            evaluation_v2: InterceptedService::new(
                EvaluationV2Server::new(evaluation_v2::EvaluationV2::new(Arc::clone(source)))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
                authenticate.clone(),
            ),
            sync: InterceptedService::new(
                FlagSyncServiceServer::new(sync::FlagSync::new(Arc::clone(source)))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
                authenticate,
            ),
        }
    }
}

impl<S> std::fmt::Debug for Services<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Services { evaluation_v1, evaluation_v2, sync }")
    }
}

/// Serves OFREP on `listener` until `shutdown` completes, over TLS when `tls` is given.
pub(crate) async fn serve_ofrep<S: FlagSource>(
    listener: TcpListener,
    source: Arc<S>,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = ofrep::router(source);
    match tls {
        Some(config) => {
            let listener = TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
    }
}
