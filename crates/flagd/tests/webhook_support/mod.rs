//! For the webhook tests: a real HTTP or HTTPS receiver on 127.0.0.1 (hyper's server, with
//! tokio-rustls for HTTPS) that answers as a test scripts it, and a real flagd process
//! started with webhook options.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flag_proto::v1::admin_client::AdminClient;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tonic::transport::Channel;

/// How a receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200.
    Ok,
    /// This status.
    Status(u16),
    /// Never: the request hangs until the client gives up.
    Hang,
}

/// One request as the receiver got it, and how it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub answer: Answer,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().unwrap().to_owned())
    }

    /// `environment/revision`, from the header every delivery carries.
    pub fn delivery(&self) -> String {
        self.header("x-flagd-delivery").unwrap()
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    arrived: Notify,
    refused_handshakes: Mutex<usize>,
}

/// A webhook receiver; stopping it (or dropping it) closes the listener and every connection.
pub struct Receiver {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    tls: bool,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// On a given address: a receiver back on the port it had before an outage.
    pub async fn start_on(address: SocketAddr) -> Receiver {
        Receiver::start_sharing(address, Arc::default()).await
    }

    /// An HTTPS receiver on 127.0.0.1 serving with `acceptor`'s certificate.
    pub async fn start_tls(acceptor: TlsAcceptor) -> Receiver {
        let address = "127.0.0.1:0".parse().unwrap();
        Receiver::start_with(address, Arc::default(), Some(acceptor)).await
    }

    async fn start_sharing(address: SocketAddr, shared: Arc<Shared>) -> Receiver {
        Receiver::start_with(address, shared, None).await
    }

    async fn start_with(address: SocketAddr, shared: Arc<Shared>, tls: Option<TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let secure = tls.is_some();
        let task = tokio::spawn(accept(listener, Arc::clone(&shared), tls));
        Receiver { address, shared, task, tls: secure }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/hooks/flags", self.address)
    }

    /// TLS handshakes that failed (a client that does not trust the certificate): they
    /// never reach `received`.
    pub fn refused_handshakes(&self) -> usize {
        *self.shared.refused_handshakes.lock().unwrap()
    }

    /// The next requests are answered so, in order; after them, 200.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// The requests answered 200.
    pub fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|request| request.answer == Answer::Ok).collect()
    }

    /// Waits until `count` requests were answered 200 (failing after `within`), and returns
    /// every request received.
    pub async fn wait_for_deliveries(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let arrived = self.shared.arrived.notified();
            if self.delivered().len() >= count {
                return self.received();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {count} deliveries after {within:?}: {:?}",
                self.delivered().len(),
                self.received().iter().map(Received::delivery).collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), arrived).await;
        }
    }

    /// Closes the listener and every open connection: the receiver is down.
    pub async fn stop(mut self) -> Vec<Received> {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts until aborted; the connections live in the `JoinSet`, so aborting this drops them.
async fn accept(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = {
                        let shared = Arc::clone(&shared);
                        service_fn(move |request| answer(request, Arc::clone(&shared)))
                    };
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Err(_) => *shared.refused_handshakes.lock().unwrap() += 1,
                        },
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let scripted = shared.script.lock().unwrap().pop_front().unwrap_or(Answer::Ok);
    shared.received.lock().unwrap().push(Received { headers, body, answer: scripted });
    shared.arrived.notify_waiters();
    let status = match scripted {
        Answer::Ok => StatusCode::OK,
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Hang => std::future::pending().await,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"thanks")));
    *response.status_mut() = status;
    Ok(response)
}

/// `sha256=<hex>` of `body` with `secret`, as a receiver recomputes it.
pub fn expected_signature(secret: &[u8], body: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), body);
    let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// A flagd process; killed if the test ends without stopping it.
pub struct Flagd {
    child: Child,
    pub grpc: String,
    pub management: SocketAddr,
    pub log: PathBuf,
}

impl Flagd {
    /// Starts flagd on `data` with `args` and environment `vars`; logs go to `log`.
    pub fn start(data: &Path, log: &Path, args: &[&str], vars: &[(&str, &str)]) -> Flagd {
        let mut child = flagd(data, args, vars)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::options().create(true).append(true).open(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name))
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    panic!(
                        "flagd did not start: {line:?}; log: {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    )
                })
        };
        Flagd {
            grpc: format!("http://{}", field("grpc=")),
            management: field("management=").parse().unwrap(),
            child,
            log: log.to_owned(),
        }
    }

    pub async fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(Channel::from_shared(self.grpc.clone()).unwrap().connect().await.unwrap())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = crate::support::http_get(self.management, "/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// Polls `/metrics` until `name{labels…}` satisfies `wanted` (failing after 15 s): the
    /// receiver has a request before flagd has its answer and counts it.
    pub async fn metric_becomes(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        wanted: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.metrics().await;
            if let Some(value) = metric(&text, name, labels).filter(|value| wanted(*value)) {
                return value;
            }
            assert!(Instant::now() < deadline, "{name}{labels:?} never as expected:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, and wait for the exit. Async, so the test's own tasks (the receivers, the
    /// closing of its gRPC connections) keep running meanwhile: a blocked test thread kept a
    /// connection open and flagd waited out its shutdown grace for it.
    pub async fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "flagd exited with {status}; log: {}", self.log_text());
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("flagd did not stop within 10 s");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flagd command on ephemeral ports.
pub fn flagd(data: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flagd"));
    command
        .args(["--listen", "127.0.0.1:0", "--management", "127.0.0.1:0"])
        .args(["--sync-listen", "127.0.0.1:0", "--ofrep-listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("FLAGD_LOG", "warn")
        .env_remove("FLAGD_ADMIN_TOKEN")
        .env_remove("FLAGD_SDK_TOKEN")
        .env_remove("FLAGD_WEBHOOK_FORMAT")
        .env_remove("FLAGD_WEBHOOK_CA_FILE");
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

/// The value of a metric line `name{labels…}` whose labels include every one of `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        if !(rest.is_empty() || rest.starts_with('{')) {
            return None;
        }
        let all = labels.iter().all(|(label, wanted)| rest.contains(&format!("{label}=\"{wanted}\"")));
        if all { value.parse().ok() } else { None }
    })
}
