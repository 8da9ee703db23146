//! `watch_clients ENDPOINT STREAMS PER_CONNECTION`: the propagation bench's streams in a
//! process of their own, as an SDK fleet does not share flagd's cores.
//!
//! Prints `ready` once every stream has its snapshot, then, for each change every stream has
//! received, one line: the receipt times (ns since the Unix epoch), one per stream. Exits
//! when its standard input closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use flag_benches::{Receipts, open_watchers};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, streams, per_connection] = &args[..] else {
        eprintln!("usage: watch_clients ENDPOINT STREAMS PER_CONNECTION");
        std::process::exit(2);
    };
    let streams: usize = streams.parse().expect("STREAMS is a number");
    let per_connection: usize = per_connection.parse().expect("PER_CONNECTION is a number");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The bench closes our standard input when it is done.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    runtime.block_on(async {
        let receipts = Receipts::new(streams);
        open_watchers(endpoint, per_connection, &receipts).await;
        println!("ready");
        loop {
            let times = receipts.all_in(Duration::from_secs(3600)).await;
            receipts.reset();
            let line: Vec<String> = times.iter().map(u64::to_string).collect();
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", line.join(" ")).unwrap();
            out.flush().unwrap();
        }
    });
}
