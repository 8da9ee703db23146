//! A flag's figures over time as charts: evaluations per variant, and during a guarded
//! rollout each cohort's error rate and p99 latency with the plan's steps and the guard's
//! decisions marked.

use std::collections::BTreeMap;

use flag_core::{HistoryEntry, Operation, Rollout};
use maud::{Markup, PreEscaped, html};

use super::chart::{Chart, Marker, Series, Tone};
use super::layout::now_ms;
use crate::health::{HealthFigures, WindowFigures};

/// Windows drawn: 60 of 10 s, the last ten minutes.
const WINDOWS: u64 = 60;

/// One series per variant, a point per window, from `pick` of its figures.
fn per_variant(
    timeline: &[WindowFigures],
    pick: impl Fn(&flag_core::CohortFigures) -> Option<f64>,
) -> Vec<Series> {
    let now = now_ms();
    let mut series: BTreeMap<&str, Vec<(u64, f64)>> = BTreeMap::new();
    for window in timeline {
        let at = (now - window.ended_ago.as_millis() as i64).max(0) as u64;
        for (variant, figures) in &window.variants {
            if let Some(value) = pick(figures) {
                series.entry(variant.as_str()).or_default().push((at, value));
            }
        }
    }
    series.into_iter().map(|(name, points)| Series { name: name.to_owned(), points }).collect()
}

/// The plan's steps and the guard's decisions, from the flag's history since the plan began:
/// what the engine wrote says which step it took and why it stopped.
fn plan_markers(rollout: &Rollout, history: &[HistoryEntry]) -> Vec<Marker> {
    history
        .iter()
        .filter(|entry| entry.timestamp_ms >= rollout.started_ms)
        .map(|entry| {
            let tone = match entry.operation {
                Operation::Kill | Operation::Rollback => Tone::Bad,
                Operation::SetRollout => Tone::Good,
                _ => Tone::Neutral,
            };
            let what = if entry.reason.is_empty() {
                entry.operation.name().to_owned()
            } else {
                entry.reason.clone()
            };
            Marker { at_ms: entry.timestamp_ms.max(0) as u64, label: what, tone }
        })
        .collect()
}

/// The charts of `flag` in `environment`: evaluations always, cohort health when a plan
/// exists (`history` newest first, as the store reads it).
pub(crate) fn charts(
    health: &HealthFigures,
    environment: &str,
    flag: &str,
    rollout: Option<&Rollout>,
    history: &[HistoryEntry],
) -> Markup {
    let timeline = health.timeline(environment, flag, WINDOWS);
    let evaluations = per_variant(&timeline, |figures| Some(figures.evaluations as f64 / 10.0));
    let markers = rollout.map(|rollout| plan_markers(rollout, history)).unwrap_or_default();
    let chart = |title: &str, unit: &str, series: &[Series]| {
        PreEscaped(Chart { title, unit, series, markers: &markers }.to_svg())
    };
    html! {
        figure.chart #chart-evaluations { (chart("Evaluations per variant (last 10 min)", "/s", &evaluations)) }
        @if rollout.is_some() {
            @let errors = per_variant(&timeline, |figures| {
                let outcomes = figures.outcomes();
                (outcomes > 0).then(|| figures.errors as f64 * 100.0 / outcomes as f64)
            });
            @let latency = per_variant(&timeline, |figures| {
                figures.latency.quantile_bound_us(0.99).map(|micros| micros as f64 / 1000.0)
            });
            figure.chart #chart-errors { (chart("Error rate per cohort", "%", &errors)) }
            figure.chart #chart-latency { (chart("p99 latency per cohort", "ms", &latency)) }
        }
    }
}
