//! `flagd.sync.v1.FlagSyncService`, which in-process providers call: the whole environment
//! as flagd flag JSON, on connect and after every change (`SyncFlags`), once
//! (`FetchAllFlags`), and `GetMetadata`, which some providers call first and retry until it
//! is answered.
//!
//! Each revision's JSON, and its `SyncFlagsResponse` encoding, is made once, by the first
//! stream that needs it, and the same bytes go to every stream of the environment.

use std::sync::Arc;

use flag_proto::PreEncoded;
use flag_proto::flagd::sync::v1::{
    FetchAllFlagsRequest, FetchAllFlagsResponse, GetMetadataRequest, GetMetadataResponse, SyncFlagsRequest,
    SyncFlagsResponse,
};
use flag_proto::shared_flag_sync::flag_sync_service_server::FlagSyncService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::auth::StreamAccess;
use crate::openfeature::current::{Current, Following};
use crate::openfeature::flag_json::flagd_json;
use crate::openfeature::resolver::current_of;
use crate::openfeature::source::FlagSource;
use crate::openfeature::streams::open;
use crate::openfeature::structs::to_struct;
use crate::status::RequestError;

/// Serves `flagd.sync.v1.FlagSyncService`.
#[derive(Debug)]
pub(crate) struct FlagSync<S> {
    source: Arc<S>,
}

impl<S> FlagSync<S> {
    pub(crate) fn new(source: Arc<S>) -> Self {
        FlagSync { source }
    }
}

#[tonic::async_trait]
impl<S: FlagSource> FlagSyncService for FlagSync<S> {
    type SyncFlagsStream = ReceiverStream<Result<PreEncoded, Status>>;

    async fn sync_flags(
        &self,
        request: Request<SyncFlagsRequest>,
    ) -> Result<Response<Self::SyncFlagsStream>, Status> {
        let selector = request.get_ref().selector.clone();
        let (environment, access, following) = open(&self.source, &request, &selector).await?;
        let (sender, receiver) = mpsc::channel(self.source.settings().stream_buffer);
        tokio::spawn(stream(Arc::clone(&self.source), environment, following, access, sender));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn fetch_all_flags(
        &self,
        request: Request<FetchAllFlagsRequest>,
    ) -> Result<Response<FetchAllFlagsResponse>, Status> {
        let selector = request.get_ref().selector.clone();
        let (_, current) = current_of(&self.source, &request, &selector).await?;
        let flag_configuration = String::from(&*configuration(&current).await?);
        Ok(Response::new(FetchAllFlagsResponse { flag_configuration }))
    }

    async fn get_metadata(
        &self,
        request: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        let (environment, current) = current_of(&self.source, &request, "").await?;
        let metadata = serde_json::json!({
            "environment": environment,
            "revision": current.revision,
            "storeId": current.store_id,
        });
        let serde_json::Value::Object(metadata) = metadata else { unreachable!("an object literal") };
        Ok(Response::new(GetMetadataResponse { metadata: Some(to_struct(metadata)) }))
    }
}

/// The revision's flag JSON, made on a blocking thread the first time it is asked for.
async fn configuration(current: &Arc<Current>) -> Result<Arc<str>, Status> {
    if let Some(json) = current.flagd_json.get() {
        return Ok(Arc::clone(json));
    }
    let current = Arc::clone(current);
    let made = tokio::task::spawn_blocking(move || Arc::clone(json_of(&current)));
    Ok(made.await.map_err(RequestError::from)?)
}

fn json_of(current: &Current) -> &Arc<str> {
    current.flagd_json.get_or_init(|| flagd_json(current))
}

/// The revision's `SyncFlagsResponse`, encoded on a blocking thread the first time.
async fn sync_response(current: &Arc<Current>) -> Result<PreEncoded, Status> {
    if let Some(response) = current.sync_response.get() {
        return Ok(response.clone());
    }
    let current = Arc::clone(current);
    let made = tokio::task::spawn_blocking(move || {
        let encode = || {
            let flag_configuration = String::from(&**json_of(&current));
            PreEncoded::encode(&SyncFlagsResponse { flag_configuration, sync_context: None })
        };
        current.sync_response.get_or_init(encode).clone()
    });
    Ok(made.await.map_err(RequestError::from)?)
}

async fn stream<S: FlagSource>(
    source: Arc<S>,
    environment: String,
    mut following: Following,
    mut access: StreamAccess,
    sender: mpsc::Sender<Result<PreEncoded, Status>>,
) {
    let registration = source.connections().register_stream(&environment, "SyncFlags");
    let timeout = source.settings().slow_client_timeout;
    info!(%environment, "OpenFeature sync stream connected");
    let mut sent = None;
    loop {
        let newest = following.borrow_and_update().clone();
        let Some(newest) = newest else {
            if !source.hub().is_closed() {
                let _ = sender
                    .try_send(Err(
                        RequestError::EnvironmentDeleted { environment: environment.clone() }.into()
                    ));
            }
            break;
        };
        // Another store's revisions do not compare with the last one sent.
        let unsent = sent
            .as_ref()
            .is_none_or(|(store, revision)| newest.revision > *revision || newest.store_id != *store);
        if unsent {
            let message = match sync_response(&newest).await {
                Ok(response) => response,
                Err(status) => {
                    let _ = sender.try_send(Err(status));
                    break;
                }
            };
            match sender.send_timeout(Ok(message), timeout).await {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Closed(_)) => break,
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    metrics::counter!("flagd_slow_clients_dropped_total").increment(1);
                    let _ = sender.try_send(Err(Status::resource_exhausted(
                        "the provider read nothing in time; reconnect",
                    )));
                    break;
                }
            }
            registration.sent(newest.revision);
            sent = Some((newest.store_id.clone(), newest.revision));
        }
        tokio::select! {
            changed = following.changed() => {
                // A follower that ended says `None` first, which the loop's read acts on.
                if changed.is_err() && following.borrow().is_some() {
                    break;
                }
            }
            refused = access.revoked() => {
                let _ = sender.try_send(Err(refused.into()));
                break;
            }
            () = sender.closed() => break,
        }
    }
    info!(%environment, "OpenFeature sync stream disconnected");
}
