//! `cargo bench -p flag-benches --bench openfeature`: what OpenFeature providers see of
//! flagd on loopback — `flagd.evaluation.v2.ResolveBoolean` over one HTTP/2 connection and
//! OFREP single-flag evaluation over one keep-alive HTTP/1.1 connection, each one request
//! at a time (latency, and so requests per second of one caller) and, for RPC, 32 in flight
//! on the one connection (throughput); then the in-process sync payload for 1 000 and
//! 10 000 flags, beside our own snapshot frame of the same set.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use flag_benches::{BenchServer, percentile_us};
use flag_core::Flag;
use flag_proto::flagd::evaluation::v2;
use flag_proto::{Requests, snapshot_frame, v1};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const REQUESTS: usize = 20_000;
const IN_FLIGHT: usize = 32;

fn context() -> Option<prost_types::Struct> {
    let key = prost_types::Value { kind: Some(prost_types::value::Kind::StringValue("user-42".into())) };
    Some(prost_types::Struct { fields: [("targetingKey".to_owned(), key)].into_iter().collect() })
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort_unstable();
    println!(
        "{name}: {} requests in {:.2} s = {:.0} req/s; p50 {} us, p99 {} us, max {} us",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile_us(&latencies, 50.0),
        percentile_us(&latencies, 99.0),
        latencies.last().map_or(0, Duration::as_micros),
    );
}

async fn rpc(server: &BenchServer) {
    let channel = tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let client = v2::service_client::ServiceClient::new(channel);
    let request = || v2::ResolveBooleanRequest { flag_key: "chat".into(), context: context() };
    for _ in 0..1_000 {
        client.clone().resolve_boolean(request()).await.unwrap();
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let sent = Instant::now();
        let answer = client.clone().resolve_boolean(request()).await.unwrap().into_inner();
        assert!(answer.value.is_some());
        latencies.push(sent.elapsed());
    }
    report("rpc ResolveBoolean, 1 connection, 1 in flight", latencies, start.elapsed());

    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(REQUESTS / IN_FLIGHT);
                for _ in 0..REQUESTS / IN_FLIGHT {
                    let sent = Instant::now();
                    client.clone().resolve_boolean(request()).await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    report(&format!("rpc ResolveBoolean, 1 connection, {IN_FLIGHT} in flight"), latencies, start.elapsed());
}

/// One OFREP request on a kept-alive connection; the answer's body.
async fn ofrep_call(stream: &mut BufReader<tokio::net::TcpStream>, request: &[u8]) -> String {
    stream.get_mut().write_all(request).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    String::from_utf8(body).unwrap()
}

async fn ofrep(server: &BenchServer) {
    let address = server.ofrep.unwrap();
    let mut stream = BufReader::new(tokio::net::TcpStream::connect(address).await.unwrap());
    stream.get_ref().set_nodelay(true).unwrap();
    let body = r#"{"context":{"targetingKey":"user-42"}}"#;
    let request = format!(
        "POST /ofrep/v1/evaluate/flags/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..1_000 {
        ofrep_call(&mut stream, request.as_bytes()).await;
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let sent = Instant::now();
        let answer = ofrep_call(&mut stream, request.as_bytes()).await;
        assert!(answer.contains("\"value\""), "{answer}");
        latencies.push(sent.elapsed());
    }
    report("ofrep evaluate/flags/chat, 1 connection, 1 in flight", latencies, start.elapsed());
}

fn sync_payloads() {
    for count in [1_000, 10_000] {
        let set = flag_benches::simple_flags(count);
        let flagd_json = openfeature_json::to_flagd(&set).json.to_string();
        let ours = prost::Message::encoded_len(&snapshot_frame(1, "store", &set).decode().unwrap());
        println!(
            "sync payload, {count} flags: flagd JSON {} bytes ({:.0} per flag); our snapshot frame {ours} bytes",
            flagd_json.len(),
            flagd_json.len() as f64 / count as f64
        );
    }
}

fn main() {
    let server = BenchServer::start_with_ofrep().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let channel =
            tonic::transport::Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut admin = v1::admin_client::AdminClient::new(channel);
        let requests = Requests::new("");
        let flag = Flag::rollout("chat", 50.0).unwrap();
        admin.put_flag(requests.put_flag(&flag, None, flag_proto::Authorship::default())).await.unwrap();
        rpc(&server).await;
        ofrep(&server).await;
    });
    sync_payloads();
}
