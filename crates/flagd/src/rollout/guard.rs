//! The guard: is a rollout's new path doing worse than its control, judged on figures from
//! the same window?
//!
//! Comparing the two cohorts *at the same time* is what keeps a site-wide bad minute (which
//! hits both) from reading as a breach. The error guard is a one-sided two-proportion
//! z-test (pooled standard error) at [`GuardSettings::z`], and it also asks for an observed
//! ratio above [`GuardSettings::max_error_ratio`] and a difference of at least
//! [`GuardSettings::min_error_difference`], so a significant but tiny increase (0.01 % to
//! 0.02 %) is not a breach. The latency guard compares the p99 buckets of the two
//! histograms. Optional ceilings hold the new path to absolute limits whatever the control
//! does. Too few evaluations in either cohort is [`Verdict::Inconclusive`], never healthy.

use flag_core::CohortFigures;

/// What a plan's guard tolerates; checked when the plan is started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardSettings {
    /// Each cohort needs at least this many evaluations in the window to be judged.
    pub min_samples: u64,
    /// The new path's error rate may be up to this many times the control's (> 1).
    pub max_error_ratio: f64,
    /// The new path's p99 latency may be up to this many times the control's (> 1).
    pub max_latency_p99_ratio: f64,
    /// Smallest error-rate difference (a fraction: 0.001 is 0.1 percentage points) that
    /// counts as a breach, however significant.
    pub min_error_difference: f64,
    /// The one-sided z the error difference must reach: 2.326 is 99 % confidence, 3.09 is
    /// 99.9 %.
    pub z: f64,
    /// Optional ceiling on the new path's error rate (a fraction), whatever the control does.
    pub max_error_rate: Option<f64>,
    /// Optional ceiling on the new path's p99 latency in microseconds.
    pub max_latency_p99_us: Option<u64>,
}

impl GuardSettings {
    /// The defaults of a plan, with the ratios and sample minimum it names: 99.9 %
    /// confidence (see the README's "Guarded rollouts" for why) and a 0.1 point difference.
    pub fn new(min_samples: u64, max_error_ratio: f64, max_latency_p99_ratio: f64) -> Self {
        GuardSettings {
            min_samples,
            max_error_ratio,
            max_latency_p99_ratio,
            min_error_difference: 0.001,
            z: 3.09,
            max_error_rate: None,
            max_latency_p99_us: None,
        }
    }
}

/// One cohort's figures in a window, with the variant it serves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cohort<'a> {
    /// The variant (`on`, `dark`, or the control `off`).
    pub variant: &'a str,
    /// What it did in the window.
    pub figures: &'a CohortFigures,
}

/// Which guard a breach tripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuardKind {
    /// The error rate is significantly higher than the control's, by more than the ratio.
    ErrorRatio,
    /// The p99 latency is more than the ratio above the control's.
    LatencyP99Ratio,
    /// The error rate is above the absolute ceiling.
    ErrorRateCeiling,
    /// The p99 latency is above the absolute ceiling.
    LatencyP99Ceiling,
}

/// Why a window could not be judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// The cohort short of samples.
    pub variant: String,
    /// The evaluations it had.
    pub evaluations: u64,
    /// The evaluations it needed.
    pub needed: u64,
}

/// A guard the new path tripped, with the figures that tripped it.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    /// Which guard.
    pub guard: GuardKind,
    /// The new path's variant that tripped it.
    pub variant: String,
    /// Its figures in the window.
    pub new_path: CohortFigures,
    /// The control's figures in the same window.
    pub control: CohortFigures,
    /// The z of the error difference (0 when neither cohort had an error).
    pub z: f64,
}

/// The guard's judgement of one window.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Every new-path cohort was judged and none tripped a guard.
    Healthy,
    /// A cohort had too few evaluations to judge: the hold is extended, never advanced.
    Inconclusive(Shortfall),
    /// A guard tripped: act at once.
    Breach(Box<Breach>),
}

/// Judges the new path's cohorts against the control over one window. A breach of any
/// cohort wins over a shortfall of another: a cohort already shown to hurt is acted on.
pub fn judge(settings: &GuardSettings, control: Cohort<'_>, new_paths: &[Cohort<'_>]) -> Verdict {
    if let Some(short) = short_of_samples(settings, control) {
        // The ceilings need no control: a new path over one is acted on all the same.
        for new_path in new_paths.iter().filter(|cohort| short_of_samples(settings, **cohort).is_none()) {
            if let Some(guard) = over_ceiling(settings, new_path.figures) {
                return Verdict::Breach(Box::new(Breach {
                    guard,
                    variant: new_path.variant.to_owned(),
                    new_path: *new_path.figures,
                    control: *control.figures,
                    z: error_z(new_path.figures, control.figures),
                }));
            }
        }
        return Verdict::Inconclusive(short);
    }
    let mut shortfall = None;
    for new_path in new_paths {
        if let Some(short) = short_of_samples(settings, *new_path) {
            shortfall.get_or_insert(short);
            continue;
        }
        if let Some(guard) = tripped(settings, control.figures, new_path.figures) {
            return Verdict::Breach(Box::new(Breach {
                guard,
                variant: new_path.variant.to_owned(),
                new_path: *new_path.figures,
                control: *control.figures,
                z: error_z(new_path.figures, control.figures),
            }));
        }
    }
    match shortfall {
        Some(short) => Verdict::Inconclusive(short),
        None => Verdict::Healthy,
    }
}

fn short_of_samples(settings: &GuardSettings, cohort: Cohort<'_>) -> Option<Shortfall> {
    (cohort.figures.evaluations < settings.min_samples || cohort.figures.outcomes() == 0).then(|| Shortfall {
        variant: cohort.variant.to_owned(),
        evaluations: cohort.figures.evaluations,
        needed: settings.min_samples,
    })
}

/// The first guard `new_path` trips against `control`; the ceilings first, as they need
/// no comparison.
fn tripped(settings: &GuardSettings, control: &CohortFigures, new_path: &CohortFigures) -> Option<GuardKind> {
    if let Some(guard) = over_ceiling(settings, new_path) {
        return Some(guard);
    }
    let new_rate = error_rate(new_path);
    let control_rate = error_rate(control);
    let new_p99 = p99(settings, new_path);
    let significant = error_z(new_path, control) >= settings.z;
    let large = new_rate - control_rate >= settings.min_error_difference;
    let above_ratio = new_rate > control_rate * settings.max_error_ratio;
    if significant && large && above_ratio {
        return Some(GuardKind::ErrorRatio);
    }
    if let (Some(new_p99), Some(control_p99)) = (new_p99, p99(settings, control))
        && new_p99 as f64 > control_p99 as f64 * settings.max_latency_p99_ratio
    {
        return Some(GuardKind::LatencyP99Ratio);
    }
    None
}

/// The absolute ceiling `new_path` is over, if any.
fn over_ceiling(settings: &GuardSettings, new_path: &CohortFigures) -> Option<GuardKind> {
    if settings.max_error_rate.is_some_and(|ceiling| error_rate(new_path) > ceiling) {
        return Some(GuardKind::ErrorRateCeiling);
    }
    match (settings.max_latency_p99_us, p99(settings, new_path)) {
        (Some(ceiling), Some(p99)) if p99 > ceiling => Some(GuardKind::LatencyP99Ceiling),
        _ => None,
    }
}

/// Errors over reported outcomes (0 with no outcomes).
pub(crate) fn error_rate(figures: &CohortFigures) -> f64 {
    match figures.outcomes() {
        0 => 0.0,
        outcomes => figures.errors as f64 / outcomes as f64,
    }
}

/// The one-sided two-proportion z of "the new path errs more": the difference of the rates
/// over the pooled standard error.
fn error_z(new_path: &CohortFigures, control: &CohortFigures) -> f64 {
    let (n1, n0) = (new_path.outcomes() as f64, control.outcomes() as f64);
    if n1 == 0.0 || n0 == 0.0 {
        return 0.0;
    }
    let pooled = (new_path.errors + control.errors) as f64 / (n1 + n0);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)).sqrt();
    if standard_error == 0.0 {
        return 0.0;
    }
    (error_rate(new_path) - error_rate(control)) / standard_error
}

/// The p99 bucket bound, when the cohort reported enough latencies for a p99 to mean more
/// than its slowest one; a cohort without latencies is not judged on latency.
fn p99(settings: &GuardSettings, figures: &CohortFigures) -> Option<u64> {
    if figures.latency.total() < settings.min_samples.max(100) {
        return None;
    }
    figures.latency.quantile_bound_us(0.99)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flag_core::LatencyHistogram;

    fn figures(outcomes: u64, errors: u64, latency_us: u64) -> CohortFigures {
        let mut latency = LatencyHistogram::default();
        for _ in 0..outcomes {
            latency.record(latency_us);
        }
        CohortFigures { evaluations: outcomes, successes: outcomes - errors, errors, latency }
    }

    fn settings() -> GuardSettings {
        GuardSettings::new(1_000, 1.5, 2.0)
    }

    fn verdict(settings: &GuardSettings, off: &CohortFigures, on: &CohortFigures) -> Verdict {
        judge(settings, Cohort { variant: "off", figures: off }, &[Cohort { variant: "on", figures: on }])
    }

    fn tripped_guard(verdict: Verdict) -> Option<GuardKind> {
        match verdict {
            Verdict::Breach(breach) => Some(breach.guard),
            _ => None,
        }
    }

    #[test]
    fn alike_cohorts_are_healthy() {
        let off = figures(20_000, 100, 1_000);
        let on = figures(20_000, 110, 1_000);
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
    }

    #[test]
    fn fewer_evaluations_than_the_minimum_in_either_cohort_is_inconclusive() {
        let plenty = figures(5_000, 0, 1_000);
        let few = figures(999, 500, 1_000);
        assert_eq!(
            verdict(&settings(), &plenty, &few),
            Verdict::Inconclusive(Shortfall { variant: "on".into(), evaluations: 999, needed: 1_000 })
        );
        assert_eq!(
            verdict(&settings(), &few, &plenty),
            Verdict::Inconclusive(Shortfall { variant: "off".into(), evaluations: 999, needed: 1_000 })
        );
    }

    #[test]
    fn evaluations_without_any_reported_outcome_are_inconclusive() {
        let off = figures(5_000, 10, 1_000);
        let silent = CohortFigures { evaluations: 5_000, ..CohortFigures::default() };
        assert!(matches!(verdict(&settings(), &off, &silent), Verdict::Inconclusive(_)));
    }

    #[test]
    fn a_significantly_higher_error_rate_above_the_ratio_is_a_breach_with_its_figures() {
        // 1 % against 0.5 % over 20,000 each: z ≈ 5.8.
        let off = figures(20_000, 100, 1_000);
        let on = figures(20_000, 200, 1_000);
        let Verdict::Breach(breach) = verdict(&settings(), &off, &on) else {
            panic!("expected a breach");
        };
        assert_eq!((breach.guard, breach.variant.as_str()), (GuardKind::ErrorRatio, "on"));
        assert_eq!((breach.new_path.errors, breach.control.errors), (200, 100));
        assert!(breach.z > 5.0, "z = {}", breach.z);
    }

    #[test]
    fn a_double_rate_on_too_few_errors_is_not_significant() {
        // 1 % against 0.5 % over 1,000 each: 10 errors against 5, z ≈ 1.3.
        let off = figures(1_000, 5, 1_000);
        let on = figures(1_000, 10, 1_000);
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
    }

    #[test]
    fn a_significant_increase_smaller_than_the_minimum_difference_is_not_a_breach() {
        // 0.02 % against 0.01 % over 2,000,000 each: z ≈ 8, difference 0.01 points.
        let off =
            CohortFigures { evaluations: 2_000_000, successes: 1_999_800, errors: 200, ..Default::default() };
        let on =
            CohortFigures { evaluations: 2_000_000, successes: 1_999_600, errors: 400, ..Default::default() };
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
        let sensitive = GuardSettings { min_error_difference: 0.0001, ..settings() };
        assert_eq!(tripped_guard(verdict(&sensitive, &off, &on)), Some(GuardKind::ErrorRatio));
    }

    #[test]
    fn a_significant_increase_within_the_ratio_is_not_a_breach() {
        // 1.3 % against 1 % over 100,000 each: significant, above 0.1 points, but 1.3×.
        let off = figures(100_000, 1_000, 1_000);
        let on = figures(100_000, 1_300, 1_000);
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
    }

    #[test]
    fn errors_on_the_new_path_only_are_a_breach_when_significant() {
        let off = figures(10_000, 0, 1_000);
        let on = figures(10_000, 30, 1_000);
        assert_eq!(tripped_guard(verdict(&settings(), &off, &on)), Some(GuardKind::ErrorRatio));
    }

    #[test]
    fn a_p99_more_than_the_ratio_above_the_control_is_a_latency_breach() {
        let off = figures(5_000, 0, 1_000);
        let mut on = figures(5_000, 0, 1_000);
        for _ in 0..100 {
            on.latency.record(5_000);
        }
        assert_eq!(tripped_guard(verdict(&settings(), &off, &on)), Some(GuardKind::LatencyP99Ratio));
        // At 2× exactly (1 ms against 2 ms buckets) the ratio is not exceeded.
        let mut at_ratio = figures(5_000, 0, 1_000);
        for _ in 0..100 {
            at_ratio.latency.record(2_000);
        }
        assert_eq!(verdict(&settings(), &off, &at_ratio), Verdict::Healthy);
    }

    #[test]
    fn cohorts_without_enough_latencies_are_not_judged_on_latency() {
        let off = CohortFigures { evaluations: 5_000, successes: 5_000, ..Default::default() };
        let on = figures(5_000, 0, 900_000);
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
    }

    #[test]
    fn the_ceilings_hold_whatever_the_control_does() {
        let off = figures(5_000, 250, 40_000);
        let on = figures(5_000, 250, 40_000);
        assert_eq!(verdict(&settings(), &off, &on), Verdict::Healthy);
        let error_ceiling = GuardSettings { max_error_rate: Some(0.04), ..settings() };
        assert_eq!(tripped_guard(verdict(&error_ceiling, &off, &on)), Some(GuardKind::ErrorRateCeiling));
        let latency_ceiling = GuardSettings { max_latency_p99_us: Some(30_000), ..settings() };
        assert_eq!(tripped_guard(verdict(&latency_ceiling, &off, &on)), Some(GuardKind::LatencyP99Ceiling));
    }

    #[test]
    fn a_breach_of_one_new_path_wins_over_a_shortfall_of_another() {
        let off = figures(20_000, 100, 1_000);
        let dark = figures(10, 0, 1_000);
        let on = figures(20_000, 300, 1_000);
        let cohorts = [Cohort { variant: "dark", figures: &dark }, Cohort { variant: "on", figures: &on }];
        let Verdict::Breach(breach) = judge(&settings(), Cohort { variant: "off", figures: &off }, &cohorts)
        else {
            panic!("expected a breach");
        };
        assert_eq!(breach.variant, "on");
        let healthy_on = figures(20_000, 100, 1_000);
        let cohorts =
            [Cohort { variant: "dark", figures: &dark }, Cohort { variant: "on", figures: &healthy_on }];
        assert!(matches!(
            judge(&settings(), Cohort { variant: "off", figures: &off }, &cohorts),
            Verdict::Inconclusive(Shortfall { ref variant, .. }) if variant == "dark"
        ));
    }
}
