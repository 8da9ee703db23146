//! Guarded rollouts: `rollout start` stores a plan that flagd runs by itself; `status`,
//! `list`, `pause`, `resume` and `abort` read and steer it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use flag_core::{OnBreach, RolloutPlan, RolloutState};
use flag_proto::{Authorship, CohortNow, RolloutChange, RolloutInfo};
use serde::Serialize;
use tonic::{Code, Status};

use crate::cli::{RolloutCommand, RolloutStartArgs};
use crate::connect::Server;
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::render;

/// A plan as `--json` shows it.
#[derive(Debug, Serialize)]
struct Shown {
    environment: String,
    key: String,
    state: &'static str,
    /// Why it is paused, rolled back or aborted.
    #[serde(skip_serializing_if = "String::is_empty")]
    why: String,
    /// 1-based.
    step: usize,
    steps: Vec<f64>,
    percent: f64,
    hold_ms: u64,
    max_hold_ms: u64,
    holding_since: String,
    #[serde(skip)]
    holding_since_ms: i64,
    /// When the current step is judged, for a running plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_judgement: Option<String>,
    min_samples: u64,
    max_error_ratio: f64,
    max_latency_p99_ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_error_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_latency_p99_us: Option<u64>,
    on_breach: &'static str,
    started_by: String,
    started: String,
    /// The cohorts over the window being judged.
    cohorts: Vec<ShownCohort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_since: Option<String>,
    /// The flag write the command made, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ShownCohort {
    variant: String,
    evaluations: u64,
    successes: u64,
    errors: u64,
    /// Errors over reported outcomes, in percent.
    error_percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_p99_us: Option<u64>,
}

pub(crate) async fn run(
    server: &Server,
    out: &Output,
    command: RolloutCommand,
    change: Authorship,
) -> anyhow::Result<()> {
    match command {
        RolloutCommand::Start(args) => start(server, out, args, change).await,
        RolloutCommand::Status { key: Some(key) } => {
            let request = server.requests().get_rollout(&key);
            let status = server
                .admin
                .clone()
                .get_rollout(server.request(request))
                .await
                .map_err(|s| server.failed(s))?;
            let shown = shown(RolloutInfo::try_from(status.into_inner()).context(MALFORMED)?, None);
            out.print(&shown, || status_text(&shown))
        }
        RolloutCommand::Status { key: None } => {
            let plans = listed(server).await?;
            out.print(&plans, || {
                if plans.is_empty() {
                    return format!("{} has no rollout plans", server.environment);
                }
                plans.iter().map(status_text).collect::<Vec<_>>().join("\n\n")
            })
        }
        RolloutCommand::List => {
            let plans = listed(server).await?;
            out.print(&plans, || {
                if plans.is_empty() {
                    return format!("{} has no rollout plans", server.environment);
                }
                plans.iter().map(summary).collect::<Vec<_>>().join("\n")
            })
        }
        RolloutCommand::Pause(args) => steer(server, out, &args.key, change, "paused", Verb::Pause).await,
        RolloutCommand::Resume(args) => steer(server, out, &args.key, change, "resumed", Verb::Resume).await,
        RolloutCommand::Abort(args) => steer(server, out, &args.key, change, "aborted", Verb::Abort).await,
    }
}

async fn start(
    server: &Server,
    out: &Output,
    args: RolloutStartArgs,
    change: Authorship,
) -> anyhow::Result<()> {
    let RolloutStartArgs {
        key,
        steps,
        hold,
        max_hold,
        dark,
        max_error_ratio,
        max_latency_p99_ratio,
        min_samples,
        max_error_rate,
        max_latency_p99,
        on_breach,
        change: _,
    } = args;
    let hold_ms = millis(hold);
    let plan = RolloutPlan {
        steps,
        hold_ms,
        max_hold_ms: max_hold.map_or(hold_ms, millis),
        dark_percent: dark,
        min_samples,
        max_error_ratio,
        max_latency_p99_ratio,
        max_error_rate,
        max_latency_p99_us: max_latency_p99.map(|p99| u64::try_from(p99.as_micros()).unwrap_or(u64::MAX)),
        on_breach: on_breach.into(),
    };
    let request = server.requests().start_rollout(&key, &plan, change);
    let answer = server
        .admin
        .clone()
        .start_rollout(server.request(request))
        .await
        .map_err(|status| server.failed(named(status)))?;
    let answer = RolloutChange::try_from(answer.into_inner()).context(MALFORMED)?;
    let revision = answer.written.as_ref().map(|written| written.revision);
    let shown = shown(answer.info, revision);
    out.print(&shown, || {
        format!(
            "started a rollout plan on {} (revision {}): {} now at {} %, steps {}; each held {} and judged \
             against off; on breach: {}",
            shown.key,
            revision.unwrap_or_default(),
            shown.key,
            shown.percent,
            steps_text(&shown.steps),
            duration(shown.hold_ms),
            shown.on_breach
        )
    })
}

/// What a steering command asks.
#[derive(Clone, Copy)]
enum Verb {
    Pause,
    Resume,
    Abort,
}

async fn steer(
    server: &Server,
    out: &Output,
    key: &str,
    change: Authorship,
    done: &str,
    verb: Verb,
) -> anyhow::Result<()> {
    let request = server.requests().change_rollout(key, change);
    let mut admin = server.admin.clone();
    let answer = match verb {
        Verb::Pause => admin.pause_rollout(server.request(request)).await,
        Verb::Resume => admin.resume_rollout(server.request(request)).await,
        Verb::Abort => admin.abort_rollout(server.request(request)).await,
    }
    .map_err(|status| server.failed(status))?;
    let answer = RolloutChange::try_from(answer.into_inner()).context(MALFORMED)?;
    let revision = answer.written.as_ref().map(|written| written.revision);
    let shown = shown(answer.info, revision);
    out.print(&shown, || {
        let at = format!("step {}/{} ({} %)", shown.step, shown.steps.len(), shown.percent);
        match revision {
            Some(revision) => {
                format!("{done} the rollout plan of {key} at {at}, written again (revision {revision})")
            }
            None => format!("{done} the rollout plan of {key} at {at}"),
        }
    })
}

async fn listed(server: &Server) -> anyhow::Result<Vec<Shown>> {
    let request = server.requests().list_rollouts();
    let listed =
        server.admin.clone().list_rollouts(server.request(request)).await.map_err(|s| server.failed(s))?;
    listed
        .into_inner()
        .rollouts
        .into_iter()
        .map(|status| Ok(shown(RolloutInfo::try_from(status).context(MALFORMED)?, None)))
        .collect()
}

/// The server names a plan's terms as the plan does (`max_error_ratio`, `steps[1]`); the
/// command line's options are what the operator typed (`--max-error-ratio`, `--steps`).
fn named(status: Status) -> Status {
    if status.code() != Code::InvalidArgument {
        return status;
    }
    const OPTIONS: [(&str, &str); 9] = [
        ("steps", "--steps"),
        ("max_hold", "--max-hold"),
        ("hold", "--hold"),
        ("max_error_ratio", "--max-error-ratio"),
        ("max_latency_p99_ratio", "--max-latency-p99-ratio"),
        ("min_samples", "--min-samples"),
        ("max_error_rate", "--max-error-rate"),
        ("max_latency_p99", "--max-latency-p99"),
        ("dark_percent", "--dark"),
    ];
    let message = status.message();
    for (field, option) in OPTIONS {
        if let Some(rest) = message.strip_prefix(field)
            && (rest.starts_with(':') || rest.starts_with('['))
        {
            return Status::invalid_argument(format!("{option}{rest}"));
        }
    }
    status
}

fn shown(info: RolloutInfo, revision: Option<u64>) -> Shown {
    let RolloutInfo { environment, key, rollout, cohorts, window_since_ms } = info;
    let plan = rollout.plan;
    let (state, why) = match rollout.state {
        RolloutState::Running => ("running", String::new()),
        RolloutState::Paused { why } => ("paused", why),
        RolloutState::RolledBack { why } => ("rolled back", why),
        RolloutState::Aborted { why } => ("aborted", why),
        RolloutState::Done => ("done", String::new()),
    };
    let hold = i64::try_from(plan.hold_ms).unwrap_or(i64::MAX);
    let next_judgement =
        (state == "running").then(|| render::time(rollout.holding_since_ms.saturating_add(hold)));
    Shown {
        environment,
        key,
        state,
        why,
        step: rollout.step + 1,
        percent: plan.steps.get(rollout.step).copied().unwrap_or_default(),
        steps: plan.steps,
        hold_ms: plan.hold_ms,
        max_hold_ms: plan.max_hold_ms,
        holding_since: render::time(rollout.holding_since_ms),
        holding_since_ms: rollout.holding_since_ms,
        next_judgement,
        min_samples: plan.min_samples,
        max_error_ratio: plan.max_error_ratio,
        max_latency_p99_ratio: plan.max_latency_p99_ratio,
        max_error_rate: plan.max_error_rate,
        max_latency_p99_us: plan.max_latency_p99_us,
        on_breach: match plan.on_breach {
            OnBreach::Kill => "kill",
            OnBreach::Rollback => "rollback",
            OnBreach::Pause => "pause",
        },
        started_by: rollout.started_by,
        started: render::time(rollout.started_ms),
        cohorts: cohorts.into_iter().map(shown_cohort).collect(),
        window_since: (window_since_ms > 0).then(|| render::time(window_since_ms)),
        revision,
    }
}

fn shown_cohort(cohort: CohortNow) -> ShownCohort {
    let CohortNow { variant, evaluations, successes, errors, latency_p99_us } = cohort;
    let outcomes = successes.saturating_add(errors);
    let error_percent = if outcomes == 0 { 0.0 } else { errors as f64 * 100.0 / outcomes as f64 };
    ShownCohort { variant, evaluations, successes, errors, error_percent, latency_p99_us }
}

/// `chat  running  step 2/5 (5 %)  next judgement in 7 min`.
fn summary(plan: &Shown) -> String {
    let mut line = format!(
        "{:<24} {:<12} step {}/{} ({} %)",
        plan.key,
        plan.state,
        plan.step,
        plan.steps.len(),
        plan.percent
    );
    match (&plan.next_judgement, plan.state) {
        (Some(_), _) => line.push_str(&format!("  {}", next(plan))),
        (None, "done") => {}
        (None, _) => line.push_str(&format!("  {}", plan.why)),
    }
    line
}

/// The whole status of one plan, as `rollout status` prints it.
fn status_text(plan: &Shown) -> String {
    let mut text = format!(
        "{} ({}): {}, step {}/{} at {} % — steps {}",
        plan.key,
        plan.environment,
        plan.state,
        plan.step,
        plan.steps.len(),
        plan.percent,
        steps_text(&plan.steps)
    );
    if !plan.why.is_empty() {
        text.push_str(&format!("\n  why: {}", plan.why));
    }
    text.push_str(&format!(
        "\n  hold {} (extended up to {} while too few evaluations), holding since {}",
        duration(plan.hold_ms),
        duration(plan.max_hold_ms),
        plan.holding_since
    ));
    if plan.next_judgement.is_some() {
        text.push_str(&format!("; {}", next(plan)));
    }
    let mut guard = format!(
        "\n  guard: on vs off in the same window — error rate at most {}× (one-sided z ≥ 3.09, and ≥ 0.1 points \
         apart), p99 latency at most {}×",
        plan.max_error_ratio, plan.max_latency_p99_ratio
    );
    if let Some(rate) = plan.max_error_rate {
        guard.push_str(&format!(", error rate at most {} %", rate * 100.0));
    }
    if let Some(p99) = plan.max_latency_p99_us {
        guard.push_str(&format!(", p99 at most {}", micros(p99)));
    }
    guard.push_str(&format!(
        "; {} evaluations per cohort to judge; on breach: {}",
        grouped(plan.min_samples),
        plan.on_breach
    ));
    text.push_str(&guard);
    text.push_str(&format!("\n  started by {} at {}", plan.started_by, plan.started));
    if plan.cohorts.is_empty() {
        if plan.state == "running" {
            text.push_str("\n  cohorts: no figures reported in this window yet");
        }
    } else {
        text.push_str(&format!(
            "\n  cohorts since {}:",
            plan.window_since.as_deref().unwrap_or("the window began")
        ));
        for cohort in &plan.cohorts {
            let p99 = cohort
                .latency_p99_us
                .map_or_else(|| "no latencies".to_owned(), |p99| format!("p99 ≤ {}", micros(p99)));
            text.push_str(&format!(
                "\n    {:<5} {:>11} evaluations  {:>6.2} % errors ({} of {})  {p99}",
                cohort.variant,
                grouped(cohort.evaluations),
                cohort.error_percent,
                grouped(cohort.errors),
                grouped(cohort.errors.saturating_add(cohort.successes))
            ));
        }
    }
    text
}

/// `next judgement in 7 min 12 s`, or that the hold is being extended.
fn next(plan: &Shown) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let since = plan.holding_since_ms;
    let due = since + plan.hold_ms as i64;
    if now < due {
        return format!("next judgement in {}", duration(u64::try_from(due - now).unwrap_or(0)));
    }
    let until = since + plan.max_hold_ms as i64;
    format!("judging: too few evaluations so far, the hold is extended up to {}", render::time(until))
}

/// `12400` → `12,400`.
fn grouped(count: u64) -> String {
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

fn steps_text(steps: &[f64]) -> String {
    let steps: Vec<String> = steps.iter().map(|step| step.to_string()).collect();
    format!("{} %", steps.join(", "))
}

/// `600000` → `10m`, to the second.
fn duration(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms.div_ceil(1000))).to_string()
}

/// `7500` → `7.5 ms`.
fn micros(us: u64) -> String {
    if us == u64::MAX {
        return "above 10 s".into();
    }
    if us < 1000 { format!("{us} µs") } else { format!("{} ms", us as f64 / 1000.0) }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use flag_core::Rollout;

    use super::*;

    #[test]
    fn status_prints_the_plan_the_guard_and_each_cohort() {
        let info = RolloutInfo {
            environment: "production".into(),
            key: "chat".into(),
            rollout: Rollout {
                plan: RolloutPlan {
                    steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
                    hold_ms: 600_000,
                    max_hold_ms: 1_800_000,
                    dark_percent: None,
                    min_samples: 1_000,
                    max_error_ratio: 1.5,
                    max_latency_p99_ratio: 2.0,
                    max_error_rate: None,
                    max_latency_p99_us: None,
                    on_breach: OnBreach::Kill,
                },
                step: 1,
                holding_since_ms: 1_764_653_467_000,
                state: RolloutState::Running,
                flag_version: 3,
                started_by: "ana".into(),
                started_ms: 1_764_652_867_000,
            },
            cohorts: vec![
                CohortNow {
                    variant: "on".into(),
                    evaluations: 1_204,
                    successes: 1_194,
                    errors: 10,
                    latency_p99_us: Some(7_500),
                },
                CohortNow {
                    variant: "off".into(),
                    evaluations: 22_877,
                    successes: 22_877,
                    errors: 0,
                    latency_p99_us: None,
                },
            ],
            window_since_ms: 1_764_653_467_000,
        };
        let text = status_text(&shown(info, None));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "chat (production): running, step 2/5 at 5 % — steps 1, 5, 25, 50, 100 %");
        assert!(
            lines[1].starts_with(
                "  hold 10m (extended up to 30m while too few evaluations), holding since 2025-12-02T05:31:07Z; "
            ),
            "{text}"
        );
        assert!(lines[2].ends_with("1,000 evaluations per cohort to judge; on breach: kill"), "{text}");
        assert_eq!(lines[3], "  started by ana at 2025-12-02T05:21:07Z");
        assert_eq!(lines[4], "  cohorts since 2025-12-02T05:31:07Z:");
        assert_eq!(
            lines[5],
            "    on          1,204 evaluations    0.83 % errors (10 of 1,204)  p99 ≤ 7.5 ms"
        );
        assert_eq!(
            lines[6],
            "    off        22,877 evaluations    0.00 % errors (0 of 22,877)  no latencies"
        );
    }

    #[test]
    fn the_servers_names_for_a_plans_terms_become_the_options_typed() {
        let renamed = |message: &str| named(Status::invalid_argument(message)).message().to_owned();
        assert_eq!(
            renamed("steps[1]: expected a percentage above 5"),
            "--steps[1]: expected a percentage above 5"
        );
        assert_eq!(renamed("max_hold: expected at least the hold"), "--max-hold: expected at least the hold");
        assert_eq!(
            renamed("max_latency_p99_ratio: expected a ratio"),
            "--max-latency-p99-ratio: expected a ratio"
        );
        assert_eq!(renamed("flag \"chat\" is killed"), "flag \"chat\" is killed");
    }
}
