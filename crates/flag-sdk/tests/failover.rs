//! A client given several endpoints, replicas of one store: it follows the first that
//! answers, and when that server dies it moves to the next at once and resumes from its
//! revision there, with the builder's default timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flag_core::{Context, Flag};
use flag_sdk::{Client, ConnectError, Evaluate, OnTimeout, Status, TestServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Generous: these waits end as soon as the condition holds; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(10);

/// Two flagds on one store as replicas see it: the same store id, flags and revisions. The
/// test server keeps its store in a file of its own, so the second gets a copy of the
/// first's; a write from then on must be made on both to keep them alike.
async fn replicas() -> (TestServer, TestServer) {
    let mut first = TestServer::start().await.unwrap();
    first.put_flag(&Flag::rollout("chat", 0.0).unwrap()).await.unwrap();
    let mut second = TestServer::start().await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    std::fs::copy(first.data(), second.data()).unwrap();
    first.restart().await.unwrap();
    second.restart().await.unwrap();
    (first, second)
}

/// A TCP relay in front of a server. [`kill`](Self::kill) closes every connection and the
/// listener at once, without a word of HTTP/2, as the kernel does for a SIGKILLed flagd.
struct Proxy {
    address: SocketAddr,
    accept: JoinHandle<()>,
    relays: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(server: &TestServer) -> Proxy {
        let target: SocketAddr = server.endpoint().trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let relays = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::clone(&relays);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accepted.lock().unwrap().push(relay);
            }
        });
        Proxy { address, accept, relays }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    fn kill(self) {
        self.accept.abort();
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

/// An endpoint nothing listens on: a port the OS handed out, closed again.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"));
}

#[tokio::test]
async fn when_the_followed_server_dies_the_next_replica_is_followed_from_the_same_revision() {
    let (first, second) = replicas().await;
    let proxy = Proxy::start(&first).await;
    // The builder's default timings (a 15 s heartbeat timeout, backoff from 100 ms): the
    // switch must not wait for any of them.
    let client =
        Client::builder(format!("{},{}", proxy.endpoint(), second.endpoint())).connect().await.unwrap();
    assert_eq!(client.endpoint(), Some(proxy.endpoint()));
    assert_eq!(client.sync_stats().full_snapshots, 1);
    let user = Context::new("user-1");
    assert!(!client.is_enabled("chat", &user));

    // A change on the first reaches the client; the same write on the second keeps the two
    // replicas alike.
    let mut changes = client.flag_changes("chat");
    let revision = first.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the change in time");
    assert!(client.is_enabled("chat", &user));
    assert_eq!(second.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap(), revision);

    proxy.kill();
    wait_until("the second replica followed", || {
        client.endpoint() == Some(second.endpoint()) && client.status() == Status::Ready
    })
    .await;
    // The flags stayed, and the second resumed the client from its revision: no snapshot.
    assert!(client.is_enabled("chat", &user));
    let stats = client.sync_stats();
    assert_eq!(stats.full_snapshots, 1, "{stats:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");

    // The second's changes arrive, and its kill is acknowledged on the stream now followed.
    let revision = second.put_flag(&Flag::rollout("chat", 0.0).unwrap()).await.unwrap();
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the second's change in time");
    assert!(!client.is_enabled("chat", &user));
    assert_eq!(client.revision(), revision);
    let (_, acknowledged) = second.kill("chat", WAIT).await.unwrap();
    assert_eq!(acknowledged, 1);
}

#[tokio::test]
async fn an_unreachable_first_endpoint_is_passed_over_and_a_start_without_any_names_them_all() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 100.0).unwrap()).await.unwrap();
    let closed = closed_endpoint();
    let client = Client::builder(&closed)
        .fallback_endpoints([server.endpoint()])
        .start_timeout(WAIT, OnTimeout::Fail)
        .connect()
        .await
        .unwrap();
    assert_eq!(client.endpoint(), Some(server.endpoint()));
    assert!(client.is_enabled("chat", &Context::new("user-1")));

    let other = closed_endpoint();
    let result = Client::builder(format!("{closed},{other}"))
        .start_timeout(Duration::from_secs(1), OnTimeout::Fail)
        .connect()
        .await;
    match result {
        Err(ConnectError::Timeout { last_error: Some(error), .. }) => {
            for endpoint in [&closed, &other] {
                assert!(error.contains(&format!("{endpoint}: cannot connect")), "{error}");
            }
        }
        other => panic!("expected a timeout naming both endpoints, got {other:?}"),
    }
    // Every endpoint is checked before any is tried.
    let error = Client::builder(format!("{closed},not a uri")).connect().await.unwrap_err();
    assert!(
        matches!(error, ConnectError::Endpoint { ref endpoint, .. } if endpoint == "not a uri"),
        "{error}"
    );
}
