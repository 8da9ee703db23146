//! `cargo bench -p flag-benches --bench propagation`: from an acknowledged Admin write to its
//! receipt on each of N `Sync.Watch` streams.
//!
//! flagd runs on its own runtime; the writer runs on another, and the watchers either on that
//! one too (`clients=InProcess`) or in a `watch_clients` process of their own
//! (`clients=Process`), as an SDK fleet does not share flagd's cores. A receipt that arrives
//! before the writer has its acknowledgement counts as zero from the acknowledgement;
//! `from_send_*` count from the moment the write was sent.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use flag_benches::{BenchServer, Receipts, bench_flag, now_ns, open_watchers, percentile_us};
use flag_proto::v1;
use tokio::sync::mpsc;

const WRITES: u64 = 20;
/// Streams per HTTP/2 connection (`PROPAGATION_PER_CONNECTION`): an SDK fleet spread over
/// many processes has one stream per connection; a bench client cannot open 10,000 sockets
/// cheaply, so streams share connections.
fn streams_per_connection() -> usize {
    std::env::var("PROPAGATION_PER_CONNECTION").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
}

/// Where the streams run.
#[derive(Clone, Copy, Debug)]
enum Clients {
    /// On a runtime of the bench's process, sharing its cores with flagd's runtime.
    InProcess,
    /// In a `watch_clients` process.
    Process,
}

/// The receipt times of each change, whichever side holds the streams.
enum Receivers {
    InProcess(Arc<Receipts>),
    /// Lines from the `watch_clients` process, and the process (its standard input kept
    /// open until the run ends).
    Process(mpsc::UnboundedReceiver<Vec<u64>>, std::process::Child),
}

impl Receivers {
    async fn open(clients: Clients, endpoint: &str, streams: usize) -> Receivers {
        let per_connection = streams_per_connection();
        match clients {
            Clients::InProcess => {
                let receipts = Receipts::new(streams);
                open_watchers(endpoint, per_connection, &receipts).await;
                Receivers::InProcess(receipts)
            }
            Clients::Process => {
                let mut child = Command::new(env!("CARGO_BIN_EXE_watch_clients"))
                    .args([endpoint, &streams.to_string(), &per_connection.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("start watch_clients");
                let stdout = BufReader::new(child.stdout.take().unwrap());
                let (lines, mut received) = mpsc::unbounded_channel();
                std::thread::spawn(move || {
                    for line in stdout.lines() {
                        let line = line.unwrap();
                        let times = line.split(' ').filter_map(|time| time.parse().ok()).collect();
                        if lines.send(times).is_err() {
                            break;
                        }
                    }
                });
                assert!(received.recv().await.is_some(), "watch_clients is ready");
                Receivers::Process(received, child)
            }
        }
    }

    fn reset(&self) {
        if let Receivers::InProcess(receipts) = self {
            receipts.reset();
        }
    }

    async fn all_in(&mut self) -> Vec<u64> {
        match self {
            Receivers::InProcess(receipts) => receipts.all_in(Duration::from_secs(30)).await,
            Receivers::Process(lines, _) => tokio::time::timeout(Duration::from_secs(30), lines.recv())
                .await
                .expect("every stream receives the change")
                .expect("watch_clients runs"),
        }
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        if let Receivers::Process(_, child) = self {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

fn run(streams: usize, clients: Clients) {
    let server = BenchServer::start().unwrap();
    let client = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    client.block_on(async {
        let before = resident_bytes();
        let mut receivers = Receivers::open(clients, &server.endpoint(), streams).await;
        // With the streams in another process, what this process grew by is flagd's. Only
        // in the process's first such run, and only meaningful when no in-process run came
        // before (`PROPAGATION_CLIENTS=process`): later runs reuse memory the allocator kept
        // from earlier ones, which would understate it.
        let per_stream = match clients {
            Clients::Process if !MEASURED.swap(true, std::sync::atomic::Ordering::Relaxed) => {
                format!(" idle_bytes_per_stream={}", resident_bytes().saturating_sub(before) / streams as u64)
            }
            _ => String::new(),
        };
        let mut admin = v1::admin_client::AdminClient::connect(server.endpoint()).await.unwrap();
        let mut latencies = Vec::with_capacity(streams * WRITES as usize);
        let mut from_send = Vec::with_capacity(streams * WRITES as usize);
        for n in 0..WRITES {
            receivers.reset();
            let request = v1::PutFlagRequest {
                environment: "production".into(),
                flag: Some(bench_flag("propagated", n)),
                expected_version: None,
                change: Some(v1::Change { actor: "bench".into(), reason: "propagation".into() }),
            };
            let sent = now_ns();
            admin.put_flag(request).await.unwrap();
            let acknowledged = now_ns();
            for received in receivers.all_in().await {
                latencies.push(Duration::from_nanos(received.saturating_sub(acknowledged)));
                from_send.push(Duration::from_nanos(received.saturating_sub(sent)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort_unstable();
        from_send.sort_unstable();
        // From the acknowledgement, then from the moment the write was sent, which includes
        // the durable commit and cannot be flattered by a late acknowledgement.
        println!(
            "propagation clients={clients:?} streams={streams} p50_us={} p99_us={} max_us={} from_send_p50_us={} from_send_p99_us={} from_send_max_us={}{per_stream}",
            percentile_us(&latencies, 50.0),
            percentile_us(&latencies, 99.0),
            latencies.last().map_or(0, Duration::as_micros),
            percentile_us(&from_send, 50.0),
            percentile_us(&from_send, 99.0),
            from_send.last().map_or(0, Duration::as_micros),
        );
        drop(receivers);
    });
    client.shutdown_timeout(Duration::from_secs(5));
}

/// Whether a `clients=Process` run has already measured memory in this process (see `run`).
static MEASURED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// This process's resident memory, from `/proc/self/status` (0 where there is none).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

/// `PROPAGATION_CLIENTS`: `in-process`, `process`, or both (the default).
fn clients() -> Vec<Clients> {
    match std::env::var("PROPAGATION_CLIENTS").as_deref() {
        Ok("in-process") => vec![Clients::InProcess],
        Ok("process") => vec![Clients::Process],
        _ => vec![Clients::InProcess, Clients::Process],
    }
}

fn main() {
    let counts: Vec<usize> = match std::env::var("PROPAGATION_STREAMS") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 100, 1_000, 10_000],
    };
    for streams in counts {
        for clients in clients() {
            run(streams, clients);
        }
    }
}
