//! A stream that stays open but falls silent is detected by the heartbeat timeout and
//! replaced, against a fake `Sync` server that sends one snapshot and then nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flag_core::{Context, Flag};
use flag_proto::v1::sync_server::{Sync, SyncServer};
use flag_proto::v1::{self, watch_response};
use flag_sdk::{Client, Evaluate, Status};
use tokio_stream::Stream;

/// Answers every `Watch` with a full snapshot, then keeps the stream open and silent.
#[derive(Default)]
struct SilentSync {
    streams: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Sync for SilentSync {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchResponse, tonic::Status>> + Send>>;

    async fn watch(
        &self,
        _request: tonic::Request<tonic::Streaming<v1::WatchRequest>>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        self.streams.fetch_add(1, Ordering::SeqCst);
        let snapshot = v1::FullSnapshot {
            revision: 1,
            flags: vec![v1::Flag::from(&Flag::rollout("chat", 100.0).unwrap())],
            segments: vec![],
            store_id: "fake".into(),
        };
        let first = v1::WatchResponse { kind: Some(watch_response::Kind::Snapshot(snapshot)) };
        let silent = tokio_stream::iter([Ok(first)]).chain(tokio_stream::pending());
        Ok(tonic::Response::new(Box::pin(silent)))
    }
}

use tokio_stream::StreamExt as _;

#[tokio::test]
async fn a_silent_stream_is_declared_dead_and_reconnected() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = SilentSync::default();
    let streams = Arc::clone(&service.streams);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SyncServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let client = Client::builder(format!("http://{address}"))
        .heartbeat_timeout(Duration::from_millis(100))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .connect()
        .await
        .unwrap();
    assert!(client.is_enabled("chat", &Context::new("u")));
    let mut status = client.status_changes();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| matches!(s, Status::Stale { .. })))
        .await
        .expect("the silence is noticed")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| *s == Status::Ready))
        .await
        .expect("a new stream is opened")
        .unwrap();
    assert!(streams.load(Ordering::SeqCst) >= 2);
    // Served throughout from the last snapshot.
    assert!(client.is_enabled("chat", &Context::new("u")));
}
