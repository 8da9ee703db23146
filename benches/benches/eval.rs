//! `cargo bench -p flag-benches --bench eval`: evaluation cost through the SDK's `Client`
//! (`ours/*`; recording an outcome, `ours/record_outcome` and through a `CachedClient`
//! `ours/record_outcome_cached`; a whole observation, `ours/observe`; and
//! `ours/rollout_key_overflow_row` on the counters' shared row), through flag-core alone
//! (`core/*`), and peers, in one run.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};
use criterion::Criterion;
use flag_benches::{
    FLAG_COUNT, LaunchDarklyRollout, ROLLOUT_FLAG, TARGETED_FLAG, YggdrasilRollout, flag_set, snapshot,
    user_keys,
};
use flag_core::{AttrValue, Context};
use flag_sdk::{Client, Evaluate, Outcome};

/// Cycles through the user keys so no answer can be hoisted out of the loop.
struct Keys {
    keys: Vec<String>,
    next: usize,
}

impl Keys {
    fn new() -> Self {
        Keys { keys: user_keys(), next: 0 }
    }

    #[inline]
    fn next(&mut self) -> &str {
        self.next = (self.next + 1) & (self.keys.len() - 1);
        &self.keys[self.next]
    }
}

/// A real `Client` serving the fixture flags (offline mode: the same snapshot holder, hot
/// path and per-thread counters as a client following flagd). The runtime carries its
/// background tasks.
fn client() -> (tokio::runtime::Runtime, tempfile::TempDir, Client) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    std::fs::write(&path, serde_json::to_vec(&flag_set()).unwrap()).unwrap();
    let client = runtime.block_on(Client::offline(&path).connect()).unwrap();
    (runtime, dir, client)
}

fn ours(c: &mut Criterion) {
    let (_runtime, _dir, client) = client();
    let mut group = c.benchmark_group("eval");

    let mut keys = Keys::new();
    group.bench_function("ours/rollout_key", |b| {
        b.iter(|| client.is_enabled(black_box(ROLLOUT_FLAG), &Context::new(keys.next())))
    });

    // A hot loop keeps a `CachedClient` (arc-swap `Cache`: one pointer check per call) and a
    // handle.
    let handle = client.handle(ROLLOUT_FLAG);
    let mut cached = client.cached();
    group.bench_function("ours/rollout_handle", |b| {
        b.iter(|| cached.is_enabled(black_box(&handle), &Context::new(keys.next())))
    });

    // A unit of work's outcome: the variant is re-evaluated from the current snapshot and
    // counted on the thread's row (the first call made the snapshot's outcome counters).
    client.record_outcome(&handle, &Context::new("warm-up"), Outcome::Success);
    group.bench_function("ours/record_outcome", |b| {
        b.iter(|| client.record_outcome(black_box(&handle), &Context::new(keys.next()), Outcome::Error))
    });
    group.bench_function("ours/record_outcome_cached", |b| {
        b.iter(|| cached.record_outcome(black_box(&handle), &Context::new(keys.next()), Outcome::Error))
    });
    group.bench_function("ours/observe", |b| {
        b.iter(|| drop(client.observe(black_box(&handle), &Context::new(keys.next()))))
    });

    let attributes = [
        ("country", AttrValue::Str("NZ")),
        ("age", AttrValue::Number(34.0)),
        ("app_version", AttrValue::Str("2.4.1")),
    ];
    group.bench_function("ours/rules_3_clauses", |b| {
        b.iter(|| {
            let ctx = Context::new(keys.next()).with_attributes(black_box(&attributes));
            client.is_enabled(black_box(TARGETED_FLAG), &ctx)
        })
    });
    group.finish();
}

/// flag-core alone, held the way the SDK holds it but without the SDK: what the client adds
/// on top is the difference between `ours/*` and these.
fn core(c: &mut Criterion) {
    let current = Arc::new(ArcSwap::from_pointee(snapshot().unwrap()));
    let mut group = c.benchmark_group("eval");

    let mut keys = Keys::new();
    group.bench_function("core/rollout_key", |b| {
        b.iter(|| {
            let snapshot = current.load();
            snapshot.is_enabled(black_box(ROLLOUT_FLAG), &Context::new(keys.next()))
        })
    });

    let handle = current.load().handle(ROLLOUT_FLAG);
    let mut cache = Cache::new(Arc::clone(&current));
    group.bench_function("core/rollout_handle", |b| {
        b.iter(|| cache.load().is_enabled(black_box(&handle), &Context::new(keys.next())))
    });

    let attributes = [
        ("country", AttrValue::Str("NZ")),
        ("age", AttrValue::Number(34.0)),
        ("app_version", AttrValue::Str("2.4.1")),
    ];
    group.bench_function("core/rules_3_clauses", |b| {
        b.iter(|| {
            let snapshot = current.load();
            let ctx = Context::new(keys.next()).with_attributes(black_box(&attributes));
            snapshot.is_enabled(black_box(TARGETED_FLAG), &ctx)
        })
    });
    group.finish();
}

/// `ours/rollout_key` from a thread counting on the SDK's shared overflow row (an atomic add
/// instead of a plain store): the cost of evaluating once more threads evaluate at once than
/// the counters have exclusive rows (the cores plus four, 8 to 64). Other threads hold every
/// exclusive row meanwhile. It measures on a thread of its own, which has not claimed a row
/// yet, hence its own `Criterion`.
fn overflow_row(client: &Client) {
    /// At least every exclusive row there can be.
    const ROW_HOLDERS: usize = 64;
    let gate = std::sync::RwLock::new(());
    let closed = gate.write().unwrap();
    let (claimed, all_claimed) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..ROW_HOLDERS {
            let (claimed, gate) = (claimed.clone(), &gate);
            scope.spawn(move || {
                black_box(client.is_enabled(ROLLOUT_FLAG, &Context::new("claims-a-row")));
                claimed.send(()).unwrap();
                drop(gate.read());
            });
        }
        for _ in 0..ROW_HOLDERS {
            all_claimed.recv().unwrap();
        }
        let measure = scope.spawn(|| {
            let mut criterion = Criterion::default().configure_from_args();
            let mut group = criterion.benchmark_group("eval");
            let mut keys = Keys::new();
            group.bench_function("ours/rollout_key_overflow_row", |b| {
                b.iter(|| client.is_enabled(black_box(ROLLOUT_FLAG), &Context::new(keys.next())))
            });
            group.finish();
            criterion.final_summary();
        });
        measure.join().unwrap();
        drop(closed);
    });
}

fn peers(c: &mut Criterion) {
    let yggdrasil = YggdrasilRollout::new(FLAG_COUNT).unwrap();
    let launchdarkly = LaunchDarklyRollout::new(FLAG_COUNT).unwrap();
    let mut group = c.benchmark_group("eval");
    let mut keys = Keys::new();
    group.bench_function("yggdrasil/rollout", |b| {
        b.iter(|| yggdrasil.is_enabled(black_box(ROLLOUT_FLAG), keys.next()))
    });
    group.bench_function("launchdarkly/rollout", |b| {
        b.iter(|| launchdarkly.is_enabled(black_box(ROLLOUT_FLAG), keys.next()))
    });
    group.finish();
}

/// Evaluations per second of `ours/rollout_key` on `threads` threads sharing one client.
fn throughput(client: &Client, threads: usize, run_for: Duration) -> f64 {
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut keys = Keys::new();
                    let (start, mut done, mut enabled) = (Instant::now(), 0u64, 0u64);
                    while start.elapsed() < run_for {
                        for _ in 0..4096 {
                            enabled += u64::from(client.is_enabled(ROLLOUT_FLAG, &Context::new(keys.next())));
                        }
                        done += 4096;
                    }
                    black_box(enabled);
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap() as u64).sum()
    });
    total as f64
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    ours(&mut criterion);
    core(&mut criterion);
    peers(&mut criterion);
    criterion.final_summary();
    {
        let (_runtime, _dir, client) = client();
        overflow_row(&client);
    }

    // `cargo test --benches` passes `--bench` only for real runs; skip the long figure otherwise.
    if std::env::args().any(|a| a == "--bench") {
        let (_runtime, _dir, client) = client();
        let run_for = Duration::from_secs(3);
        let one = throughput(&client, 1, run_for);
        let two = throughput(&client, 2, run_for);
        println!(
            "throughput ours/rollout_key threads=1 ops_per_s={one:.0} threads=2 ops_per_s={two:.0} scaling={:.2}x",
            two / one
        );
    }
}
