//! The `/metrics` text of the aggregated reports: labels `environment`, `flag` and `variant`
//! only (never a context or a client), at most `MAX_SERIES` series of each metric.

use std::fmt::Write;

use flag_core::{CohortFigures, LATENCY_BOUNDS_US};

use super::Counts;

/// A counter's name, its help and the figure it counts.
type Counter = (&'static str, &'static str, fn(&CohortFigures) -> u64);

pub(super) fn render<'a>(
    series: impl Iterator<Item = (&'a (String, String, String), &'a CohortFigures)>,
    counts: Counts,
) -> String {
    let mut series: Vec<_> = series.collect();
    series.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    let counters: [Counter; 3] = [
        (
            "flagd_health_evaluations_total",
            "Evaluations SDKs reported, by environment, flag and variant.",
            |f| f.evaluations,
        ),
        ("flagd_health_successes_total", "Units of work SDKs reported as succeeded.", |f| f.successes),
        ("flagd_health_errors_total", "Units of work SDKs reported as failed.", |f| f.errors),
    ];
    for (name, help, figure) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (key, figures) in &series {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(key), figure(figures));
        }
    }
    let name = "flagd_health_latency_seconds";
    let _ =
        writeln!(out, "# HELP {name} Latencies SDKs reported, in fixed buckets.\n# TYPE {name} histogram");
    for (key, figures) in &series {
        let labels = labels(key);
        let mut cumulative: u64 = 0;
        for (bound, count) in LATENCY_BOUNDS_US.iter().zip(figures.latency.counts) {
            cumulative = cumulative.saturating_add(count);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let total = figures.latency.total();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
    let Counts {
        reports_counted,
        reports_duplicate,
        cohorts_unknown_flag,
        cohorts_unknown_variant,
        cohorts_series_dropped,
    } = counts;
    let name = "flagd_health_reports_total";
    let _ = writeln!(
        out,
        "# HELP {name} Health reports received, by outcome (counted, duplicate: a resent report already counted).\n# TYPE {name} counter"
    );
    let _ = writeln!(out, "{name}{{outcome=\"counted\"}} {reports_counted}");
    let _ = writeln!(out, "{name}{{outcome=\"duplicate\"}} {reports_duplicate}");
    let name = "flagd_health_cohorts_ignored_total";
    let _ = writeln!(
        out,
        "# HELP {name} Reported cohorts not counted, by reason (unknown_flag, unknown_variant, series_limit).\n# TYPE {name} counter"
    );
    let _ = writeln!(out, "{name}{{reason=\"unknown_flag\"}} {cohorts_unknown_flag}");
    let _ = writeln!(out, "{name}{{reason=\"unknown_variant\"}} {cohorts_unknown_variant}");
    let _ = writeln!(out, "{name}{{reason=\"series_limit\"}} {cohorts_series_dropped}");
    out
}

fn labels((environment, flag, variant): &(String, String, String)) -> String {
    format!(
        "environment=\"{}\",flag=\"{}\",variant=\"{}\"",
        escape(environment),
        escape(flag),
        escape(variant)
    )
}

/// Prometheus label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
