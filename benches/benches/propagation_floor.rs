//! `cargo bench -p flag-benches --bench propagation_floor`: what fanning one change out to N
//! streams cannot go below on this machine, measured without gRPC, for the `propagation`
//! figures to be read against.
//!
//! - `loopback`: the socket writes alone. The streams share connections as in the
//!   `propagation` bench (`PROPAGATION_PER_CONNECTION`, 200); each connection gets one write
//!   holding its streams' frames, as flagd's coalescing transport sends them, and a reader
//!   thread takes them off the other ends. Times are from the first write to each
//!   connection's receipt.
//! - `encoding`: the HTTP/2 DATA frame header, the gRPC message prefix and the copy of the
//!   encoded change, for every stream: the least an HTTP/2 server does per stream.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flag_benches::percentile_us;
use flag_core::ChangeBatch;

const ROUNDS: usize = 20;
/// An HTTP/2 frame header.
const FRAME_HEADER: usize = 9;
/// gRPC's length prefix of a message.
const MESSAGE_PREFIX: usize = 5;

fn streams_per_connection() -> usize {
    std::env::var("PROPAGATION_PER_CONNECTION").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
}

/// An encoded change like those the `propagation` bench sends (`bench_flag`): one flag.
fn change_frame() -> Vec<u8> {
    let mut flag = flag_core::Flag::rollout("propagated", 50.0).unwrap();
    flag.description = "write 1".into();
    let batch =
        ChangeBatch { from_revision: 1, revision: 2, upserted_flags: vec![flag], ..Default::default() };
    flag_proto::changes_frame(&batch).bytes().to_vec()
}

/// Frames of `streams` streams, as they go on the wire.
fn encode(frame: &[u8], streams: usize, into: &mut Vec<u8>) {
    into.clear();
    into.reserve(streams * (FRAME_HEADER + MESSAGE_PREFIX + frame.len()));
    for stream in 0..streams {
        let length = (MESSAGE_PREFIX + frame.len()) as u32;
        into.extend_from_slice(&length.to_be_bytes()[1..]);
        into.push(0x0); // DATA
        into.push(0x0); // no flags
        into.extend_from_slice(&(stream as u32 * 2 + 1).to_be_bytes());
        into.push(0); // not compressed
        into.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        into.extend_from_slice(frame);
    }
}

fn loopback(streams: usize, frame: &[u8]) {
    let per_connection = streams_per_connection().max(1);
    let connections = streams.div_ceil(per_connection);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut writers = Vec::with_capacity(connections);
    let mut readers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let writer = TcpStream::connect(address).unwrap();
        writer.set_nodelay(true).unwrap();
        writers.push(writer);
        readers.push(listener.accept().unwrap().0);
    }
    let mut payload = Vec::new();
    encode(frame, per_connection.min(streams), &mut payload);
    let length = payload.len();
    let (start_round, rounds) = mpsc::channel::<Instant>();
    let (receipts, received) = mpsc::channel::<Vec<Duration>>();
    let reader = std::thread::spawn(move || {
        let mut buffer = vec![0; length];
        for start in rounds {
            let times = readers
                .iter_mut()
                .map(|reader| {
                    reader.read_exact(&mut buffer).unwrap();
                    start.elapsed()
                })
                .collect();
            receipts.send(times).unwrap();
        }
    });
    let mut times = Vec::with_capacity(connections * ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        start_round.send(start).unwrap();
        for writer in &mut writers {
            writer.write_all(&payload).unwrap();
        }
        times.extend(received.recv().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(start_round);
    reader.join().unwrap();
    times.sort_unstable();
    println!(
        "propagation_floor loopback streams={streams} connections={connections} bytes_per_write={length} p50_us={} p99_us={} max_us={}",
        percentile_us(&times, 50.0),
        percentile_us(&times, 99.0),
        times.last().map_or(0, Duration::as_micros),
    );
}

fn encoding(streams: usize, frame: &[u8]) {
    let mut into = Vec::new();
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        encode(frame, streams, &mut into);
        std::hint::black_box(&into);
        times.push(start.elapsed());
    }
    times.sort_unstable();
    println!(
        "propagation_floor encoding streams={streams} frame_bytes={} p50_us={} max_us={}",
        frame.len(),
        percentile_us(&times, 50.0),
        times.last().map_or(0, Duration::as_micros),
    );
}

fn main() {
    let counts: Vec<usize> = match std::env::var("PROPAGATION_STREAMS") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 100, 1_000, 10_000],
    };
    let frame = change_frame();
    for streams in counts {
        loopback(streams, &frame);
        encoding(streams, &frame);
    }
}
