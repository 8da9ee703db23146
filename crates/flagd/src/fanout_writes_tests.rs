//! A change fanned out to many streams of one HTTP/2 connection leaves in a bounded number
//! of socket writes, and a stalled stream on that connection holds none of the others back.
//!
//! Beside the code rather than in `tests/`: the writes are counted by an I/O wrapper under
//! the server's own (`CoalescingIo`), which only the crate can place; the server, its socket
//! and the clients are real.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use flag_core::Flag;
use flag_proto::shared_sync::sync_server::SyncServer;
use flag_proto::v1::{self, sync_client::SyncClient, watch_request, watch_response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Streaming;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::auth::Service;
use crate::coalescing_io::CoalescingIo;
use crate::config::Config;
use crate::intercept::Authenticate;
use crate::state::State;
use crate::store::{Store, StoreOptions, WriteMeta, WriteOp};
use crate::sync::SyncService;

const STREAMS: usize = 200;

/// The most socket writes one change may take to reach all `STREAMS` streams. Without
/// coalescing it took about one per stream (166 of 200 measured); with it, 2–5 on an idle
/// machine, and up to 17 while other processes kept both cores busy (a worker thread
/// descheduled mid-fan-out ends a turn early). The bound holds both apart.
const MAX_WRITES_PER_CHANGE: usize = 25;

/// A socket whose successful writes are counted.
struct Counted {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl Counted {
    fn count(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Connected for Counted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

struct Served {
    state: Arc<State>,
    channel: Channel,
    /// Socket writes of the server, over all its connections.
    writes: Arc<AtomicUsize>,
}

/// flagd's Sync service on a real socket, its connections counted under `CoalescingIo`.
async fn serve(config: Config) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("flags.redb"), StoreOptions::default()).unwrap();
    let state = Arc::new(State::new(config, store, crate::auth::Access::new(None, None, None).unwrap()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&writes);
    let incoming = TcpListenerStream::new(listener).map(move |accepted| {
        accepted.map(|inner| {
            inner.set_nodelay(true).unwrap();
            CoalescingIo::new(Counted { inner, writes: Arc::clone(&counted) })
        })
    });
    let sync = InterceptedService::new(
        SyncServer::new(SyncService::new(Arc::clone(&state))),
        Authenticate { access: Arc::clone(&state.access), service: Service::Sync },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(1 << 20))
            .add_service(sync)
            .serve_with_incoming(incoming),
    );
    // One connection for every stream, with a small stream window so a stream nobody
    // reads stalls after a few frames.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .initial_stream_window_size(Some(4096))
        .connect()
        .await
        .unwrap();
    (dir, Served { state, channel, writes })
}

/// Opens a stream on `channel` and waits for its snapshot.
async fn subscribe(
    channel: Channel,
    id: usize,
) -> (mpsc::Sender<v1::WatchRequest>, Streaming<v1::WatchResponse>) {
    let (requests, outbound) = mpsc::channel(4);
    let subscribe = v1::Subscribe {
        environment: "production".into(),
        since_revision: 0,
        client_name: format!("stream-{id}"),
        store_id: String::new(),
        observer: false,
        relay: false,
    };
    requests.send(v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) }).await.unwrap();
    let mut stream =
        SyncClient::new(channel).watch(ReceiverStream::new(outbound)).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(first.kind, Some(watch_response::Kind::Snapshot(_))), "{first:?}");
    (requests, stream)
}

/// Commits a new version of one flag, its description `padding` bytes long, and publishes
/// it, as the Admin service does.
async fn change(state: &Arc<State>, percent: f64, padding: usize) {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut flag = Flag::rollout("chat", percent).unwrap();
        flag.description = "x".repeat(padding);
        let meta = WriteMeta { actor: "test".into(), on_behalf_of: None, reason: "fan-out".into() };
        let op = WriteOp::PutFlag { flag, expected_version: None };
        let committed = state.store.write("production", op, &meta).unwrap();
        state.hub.publish("production", &committed);
    })
    .await
    .unwrap();
}

/// Reads `stream` until a change of `revision` arrives.
async fn receive(mut stream: Streaming<v1::WatchResponse>, revision: u64) -> Streaming<v1::WatchResponse> {
    loop {
        let message = stream.message().await.unwrap().expect("the stream ended");
        if let Some(watch_response::Kind::Changes(changes)) = message.kind
            && changes.revision >= revision
        {
            return stream;
        }
    }
}

/// Every stream reads its change of `revision`; how long the last one took.
async fn all_receive(
    streams: Vec<Streaming<v1::WatchResponse>>,
    revision: u64,
) -> (Vec<Streaming<v1::WatchResponse>>, Duration) {
    let started = Instant::now();
    let readers: Vec<_> = streams.into_iter().map(|stream| tokio::spawn(receive(stream, revision))).collect();
    let mut streams = Vec::with_capacity(readers.len());
    for reader in readers {
        streams.push(reader.await.unwrap());
    }
    (streams, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_200_streams_on_one_connection_leaves_in_a_few_socket_writes() {
    // No heartbeat during the test: every write counted is the change's.
    let (_dir, served) = serve(Config::default().with_heartbeat_interval(Duration::from_secs(3600))).await;
    let mut requests = Vec::new();
    let mut streams = Vec::new();
    for id in 0..STREAMS {
        let (sender, stream) = subscribe(served.channel.clone(), id).await;
        requests.push(sender);
        streams.push(stream);
    }
    // Nothing else is in flight now: each count is the change's writes alone.
    for revision in 1..=3 {
        let before = served.writes.load(Ordering::SeqCst);
        change(&served.state, 10.0 * revision as f64, 0).await;
        (streams, _) = all_receive(streams, revision).await;
        let writes = served.writes.load(Ordering::SeqCst) - before;
        assert!(
            writes <= MAX_WRITES_PER_CHANGE,
            "revision {revision} reached {STREAMS} streams in {writes} socket writes (at most {MAX_WRITES_PER_CHANGE})"
        );
    }
    drop(requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_does_not_hold_back_the_others_on_its_connection() {
    // The stalled stream is dropped after this long without room for its next frame; if it
    // held the connection, the others would wait about as long for each change.
    let slow_client_timeout = Duration::from_secs(3);
    let (_dir, served) = serve(Config::default().with_slow_client_limits(slow_client_timeout, 4)).await;
    let (_stalled_requests, mut stalled) = subscribe(served.channel.clone(), 0).await;
    let mut requests = Vec::new();
    let mut streams = Vec::new();
    for id in 1..20 {
        let (sender, stream) = subscribe(served.channel.clone(), id).await;
        requests.push(sender);
        streams.push(stream);
    }
    // Changes of over 1 KiB each: about four fill the stalled stream's 4 KiB window and four
    // more its buffer; from then on its frames wait, and it waits for its timeout.
    let mut slowest = Duration::ZERO;
    for revision in 1..=20_u32 {
        change(&served.state, f64::from(revision), 1024).await;
        let taken;
        (streams, taken) = all_receive(streams, u64::from(revision)).await;
        slowest = slowest.max(taken);
    }
    assert!(
        slowest < Duration::from_secs(2),
        "the others waited {slowest:?} for a change while one stream on their connection stalled"
    );
    // It did stall: once its timeout has passed, it ends as a slow client after the frames
    // it had room for.
    tokio::time::sleep(slow_client_timeout + Duration::from_secs(1)).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stalled stream was never dropped: it did not stall");
    let status = ended.expect("the stalled stream ended without a status");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{}", status.message());
    drop((requests, streams));
}
