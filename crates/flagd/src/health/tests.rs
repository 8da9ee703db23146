use flag_core::{CohortReport, Flag, FlagSet};

use super::*;

fn catalog() -> Catalog {
    let set = FlagSet { flags: vec![Flag::rollout("chat", 10.0).unwrap()], segments: vec![] };
    Catalog::of(1, &set)
}

fn report(instance: &str, sequence: u64, cohorts: &[(&str, &str, u64, u64)]) -> HealthReport {
    let cohorts = cohorts
        .iter()
        .map(|(flag, variant, successes, errors)| {
            let mut figures = CohortFigures {
                evaluations: successes + errors,
                successes: *successes,
                errors: *errors,
                ..Default::default()
            };
            figures.latency.record(900);
            CohortReport { flag: (*flag).into(), variant: (*variant).into(), revision: 1, figures }
        })
        .collect();
    HealthReport { instance: instance.into(), sequence, cohorts }
}

#[tokio::test(start_paused = true)]
async fn reports_sum_per_variant_within_a_span_of_windows_and_older_windows_are_let_go() {
    let health = HealthFigures::default();
    let start = Instant::now();
    health.apply(
        "production",
        report("a", 1, &[("chat", "on", 90, 10), ("chat", "off", 100, 0)]),
        &catalog(),
    );
    health.apply("production", report("b", 1, &[("chat", "on", 45, 5)]), &catalog());
    tokio::time::advance(WINDOW * 3).await;
    let later = Instant::now();
    health.apply("production", report("a", 2, &[("chat", "on", 1, 1)]), &catalog());
    // Another environment's figures of the same flag stay apart.
    health.apply("staging", report("c", 1, &[("chat", "on", 7, 0)]), &catalog());

    let first = health.figures("production", "chat", 0, start, start);
    assert_eq!((first.variants["on"].successes, first.variants["on"].errors), (135, 15));
    assert_eq!(first.variants["off"].evaluations, 100);
    assert_eq!(first.variants["on"].latency.total(), 2);
    assert_eq!(first.clients, 2);
    let both = health.figures("production", "chat", 0, start, later);
    assert_eq!(both.variants["on"].outcomes(), 152);
    let last = health.figures("production", "chat", 0, later, later);
    assert_eq!((last.variants["on"].outcomes(), last.clients), (2, 1));
    assert!(!last.variants.contains_key("off"), "no figures in the span: no entry");
    assert_eq!(health.figures("staging", "chat", 0, start, later).variants["on"].successes, 7);

    tokio::time::advance(RETENTION).await;
    health.apply("production", report("a", 3, &[("chat", "on", 1, 0)]), &catalog());
    assert!(
        health.figures("production", "chat", 0, start, later).variants.is_empty(),
        "an hour later: let go"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resent_report_is_counted_once_and_sequences_count_per_instance() {
    let health = HealthFigures::default();
    let now = Instant::now();
    assert_eq!(
        health.apply("production", report("a", 1, &[("chat", "on", 3, 0)]), &catalog()),
        Applied::Counted
    );
    assert_eq!(
        health.apply("production", report("a", 1, &[("chat", "on", 3, 0)]), &catalog()),
        Applied::Duplicate
    );
    assert_eq!(
        health.apply("production", report("b", 1, &[("chat", "on", 3, 0)]), &catalog()),
        Applied::Counted
    );
    assert_eq!(
        health.apply("production", report("a", 2, &[("chat", "on", 3, 0)]), &catalog()),
        Applied::Counted
    );
    assert_eq!(health.figures("production", "chat", 0, now, now).variants["on"].successes, 9);
    let counts = health.inner().counts;
    assert_eq!((counts.reports_counted, counts.reports_duplicate), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn cohorts_of_unknown_flags_or_variants_are_ignored_and_counted() {
    let health = HealthFigures::default();
    let now = Instant::now();
    let cohorts = [("chat", "on", 1, 0), ("ghost", "on", 5, 0), ("chat", "purple", 5, 0)];
    health.apply("production", report("a", 1, &cohorts), &catalog());
    let figures = health.figures("production", "chat", 0, now, now);
    assert_eq!(figures.variants.keys().collect::<Vec<_>>(), ["on"]);
    assert!(health.figures("production", "ghost", 0, now, now).variants.is_empty());
    let counts = health.inner().counts;
    assert_eq!((counts.cohorts_unknown_flag, counts.cohorts_unknown_variant), (1, 1));
    let text = health.render();
    assert!(text.contains("flagd_health_cohorts_ignored_total{reason=\"unknown_flag\"} 1"), "{text}");
    assert!(text.contains("flagd_health_cohorts_ignored_total{reason=\"unknown_variant\"} 1"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn metrics_carry_environment_flag_and_variant_only_and_stop_at_the_series_limit() {
    let health = HealthFigures::default();
    let flags: Vec<Flag> =
        (0..MAX_SERIES / 2 + 1).map(|i| Flag::rollout(&format!("f{i}"), 50.0).unwrap()).collect();
    let catalog = Catalog::of(1, &FlagSet { flags: flags.clone(), segments: vec![] });
    let cohorts: Vec<(String, &str)> =
        flags.iter().flat_map(|flag| [(flag.key.clone(), "on"), (flag.key.clone(), "off")]).collect();
    let cohorts: Vec<(&str, &str, u64, u64)> = cohorts.iter().map(|(f, v)| (f.as_str(), *v, 1, 0)).collect();
    health.apply("production", report("a", 1, &cohorts), &catalog);
    let text = health.render();
    let series = text.lines().filter(|line| line.starts_with("flagd_health_successes_total{")).count();
    assert_eq!(series, MAX_SERIES);
    assert!(text.contains("flagd_health_cohorts_ignored_total{reason=\"series_limit\"} 2"), "{text}");
    assert!(
        text.contains("flagd_health_errors_total{environment=\"production\",flag=\"f0\",variant=\"off\"} 0"),
        "{text}"
    );
    assert!(text.contains(
        "flagd_health_latency_seconds_bucket{environment=\"production\",flag=\"f0\",variant=\"on\",le=\"0.001\"} 1"
    ));
    assert!(!text.contains("instance"), "no per-client label");
}

#[tokio::test(start_paused = true)]
async fn figures_count_from_a_revision_so_a_step_is_not_judged_on_the_one_before() {
    let health = HealthFigures::default();
    let now = Instant::now();
    let at = |sequence, revision, errors| {
        let figures = CohortFigures { evaluations: 10, successes: 10 - errors, errors, ..Default::default() };
        let cohort = CohortReport { flag: "chat".into(), variant: "on".into(), revision, figures };
        HealthReport { instance: "a".into(), sequence, cohorts: vec![cohort] }
    };
    // Reports of the step before (revision 4) still arrive after the step (revision 5).
    health.apply("production", at(1, 4, 0), &catalog());
    health.apply("production", at(2, 5, 3), &catalog());
    health.apply("production", at(3, 4, 0), &catalog());
    let step = health.figures("production", "chat", 5, now, now).variants["on"];
    assert_eq!((step.evaluations, step.errors), (10, 3), "only what was counted at revision 5 or later");
    let all = health.figures("production", "chat", 0, now, now).variants["on"];
    assert_eq!(all.evaluations, 30);
}
