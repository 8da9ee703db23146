//! A flag's figures over time as charts: evaluations per variant, and during a guarded
//! rollout each cohort's error rate and p99 latency with the plan's steps and the guard's
//! decisions marked.

use std::collections::BTreeMap;

use flag_core::{HistoryEntry, Operation, Rollout};
use maud::{Markup, PreEscaped, html};

use super::chart::{Chart, Marker, Series, Tone};
use super::layout::now_ms;
use crate::health::{HealthFigures, WINDOW, WindowFigures};

/// Windows drawn: 60 of [`WINDOW`] (10 s), the last ten minutes.
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
            let what = if entry.reason.is_empty() { entry.operation.name() } else { entry.reason.as_str() };
            Marker { at_ms: entry.timestamp_ms.max(0) as u64, label: short_label(what), tone }
        })
        .collect()
}

/// A mark's label: the reason's first clause (`step 3/4: 50 %` of the engine's `step 3/4: 50
/// %; on: 1.16 % errors over …`), at most 32 characters, so marks a few seconds apart stay
/// legible; the history table has the whole reason.
fn short_label(reason: &str) -> String {
    const MAX_CHARS: usize = 32;
    let first = reason.split(';').next().unwrap_or(reason).trim();
    if first.chars().count() <= MAX_CHARS {
        return first.to_owned();
    }
    let cut: String = first.chars().take(MAX_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
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
    let evaluations =
        per_variant(&timeline, |figures| Some(figures.evaluations as f64 / WINDOW.as_secs_f64()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(operation: Operation, reason: &str, timestamp_ms: i64) -> HistoryEntry {
        HistoryEntry {
            environment: "production".into(),
            kind: flag_core::SubjectKind::Flag,
            key: "chat".into(),
            version: 1,
            revision: 1,
            operation,
            actor: "flagd/rollout".into(),
            on_behalf_of: None,
            reason: reason.into(),
            timestamp_ms,
            flag: None,
            segment: None,
        }
    }

    #[test]
    fn the_plans_writes_since_it_began_become_marks_a_kill_in_the_warning_tone() {
        let rollout = rollout_started_at(1_000);
        let history = [
            entry(Operation::Kill, "breach: error rate 3.1× the control's; on: 3.1 % over 2,000", 9_000),
            entry(Operation::SetRollout, "step 2/2: 25 %; on: 1.16 % errors over 116,055 evaluations", 5_000),
            entry(Operation::SetRollout, "before the plan", 500),
        ];
        let markers = plan_markers(&rollout, &history);
        let marks: Vec<(&str, u64, bool)> =
            markers.iter().map(|m| (m.label.as_str(), m.at_ms, matches!(m.tone, Tone::Bad))).collect();
        assert_eq!(
            marks,
            [("breach: error rate 3.1× the con…", 9_000, true), ("step 2/2: 25 %", 5_000, false)]
        );
    }

    fn rollout_started_at(started_ms: i64) -> Rollout {
        let plan = flag_core::RolloutPlan {
            steps: vec![5.0, 25.0],
            hold_ms: 1_000,
            max_hold_ms: 2_000,
            dark_percent: None,
            min_samples: 10,
            max_error_ratio: 1.5,
            max_latency_p99_ratio: 1.5,
            max_error_rate: None,
            max_latency_p99_us: None,
            on_breach: flag_core::OnBreach::Kill,
        };
        Rollout {
            plan,
            step: 1,
            holding_since_ms: 5_000,
            state: flag_core::RolloutState::Running,
            flag_version: 2,
            started_by: "ops".into(),
            started_ms,
        }
    }
}
