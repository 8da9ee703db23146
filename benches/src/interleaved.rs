//! Two loops timed in alternation, for a ratio that a shared machine does not skew: the
//! other load on a small VM (a build on the sibling hyperthread) comes and goes over
//! seconds, so two figures measured one after the other, as criterion does, can see
//! different machines; batches of a few microseconds in turn see the same one.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Calls per batch: long enough (tens of µs) that the two clock reads around it cost
/// nothing, short enough that both loops of a round see the machine in the same state.
const BATCH: u32 = 2_000;

/// What [`interleaved`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Interleaved {
    /// The median over rounds of `a`'s batch time over `b`'s in the same round.
    pub ratio: f64,
    /// The median ns per call of `a`, and of `b`.
    pub a_ns: f64,
    /// See `a_ns`.
    pub b_ns: f64,
    /// Rounds measured.
    pub rounds: usize,
}

/// Times a batch of `a`, then one of `b` (the order swapped every round, so neither always
/// runs on a cache the other warmed), for `run_for`, after a short warm-up.
pub fn interleaved<A, B>(
    mut a: impl FnMut() -> A,
    mut b: impl FnMut() -> B,
    run_for: Duration,
) -> Interleaved {
    let (mut a, mut b) = (move || drop(black_box(a())), move || drop(black_box(b())));
    for _ in 0..20 {
        time(&mut a);
        time(&mut b);
    }
    let (mut ratios, mut a_times, mut b_times) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while start.elapsed() < run_for {
        let (ta, tb) = if ratios.len() % 2 == 0 {
            let ta = time(&mut a);
            (ta, time(&mut b))
        } else {
            let tb = time(&mut b);
            (time(&mut a), tb)
        };
        ratios.push(ta / tb);
        a_times.push(ta);
        b_times.push(tb);
    }
    let per_call_ns = |t: f64| t * 1e9 / f64::from(BATCH);
    Interleaved {
        ratio: median(&mut ratios),
        a_ns: per_call_ns(median(&mut a_times)),
        b_ns: per_call_ns(median(&mut b_times)),
        rounds: ratios.len(),
    }
}

/// Seconds for one batch of `f`; generic, so each loop is compiled in line like criterion's.
#[inline(never)]
fn time<F: FnMut()>(f: &mut F) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
