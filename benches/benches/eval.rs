//! `cargo bench -p flag-benches --bench eval`: evaluation cost through the SDK's `Client`
//! (`ours/*`; recording an outcome, `ours/record_outcome` and through a `CachedClient`
//! `ours/record_outcome_cached`; a whole observation, `ours/observe`; and
//! `ours/rollout_key_overflow_row` on the counters' shared row), through flag-core alone
//! (`core/*`), the floor (`floor/*`: the least the rollout's evaluation takes, see
//! `flag_benches::FloorTable`), and peers, in one run. Then it prints the ratios the
//! targets are set in — ours over the floor, the peers over ours — twice: from criterion's
//! medians above, and (in real runs) with each pair timed again in alternation, batch by
//! batch, so that both sides see the machine in the same state.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, Cache};
use criterion::Criterion;
use flag_benches::{
    FLAG_COUNT, FloorTable, Interleaved, LaunchDarklyRollout, ROLLOUT_FLAG, TARGETED_FLAG, YggdrasilRollout,
    flag_set, interleaved, median_ns, snapshot, user_keys,
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
    // The floor, held as the client holds its snapshot; each floor is measured right before
    // the figure it is the floor of, so that both see the machine in the same state.
    let floor = Arc::new(ArcSwap::from_pointee(FloorTable::new(&flag_set())));
    let mut group = c.benchmark_group("eval");

    let mut keys = Keys::new();
    group.bench_function("floor/key", |b| {
        b.iter(|| floor.load().is_enabled(black_box(ROLLOUT_FLAG), keys.next()))
    });
    group.bench_function("ours/rollout_key", |b| {
        b.iter(|| client.is_enabled(black_box(ROLLOUT_FLAG), &Context::new(keys.next())))
    });

    let position = floor.load().position(ROLLOUT_FLAG).unwrap();
    let mut floor_cache = Cache::new(Arc::clone(&floor));
    group.bench_function("floor/handle", |b| {
        b.iter(|| floor_cache.load().is_enabled_at(black_box(position), keys.next()))
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

/// `numerator ÷ denominator` (criterion ids in group `eval`) and the target it is held to.
struct Ratio {
    numerator: &'static str,
    denominator: &'static str,
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    None,
}

impl Target {
    fn verdict(self, ratio: f64) -> String {
        let met = |ok: bool| if ok { "met" } else { "MISSED" };
        match self {
            Target::AtMost(limit) => format!(" target<={limit}x {}", met(ratio <= limit)),
            Target::AtLeast(limit) => format!(" target>={limit}x {}", met(ratio >= limit)),
            Target::None => String::new(),
        }
    }
}

const RATIOS: [Ratio; 6] = [
    Ratio { numerator: "ours/rollout_key", denominator: "floor/key", target: Target::AtMost(1.25) },
    Ratio { numerator: "ours/rollout_handle", denominator: "floor/handle", target: Target::AtMost(1.25) },
    Ratio { numerator: "core/rollout_key", denominator: "floor/key", target: Target::None },
    Ratio { numerator: "core/rollout_handle", denominator: "floor/handle", target: Target::None },
    Ratio { numerator: "yggdrasil/rollout", denominator: "ours/rollout_key", target: Target::AtLeast(5.0) },
    Ratio {
        numerator: "launchdarkly/rollout",
        denominator: "ours/rollout_key",
        target: Target::AtLeast(10.0),
    },
];

/// Prints each ratio of [`RATIOS`] whose two figures this run measured, from criterion's
/// medians of this run read back from its `estimates.json` (not a second measurement):
/// the median, not the mean or slope it prints, because a sample the scheduler interrupted
/// moves those and barely moves the median. The two figures were measured seconds apart,
/// though, so see also [`print_interleaved_ratios`].
fn print_criterion_ratios(since: SystemTime) {
    for Ratio { numerator, denominator, target } in RATIOS {
        let (Some(top), Some(bottom)) =
            (median_ns("eval", numerator, since), median_ns("eval", denominator, since))
        else {
            continue;
        };
        let ratio = top / bottom;
        let verdict = target.verdict(ratio);
        println!(
            "ratio(criterion medians) {numerator} / {denominator} = {ratio:.2}x ({top:.1} ns / {bottom:.1} ns){verdict}"
        );
    }
}

/// The same ratios with the two sides timed in alternation, batch by batch, with the loops
/// of the criterion benches above (`flag_benches::interleaved`): on a shared machine whose
/// other load changes from second to second, both sides of each ratio then see the same
/// machine, which two criterion measurements taken one after the other do not.
fn print_interleaved_ratios(run_for: Duration) {
    let (_runtime, _dir, client) = client();
    let floor = Arc::new(ArcSwap::from_pointee(FloorTable::new(&flag_set())));
    let current = Arc::new(ArcSwap::from_pointee(snapshot().unwrap()));
    let yggdrasil = YggdrasilRollout::new(FLAG_COUNT).unwrap();
    let launchdarkly = LaunchDarklyRollout::new(FLAG_COUNT).unwrap();
    let (handle, core_handle) = (client.handle(ROLLOUT_FLAG), current.load().handle(ROLLOUT_FLAG));
    let position = floor.load().position(ROLLOUT_FLAG).unwrap();
    let (mut cached, mut floor_cache, mut core_cache) =
        (client.cached(), Cache::new(Arc::clone(&floor)), Cache::new(Arc::clone(&current)));
    let (mut k1, mut k2) = (Keys::new(), Keys::new());
    let mut ours_key = || client.is_enabled(black_box(ROLLOUT_FLAG), &Context::new(k1.next()));
    let mut floor_key = || floor.load().is_enabled(black_box(ROLLOUT_FLAG), k2.next());
    let report = |numerator: &str, denominator: &str, target: Target, measured: Interleaved| {
        let Interleaved { ratio, a_ns, b_ns, rounds } = measured;
        let verdict = target.verdict(ratio);
        println!(
            "ratio(interleaved) {numerator} / {denominator} = {ratio:.2}x ({a_ns:.1} ns / {b_ns:.1} ns, {rounds} rounds){verdict}"
        );
    };
    report(
        "ours/rollout_key",
        "floor/key",
        Target::AtMost(1.25),
        interleaved(&mut ours_key, &mut floor_key, run_for),
    );
    let (mut k3, mut k4) = (Keys::new(), Keys::new());
    report(
        "ours/rollout_handle",
        "floor/handle",
        Target::AtMost(1.25),
        interleaved(
            || cached.is_enabled(black_box(&handle), &Context::new(k3.next())),
            || floor_cache.load().is_enabled_at(black_box(position), k4.next()),
            run_for,
        ),
    );
    let mut k5 = Keys::new();
    report(
        "core/rollout_key",
        "floor/key",
        Target::None,
        interleaved(
            || current.load().is_enabled(black_box(ROLLOUT_FLAG), &Context::new(k5.next())),
            &mut floor_key,
            run_for,
        ),
    );
    let (mut k6, mut k7) = (Keys::new(), Keys::new());
    report(
        "core/rollout_handle",
        "floor/handle",
        Target::None,
        interleaved(
            || core_cache.load().is_enabled(black_box(&core_handle), &Context::new(k6.next())),
            || floor_cache.load().is_enabled_at(black_box(position), k7.next()),
            run_for,
        ),
    );
    let mut k8 = Keys::new();
    report(
        "yggdrasil/rollout",
        "ours/rollout_key",
        Target::AtLeast(5.0),
        interleaved(|| yggdrasil.is_enabled(black_box(ROLLOUT_FLAG), k8.next()), &mut ours_key, run_for),
    );
    let mut k9 = Keys::new();
    report(
        "launchdarkly/rollout",
        "ours/rollout_key",
        Target::AtLeast(10.0),
        interleaved(|| launchdarkly.is_enabled(black_box(ROLLOUT_FLAG), k9.next()), &mut ours_key, run_for),
    );
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
    let started = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    ours(&mut criterion);
    core(&mut criterion);
    peers(&mut criterion);
    criterion.final_summary();
    {
        let (_runtime, _dir, client) = client();
        overflow_row(&client);
    }
    print_criterion_ratios(started);

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
        print_interleaved_ratios(Duration::from_secs(2));
    }
}
