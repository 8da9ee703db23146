//! What the engine does with a window's figures: the guard's verdict made a store
//! transition, with the words history and `rollout status` show ("on: 0.8 % errors over
//! 12,400 evaluations, off: 0.7 % over 40,100"). Pure, like the guard.

use std::collections::BTreeMap;

use flag_core::{CohortFigures, OFF, RolloutPlan};

use super::guard::{self, Breach, Cohort, GuardKind, GuardSettings, Shortfall, Verdict};
use crate::store::Transition;

/// The new path's cohorts: `on`, and `dark` when the plan is a dark launch.
const NEW_PATHS: [&str; 2] = [flag_core::ON, flag_core::DARK];

/// What the engine decided about a step whose hold is over.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Write the next step; the reason names the figures.
    Advance {
        /// The figures, for the history's reason.
        reason: String,
    },
    /// A guard tripped: take the plan's breach action.
    Breach {
        /// Which guard, with the figures.
        why: String,
        /// The guard, for the log and the metric.
        guard: GuardKind,
    },
    /// Too few evaluations: hold on, up to the max hold.
    Extend {
        /// Which cohort fell short, and by how much.
        shortfall: Shortfall,
    },
    /// Too few evaluations until the max hold: pause, saying why.
    GiveUp {
        /// Why.
        why: String,
    },
}

impl Decision {
    /// The name of the decision in `flagd_rollout_decisions_total{decision=…}`.
    pub(crate) fn metric(&self) -> &'static str {
        match self {
            Decision::Advance { .. } => "advance",
            Decision::Breach { .. } => "breach",
            Decision::Extend { .. } => "inconclusive",
            Decision::GiveUp { .. } => "paused",
        }
    }

    /// The store transition it makes (`None`: hold on) and the history's reason.
    pub(crate) fn transition(self) -> Option<(Transition, String)> {
        match self {
            Decision::Advance { reason } => Some((Transition::Advance, reason)),
            Decision::Breach { why, .. } => Some((Transition::Breach { why }, String::new())),
            Decision::Extend { .. } => None,
            Decision::GiveUp { why } => Some((Transition::Pause { why }, String::new())),
        }
    }
}

/// Every decision, for the metric's series at zero.
pub(crate) const DECISIONS: [&str; 4] = ["advance", "breach", "inconclusive", "paused"];

/// The guard's settings of a plan.
pub(crate) fn settings(plan: &RolloutPlan) -> GuardSettings {
    GuardSettings {
        max_error_rate: plan.max_error_rate,
        max_latency_p99_us: plan.max_latency_p99_us,
        ..GuardSettings::new(plan.min_samples, plan.max_error_ratio, plan.max_latency_p99_ratio)
    }
}

/// Judges one window of `plan` at `step` (`figures` by variant); `out_of_time` when the
/// hold cannot be extended any more.
pub(crate) fn decide(
    plan: &RolloutPlan,
    step: usize,
    figures: &BTreeMap<String, CohortFigures>,
    out_of_time: bool,
    held_ms: u64,
) -> Decision {
    let none = CohortFigures::default();
    let of = |variant: &str| figures.get(variant).unwrap_or(&none);
    let control = Cohort { variant: OFF, figures: of(OFF) };
    // The dark cohort runs the new path too: judged when the plan keeps one at this step
    // (its reach above the step's `on`), or when the flag serves one anyway (a reach set
    // before the plan), as the reports show.
    let step_percent = plan.steps.get(step).copied().unwrap_or(100.0);
    let judged = |variant: &str| {
        variant == flag_core::ON
            || plan.dark_percent.is_some_and(|dark| dark > step_percent)
            || figures.contains_key(variant)
    };
    let new_paths: Vec<Cohort<'_>> = NEW_PATHS
        .into_iter()
        .filter(|variant| judged(variant))
        .map(|variant| Cohort { variant, figures: of(variant) })
        .collect();
    let settings = settings(plan);
    match guard::judge(&settings, control, &new_paths) {
        Verdict::Healthy => Decision::Advance { reason: cohorts_text(&control, &new_paths) },
        Verdict::Breach(breach) => {
            Decision::Breach { why: breach_text(&settings, &breach), guard: breach.guard }
        }
        Verdict::Inconclusive(shortfall) if out_of_time => Decision::GiveUp {
            why: format!(
                "inconclusive after {} s: {} had {} evaluations with outcomes in the window, {} needed; \
                 resume to hold the step again",
                held_ms / 1000,
                shortfall.variant,
                grouped(shortfall.evaluations),
                grouped(shortfall.needed)
            ),
        },
        Verdict::Inconclusive(shortfall) => Decision::Extend { shortfall },
    }
}

/// `on: 0.8 % errors over 12,400 evaluations, off: 0.7 % over 40,100`.
fn cohorts_text(control: &Cohort<'_>, new_paths: &[Cohort<'_>]) -> String {
    let mut parts: Vec<String> = new_paths
        .iter()
        .map(|cohort| {
            format!(
                "{}: {} % errors over {} evaluations",
                cohort.variant,
                percent(guard::error_rate(cohort.figures)),
                grouped(cohort.figures.evaluations)
            )
        })
        .collect();
    parts.push(format!(
        "{}: {} % over {}",
        control.variant,
        percent(guard::error_rate(control.figures)),
        grouped(control.figures.evaluations)
    ));
    parts.join(", ")
}

/// Which guard tripped and by how much, then both cohorts' figures.
fn breach_text(settings: &GuardSettings, breach: &Breach) -> String {
    let Breach { guard, variant, new_path, control, z } = breach;
    let rate = |figures: &CohortFigures| percent(guard::error_rate(figures));
    let p99 = |figures: &CohortFigures| figures.latency.quantile_bound_us(0.99).map_or("none".into(), micros);
    let head = match guard {
        GuardKind::ErrorRatio => format!(
            "error rate of {variant} {} % vs {} % on off: more than {}× (z = {z:.2}, needs {})",
            rate(new_path),
            rate(control),
            settings.max_error_ratio,
            settings.z
        ),
        GuardKind::LatencyP99Ratio => format!(
            "p99 latency of {variant} ≤ {} vs ≤ {} on off: more than {}×",
            p99(new_path),
            p99(control),
            settings.max_latency_p99_ratio
        ),
        GuardKind::ErrorRateCeiling => format!(
            "error rate of {variant} {} % above the ceiling of {} %",
            rate(new_path),
            percent(settings.max_error_rate.unwrap_or_default())
        ),
        GuardKind::LatencyP99Ceiling => format!(
            "p99 latency of {variant} ≤ {} above the ceiling of {}",
            p99(new_path),
            settings.max_latency_p99_us.map_or("none".into(), micros)
        ),
    };
    let control_cohort = Cohort { variant: OFF, figures: control };
    let new_cohort = Cohort { variant, figures: new_path };
    format!("{head}; {}", cohorts_text(&control_cohort, &[new_cohort]))
}

/// A rate as a percentage to two decimals, without trailing zeros: `0.8`, `0.75`, `3`.
fn percent(rate: f64) -> String {
    let text = format!("{:.2}", rate * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `12400` → `12,400`.
pub(crate) fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `7500` → `7.5 ms`.
fn micros(us: u64) -> String {
    match us {
        u64::MAX => "above 10 s".into(),
        0..1000 => format!("{us} µs"),
        _ => format!("{} ms", us as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{LatencyHistogram, OnBreach};

    use super::*;

    fn plan() -> RolloutPlan {
        RolloutPlan {
            steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
            hold_ms: 10_000,
            max_hold_ms: 30_000,
            dark_percent: None,
            min_samples: 1_000,
            max_error_ratio: 1.5,
            max_latency_p99_ratio: 2.0,
            max_error_rate: None,
            max_latency_p99_us: None,
            on_breach: OnBreach::Kill,
        }
    }

    fn cohort(evaluations: u64, errors: u64, latency_us: u64) -> CohortFigures {
        let mut latency = LatencyHistogram::default();
        for _ in 0..evaluations {
            latency.record(latency_us);
        }
        CohortFigures { evaluations, successes: evaluations - errors, errors, latency }
    }

    fn figures(on: CohortFigures, off: CohortFigures) -> BTreeMap<String, CohortFigures> {
        BTreeMap::from([("on".to_owned(), on), ("off".to_owned(), off)])
    }

    #[test]
    fn a_healthy_window_advances_naming_the_figures() {
        let decision =
            decide(&plan(), 0, &figures(cohort(12_400, 99, 900), cohort(40_100, 281, 900)), false, 10_000);
        assert_eq!(
            decision,
            Decision::Advance {
                reason: "on: 0.8 % errors over 12,400 evaluations, off: 0.7 % over 40,100".into()
            }
        );
    }

    #[test]
    fn a_breach_names_the_guard_and_the_figures() {
        let decision =
            decide(&plan(), 0, &figures(cohort(4_000, 120, 900), cohort(16_000, 80, 900)), false, 10_000);
        let Decision::Breach { why, guard } = decision else { panic!("{decision:?}") };
        assert_eq!(guard, GuardKind::ErrorRatio);
        assert!(why.starts_with("error rate of on 3 % vs 0.5 % on off: more than 1.5× (z = "), "{why}");
        assert!(why.ends_with("; on: 3 % errors over 4,000 evaluations, off: 0.5 % over 16,000"), "{why}");

        let slow =
            decide(&plan(), 0, &figures(cohort(4_000, 0, 40_000), cohort(16_000, 0, 9_000)), false, 10_000);
        let Decision::Breach { why, .. } = slow else { panic!("{slow:?}") };
        assert!(why.starts_with("p99 latency of on ≤ 50 ms vs ≤ 10 ms on off: more than 2×"), "{why}");
    }

    #[test]
    fn too_few_evaluations_extend_the_hold_then_give_up_saying_why() {
        let few = figures(cohort(420, 0, 900), cohort(40_000, 0, 900));
        let extend = decide(&plan(), 0, &few, false, 10_000);
        assert_eq!(extend.metric(), "inconclusive");
        assert_eq!(extend.clone().transition(), None, "an extension writes nothing");
        let give_up = decide(&plan(), 0, &few, true, 30_000);
        assert_eq!(
            give_up,
            Decision::GiveUp {
                why: "inconclusive after 30 s: on had 420 evaluations with outcomes in the window, 1,000 needed; \
                      resume to hold the step again"
                    .into()
            }
        );
        let dark = RolloutPlan { dark_percent: Some(50.0), ..plan() };
        let no_dark =
            decide(&dark, 0, &figures(cohort(4_000, 0, 900), cohort(16_000, 0, 900)), false, 10_000);
        assert!(matches!(no_dark, Decision::Extend { shortfall } if shortfall.variant == "dark"));
        // From the step that reaches the dark reach (50 %) on, nobody is dark: not waited for.
        let at_reach =
            decide(&dark, 3, &figures(cohort(4_000, 0, 900), cohort(16_000, 0, 900)), false, 10_000);
        assert!(matches!(at_reach, Decision::Advance { .. }), "{at_reach:?}");
        // A dark cohort the plan did not ask for, but the flag serves, is judged too.
        let mut served = figures(cohort(4_000, 0, 900), cohort(16_000, 80, 900));
        served.insert("dark".into(), cohort(4_000, 400, 900));
        let tripped = decide(&plan(), 0, &served, false, 10_000);
        assert!(
            matches!(&tripped, Decision::Breach { why, .. } if why.contains("error rate of dark")),
            "{tripped:?}"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(
            [grouped(0), grouped(999), grouped(1_000), grouped(1_234_567)],
            ["0", "999", "1,000", "1,234,567"]
        );
    }
}
