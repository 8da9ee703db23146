//! A real flagd on 127.0.0.1:0 with a real redb file, and clients for it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::v1::sync_client::SyncClient;
use flag_proto::v1::{self, watch_request, watch_response};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub mod postgres;
pub mod writers;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub grpc: std::net::SocketAddr,
    pub management: std::net::SocketAddr,
    /// OpenFeature's second gRPC port and OFREP, when started with them.
    pub sync: Option<std::net::SocketAddr>,
    pub ofrep: Option<std::net::SocketAddr>,
    pub data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), flagd::ServeError>>>,
}

impl TestServer {
    pub async fn start(config: flagd::Config) -> TestServer {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let management = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, management_addr) = (grpc.local_addr().unwrap(), management.local_addr().unwrap());
        let data = config.data.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(flagd::serve_with_management(grpc, Some(management), config, async {
            let _ = stopped.await;
        }));
        TestServer {
            grpc: grpc_addr,
            management: management_addr,
            sync: None,
            ofrep: None,
            data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// As [`TestServer::start`], with OpenFeature's sync port and OFREP served too.
    pub async fn start_open_feature(config: flagd::Config) -> TestServer {
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (grpc, management, sync, ofrep) = (bind().await, bind().await, bind().await, bind().await);
        let address = |listener: &TcpListener| listener.local_addr().unwrap();
        let (grpc_addr, management_addr) = (address(&grpc), address(&management));
        let (sync_addr, ofrep_addr) = (address(&sync), address(&ofrep));
        let data = config.data.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = flagd::Listeners::grpc(grpc)
            .with_management(Some(management))
            .with_open_feature(Some(sync), Some(ofrep));
        let task = tokio::spawn(flagd::serve_listeners(
            listeners,
            config,
            async {
                let _ = stopped.await;
            },
            |_| {},
        ));
        TestServer {
            grpc: grpc_addr,
            management: management_addr,
            sync: Some(sync_addr),
            ofrep: Some(ofrep_addr),
            data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has released the store.
    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    async fn stop_in_place(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("server stops in time").unwrap().unwrap();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint()).unwrap().connect().await.unwrap()
    }

    pub async fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel().await)
    }

    pub async fn admin_with_token(&self, token: &str) -> AdminClient<InterceptedService<Channel, Bearer>> {
        AdminClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    pub async fn watch(&self, environment: &str, since: u64) -> Watcher {
        self.watch_from(environment, since, "").await
    }

    /// A watch resuming at `since` of the store `store_id` (`""`: unknown).
    pub async fn watch_from(&self, environment: &str, since: u64, store_id: &str) -> Watcher {
        Watcher::open_from(SyncClient::new(self.channel().await), environment, since, store_id).await.unwrap()
    }
}

pub fn data_file(dir: &Path) -> PathBuf {
    dir.join("flags.redb")
}

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Bearer(format!("Bearer {token}").parse().unwrap())
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A `Sync.Watch` stream that can acknowledge.
pub struct Watcher {
    /// The client name it subscribed with, unique in the process.
    pub name: String,
    requests: Option<mpsc::Sender<v1::WatchRequest>>,
    responses: tonic::Streaming<v1::WatchResponse>,
}

static WATCHERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Watcher {
    pub async fn open<T>(
        client: SyncClient<T>,
        environment: &str,
        since: u64,
    ) -> Result<Watcher, tonic::Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        Watcher::open_from(client, environment, since, "").await
    }

    pub async fn open_from<T>(
        mut client: SyncClient<T>,
        environment: &str,
        since: u64,
        store_id: &str,
    ) -> Result<Watcher, tonic::Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        let (requests, outbound) = mpsc::channel(16);
        let name = format!("test-watcher-{}", WATCHERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let subscribe = v1::Subscribe {
            environment: environment.into(),
            since_revision: since,
            client_name: name.clone(),
            store_id: store_id.into(),
            observer: false,
            relay: false,
        };
        requests
            .send(v1::WatchRequest { kind: Some(watch_request::Kind::Subscribe(subscribe)) })
            .await
            .unwrap();
        let responses = client.watch(ReceiverStream::new(outbound)).await?.into_inner();
        Ok(Watcher { name, requests: Some(requests), responses })
    }

    /// The next message that is not a heartbeat.
    pub async fn next_change(&mut self) -> watch_response::Kind {
        loop {
            match self.next().await {
                watch_response::Kind::Heartbeat(_) => continue,
                other => return other,
            }
        }
    }

    /// The next message of any kind.
    pub async fn next(&mut self) -> watch_response::Kind {
        let message = tokio::time::timeout(WAIT, self.responses.message()).await.expect("a message in time");
        message.unwrap().expect("the stream is open").kind.expect("a message kind")
    }

    /// The stream's next result, raw (to observe a closing status).
    pub async fn next_raw(&mut self) -> Result<Option<v1::WatchResponse>, tonic::Status> {
        tokio::time::timeout(WAIT, self.responses.message()).await.expect("a message in time")
    }

    pub async fn ack(&self, revision: u64) {
        let ack = v1::WatchRequest { kind: Some(watch_request::Kind::Ack(v1::Ack { revision })) };
        self.requests.as_ref().expect("requests still open").send(ack).await.unwrap();
    }

    /// Closes the request side (no more acks); the responses keep coming.
    pub fn close_requests(&mut self) {
        self.requests = None;
    }
}

pub fn change(reason: &str) -> Option<v1::Change> {
    Some(v1::Change { actor: "tester".into(), reason: reason.into() })
}

/// A proto flag from YAML in flag-core's format.
pub fn flag(yaml: &str) -> v1::Flag {
    let flag: flag_core::Flag = serde_yaml_ng::from_str(yaml).unwrap();
    v1::Flag::from(&flag)
}

pub fn put(
    environment: &str,
    flag: v1::Flag,
    expected_version: Option<u64>,
    reason: &str,
) -> v1::PutFlagRequest {
    v1::PutFlagRequest {
        environment: environment.into(),
        flag: Some(flag),
        expected_version,
        change: change(reason),
    }
}

/// A plain HTTP/1.1 GET, returning (status code, body).
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// A plain HTTP/1.1 POST of a JSON body with extra headers, returning (status, headers, body).
pub async fn http_post(
    address: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut with_type = vec![("Content-Type", "application/json")];
    with_type.extend_from_slice(headers);
    http_request(address, "POST", path, &with_type, body).await
}

/// One HTTP/1.1 request on its own connection; the status, the head and the body.
pub async fn http_request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) =
        response.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    (status, head, body)
}

/// The SHA-256 of a secret, as the tokens file lists it.
pub fn sha256(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A tokens file listing `(name, secret, role, environments)`.
pub fn write_tokens(path: &Path, principals: &[(&str, &str, &str, &str)]) {
    let mut text = String::from("principals:\n");
    for (name, secret, role, environments) in principals {
        text.push_str(&format!(
            "  - name: {name}\n    sha256: {}\n    role: {role}\n    environments: {environments}\n",
            sha256(secret)
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A flag the durability tests write again and again, each time with a new description.
pub const COUNTER: &str = "
key: counter
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }";

/// Starts the real binary on ephemeral ports; returns it and its gRPC endpoint.
pub fn start_binary(data: &Path) -> (Child, String) {
    let (child, listening) = start_binary_listening(data);
    let grpc = listening_on(&listening, "grpc");
    (child, format!("http://{grpc}"))
}

/// Starts the real binary on ephemeral ports (gRPC, management, sync, OFREP); returns it and
/// the line it prints once serving (`flagd listening grpc=A management=B sync=C ofrep=D …`).
pub fn start_binary_listening(data: &Path) -> (Child, String) {
    start_binary_with(&["--data".as_ref(), data.as_os_str()])
}

/// Like [`start_binary_listening`], with the store named by `store_args` (`--data PATH`,
/// `--store URL`).
pub fn start_binary_with(store_args: &[&std::ffi::OsStr]) -> (Child, String) {
    let args = ANY_PORTS.iter().map(std::ffi::OsStr::new).chain(store_args.iter().copied());
    spawn_flagd(args)
}

/// Every port a flagd (or a relay) listens on, each one the system picks.
pub const ANY_PORTS: [&str; 8] = [
    "--listen",
    "127.0.0.1:0",
    "--management",
    "127.0.0.1:0",
    "--sync-listen",
    "127.0.0.1:0",
    "--ofrep-listen",
    "127.0.0.1:0",
];

/// Starts the flagd binary with exactly `args`; returns it and the line it prints once
/// serving.
pub fn spawn_flagd<'a>(args: impl IntoIterator<Item = &'a std::ffi::OsStr>) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flagd"))
        .args(args)
        .env("FLAGD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the flagd binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

/// The address after `name=` in flagd's listening line.
pub fn listening_on(line: &str, name: &str) -> std::net::SocketAddr {
    let prefix = format!("{name}=");
    let address = line.split_whitespace().find_map(|word| word.strip_prefix(prefix.as_str()));
    address
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("flagd prints its {name} address: {line:?}"))
}

/// flagctl, built next to this package's flagd binary if it is not there yet (a
/// `cargo test -p flagd` builds only flagd's own binaries).
pub fn flagctl() -> PathBuf {
    let flagd = PathBuf::from(env!("CARGO_BIN_EXE_flagd"));
    let path = flagd.with_file_name("flagctl");
    if !path.exists() {
        // target/<profile>/flagd → target
        let target = flagd.parent().and_then(Path::parent).unwrap();
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "flagctl", "--target-dir"])
            .arg(target)
            .status()
            .unwrap();
        assert!(status.success(), "building flagctl");
    }
    path
}
