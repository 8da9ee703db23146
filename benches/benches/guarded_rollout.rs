//! `cargo bench -p flag-benches --bench guarded_rollout`: flagd's rollout guard (the
//! decision code itself, `flagd::judge`) over seeded simulated windows.
//!
//! The model: a plan of five steps (1, 5, 25, 50, 100 %), each held for one window of
//! 10 s, judged at the end of the hold on that window's figures, as flagd's engine judges
//! it. Each cohort (`on` and the control `off`) serves `rate` evaluations a second, each
//! one a unit of work whose outcome is an error with the cohort's probability (so a
//! window's errors are binomial) and whose latency is drawn from one exponential
//! distribution (mean 2 ms) for both cohorts. A healthy plan's windows have equal rates
//! (0.5 %), and one window, chosen per run, has a site-wide spike: for 3 s of it both
//! cohorts fail 5 % of their work. A bad plan's new path fails 2× or 1.5× as often as the
//! control from the first window. Every run has its own seed, so a run of this bench
//! prints the same figures every time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use flag_core::CohortFigures;
use flagd::{Cohort, GuardSettings, Verdict, judge};

const RUNS: u64 = 10_000;
const WINDOW_SECONDS: u64 = 10;
const STEPS: usize = 5;
const BASE_ERROR_RATE: f64 = 0.005;
const SPIKE_ERROR_RATE: f64 = 0.05;
const SPIKE_SECONDS: u64 = 3;
const MEAN_LATENCY_US: f64 = 2_000.0;

/// What one simulated run of a plan looks like.
#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    /// The new path's error rate over the control's.
    error_multiple: f64,
    /// How many windows a breach must come within to count as detected; for a healthy
    /// plan, any breach in its windows is a false alarm.
    windows: usize,
    spike: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { name: "healthy, with a site-wide spike", error_multiple: 1.0, windows: STEPS, spike: true },
    Scenario { name: "2× errors (1 % vs 0.5 %)", error_multiple: 2.0, windows: 2, spike: false },
    Scenario { name: "1.5× errors (0.75 % vs 0.5 %)", error_multiple: 1.5, windows: 4, spike: false },
];

/// One cohort's window: `evaluations` units of work, the first `spiked` of them (a spike's
/// share of the window) failing at the spike's rate.
fn window(
    rng: &mut fastrand::Rng,
    evaluations: u64,
    spiked: u64,
    error_rate: f64,
    latency: bool,
) -> CohortFigures {
    let mut figures = CohortFigures { evaluations, ..CohortFigures::default() };
    figures.errors =
        binomial(rng, spiked, SPIKE_ERROR_RATE) + binomial(rng, evaluations - spiked, error_rate);
    figures.successes = evaluations - figures.errors;
    if latency {
        for _ in 0..evaluations {
            let micros = -MEAN_LATENCY_US * (1.0 - rng.f64()).ln();
            figures.latency.record(micros as u64);
        }
    }
    figures
}

/// Binomial(trials, p) by skipping from one success to the next (geometric gaps): as
/// exact as drawing every trial, at the cost of the successes only.
fn binomial(rng: &mut fastrand::Rng, trials: u64, p: f64) -> u64 {
    let log_miss = (1.0 - p).ln();
    let (mut successes, mut at) = (0, 0u64);
    loop {
        let gap = ((1.0 - rng.f64()).ln() / log_miss).floor() as u64;
        at = at.saturating_add(gap).saturating_add(1);
        if at > trials {
            return successes;
        }
        successes += 1;
    }
}

/// The share of runs in which the plan was rolled back within the scenario's windows.
fn breached_share(settings: &GuardSettings, scenario: Scenario, rate: u64, latency: bool) -> f64 {
    let evaluations = rate * WINDOW_SECONDS;
    let mut breached = 0;
    for seed in 0..RUNS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let spike_window = scenario.spike.then(|| rng.usize(0..STEPS));
        for window_index in 0..scenario.windows {
            let spiked = if spike_window == Some(window_index) { rate * SPIKE_SECONDS } else { 0 };
            let off = window(&mut rng, evaluations, spiked, BASE_ERROR_RATE, latency);
            let on =
                window(&mut rng, evaluations, spiked, BASE_ERROR_RATE * scenario.error_multiple, latency);
            let verdict = judge(
                settings,
                Cohort { variant: "off", figures: &off },
                &[Cohort { variant: "on", figures: &on }],
            );
            if matches!(verdict, Verdict::Breach(_)) {
                breached += 1;
                break;
            }
        }
    }
    breached as f64 / RUNS as f64
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let defaults = GuardSettings::new(1_000, 1.5, 2.0);
    println!("{RUNS} seeded runs per cell; windows of {WINDOW_SECONDS} s; five steps held one window each\n");
    println!(
        "## The guard's defaults (z {:.3}, ratio {}, min difference {} points), by traffic",
        defaults.z,
        defaults.max_error_ratio,
        defaults.min_error_difference * 100.0
    );
    println!(
        "| evaluations/s per cohort | {} | {} | {} |",
        SCENARIOS[0].name, SCENARIOS[1].name, SCENARIOS[2].name
    );
    println!("|---|---|---|---|");
    for rate in [200, 500, 1_000, 2_000, 5_000] {
        let latency = rate == 200;
        let cells: Vec<String> = SCENARIOS
            .iter()
            .map(|scenario| format!("{:.2} %", 100.0 * breached_share(&defaults, *scenario, rate, latency)))
            .collect();
        println!("| {rate}{} | {} |", if latency { " (with latencies)" } else { "" }, cells.join(" | "));
    }
    println!("\n## At 200 evaluations/s per cohort, by setting");
    println!(
        "| z (one-sided confidence) | ratio | {} | {} | {} |",
        SCENARIOS[0].name, SCENARIOS[1].name, SCENARIOS[2].name
    );
    println!("|---|---|---|---|---|");
    for (z, confidence) in [(1.645, "95 %"), (2.326, "99 %"), (3.09, "99.9 %")] {
        for ratio in [1.2, 1.5] {
            let settings = GuardSettings { z, max_error_ratio: ratio, ..defaults };
            let cells: Vec<String> = SCENARIOS
                .iter()
                .map(|scenario| format!("{:.2} %", 100.0 * breached_share(&settings, *scenario, 200, false)))
                .collect();
            println!("| {z} ({confidence}) | {ratio} | {} |", cells.join(" | "));
        }
    }
}
