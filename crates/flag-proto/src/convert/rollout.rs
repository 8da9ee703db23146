//! Guarded rollouts on the wire: a plan (flag-core's [`RolloutPlan`](core::RolloutPlan)),
//! a stored plan's status with its cohorts' figures now, and the Admin rollout requests.
//!
//! The plan's own terms (steps increasing, ratios above 1…) are flag-core's to check, as
//! the store starts it; here only what cannot become a plan at all is refused.

use flag_core as core;

use super::admin::{Authorship, Written};
use super::requests::Requests;
use super::{InvalidMessage, Path};
use crate::v1;

/// One cohort's figures over the window a plan is judging.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CohortNow {
    /// `on`, `dark` or the control `off`.
    pub variant: String,
    /// Evaluations that served it.
    pub evaluations: u64,
    /// Units of work reported as succeeded.
    pub successes: u64,
    /// Units of work reported as failed.
    pub errors: u64,
    /// The bound (µs) of the bucket holding its p99 latency; `None` without latencies.
    pub latency_p99_us: Option<u64>,
}

/// A flag's stored plan, and what its cohorts are doing now.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutInfo {
    /// The environment.
    pub environment: String,
    /// The flag.
    pub key: String,
    /// The plan and how far it got.
    pub rollout: core::Rollout,
    /// The cohorts over the window being judged; empty when none is.
    pub cohorts: Vec<CohortNow>,
    /// When that window began (ms since the Unix epoch); 0 without one.
    pub window_since_ms: i64,
}

/// A change to a plan as the client reads it: the plan after it, and the flag write it
/// made, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutChange {
    /// The plan after the change.
    pub info: RolloutInfo,
    /// The flag write (the first step, a resume's step).
    pub written: Option<Written>,
}

impl From<&core::RolloutPlan> for v1::RolloutPlan {
    fn from(plan: &core::RolloutPlan) -> Self {
        let core::RolloutPlan {
            steps,
            hold_ms,
            max_hold_ms,
            dark_percent,
            min_samples,
            max_error_ratio,
            max_latency_p99_ratio,
            max_error_rate,
            max_latency_p99_us,
            on_breach,
        } = plan;
        let on_breach = match on_breach {
            core::OnBreach::Kill => v1::OnBreach::Kill,
            core::OnBreach::Rollback => v1::OnBreach::Rollback,
            core::OnBreach::Pause => v1::OnBreach::Pause,
        };
        v1::RolloutPlan {
            steps: steps.clone(),
            hold_ms: *hold_ms,
            max_hold_ms: *max_hold_ms,
            dark_percent: *dark_percent,
            min_samples: *min_samples,
            max_error_ratio: *max_error_ratio,
            max_latency_p99_ratio: *max_latency_p99_ratio,
            max_error_rate: *max_error_rate,
            max_latency_p99_us: *max_latency_p99_us,
            on_breach: on_breach.into(),
        }
    }
}

/// A plan from the wire: a max hold of 0 is the hold; an `on_breach` this code does not
/// know is refused at `path.on_breach`.
fn plan_from_proto(plan: v1::RolloutPlan, path: &Path<'_>) -> Result<core::RolloutPlan, InvalidMessage> {
    let v1::RolloutPlan {
        steps,
        hold_ms,
        max_hold_ms,
        dark_percent,
        min_samples,
        max_error_ratio,
        max_latency_p99_ratio,
        max_error_rate,
        max_latency_p99_us,
        on_breach,
    } = plan;
    let on_breach = match v1::OnBreach::try_from(on_breach) {
        Ok(v1::OnBreach::Kill) => core::OnBreach::Kill,
        Ok(v1::OnBreach::Rollback) => core::OnBreach::Rollback,
        Ok(v1::OnBreach::Pause) => core::OnBreach::Pause,
        Err(_) => {
            return Err(path
                .field("on_breach")
                .invalid(format!("kill, rollback or pause, found {on_breach}")));
        }
    };
    Ok(core::RolloutPlan {
        steps,
        hold_ms,
        max_hold_ms: if max_hold_ms == 0 { hold_ms } else { max_hold_ms },
        dark_percent,
        min_samples,
        max_error_ratio,
        max_latency_p99_ratio,
        max_error_rate,
        max_latency_p99_us,
        on_breach,
    })
}

impl From<&CohortNow> for v1::RolloutCohort {
    fn from(cohort: &CohortNow) -> Self {
        let CohortNow { variant, evaluations, successes, errors, latency_p99_us } = cohort;
        v1::RolloutCohort {
            variant: variant.clone(),
            evaluations: *evaluations,
            successes: *successes,
            errors: *errors,
            latency_p99_us: *latency_p99_us,
        }
    }
}

impl From<v1::RolloutCohort> for CohortNow {
    fn from(cohort: v1::RolloutCohort) -> Self {
        let v1::RolloutCohort { variant, evaluations, successes, errors, latency_p99_us } = cohort;
        CohortNow { variant, evaluations, successes, errors, latency_p99_us }
    }
}

impl From<&RolloutInfo> for v1::RolloutStatus {
    fn from(info: &RolloutInfo) -> Self {
        let RolloutInfo { environment, key, rollout, cohorts, window_since_ms } = info;
        let core::Rollout { plan, step, holding_since_ms, state, flag_version, started_by, started_ms } =
            rollout;
        let (state, why) = match state {
            core::RolloutState::Running => (v1::RolloutState::Running, ""),
            core::RolloutState::Paused { why } => (v1::RolloutState::Paused, why.as_str()),
            core::RolloutState::RolledBack { why } => (v1::RolloutState::RolledBack, why.as_str()),
            core::RolloutState::Aborted { why } => (v1::RolloutState::Aborted, why.as_str()),
            core::RolloutState::Done => (v1::RolloutState::Done, ""),
        };
        v1::RolloutStatus {
            environment: environment.clone(),
            key: key.clone(),
            plan: Some(v1::RolloutPlan::from(plan)),
            step: u32::try_from(*step).unwrap_or(u32::MAX),
            holding_since_unix_ms: *holding_since_ms,
            state: state.into(),
            why: why.to_owned(),
            flag_version: *flag_version,
            started_by: started_by.clone(),
            started_unix_ms: *started_ms,
            cohorts: cohorts.iter().map(v1::RolloutCohort::from).collect(),
            window_since_unix_ms: *window_since_ms,
        }
    }
}

impl TryFrom<v1::RolloutStatus> for RolloutInfo {
    type Error = InvalidMessage;

    fn try_from(status: v1::RolloutStatus) -> Result<Self, Self::Error> {
        let v1::RolloutStatus {
            environment,
            key,
            plan,
            step,
            holding_since_unix_ms,
            state,
            why,
            flag_version,
            started_by,
            started_unix_ms,
            cohorts,
            window_since_unix_ms,
        } = status;
        let root = Path::Root("rollout");
        let plan = plan.ok_or_else(|| root.field("plan").invalid("the plan"))?;
        let plan = plan_from_proto(plan, &root.field("plan"))?;
        let state = match v1::RolloutState::try_from(state) {
            Ok(v1::RolloutState::Running) => core::RolloutState::Running,
            Ok(v1::RolloutState::Paused) => core::RolloutState::Paused { why },
            Ok(v1::RolloutState::RolledBack) => core::RolloutState::RolledBack { why },
            Ok(v1::RolloutState::Aborted) => core::RolloutState::Aborted { why },
            Ok(v1::RolloutState::Done) => core::RolloutState::Done,
            Ok(v1::RolloutState::Unspecified) | Err(_) => {
                return Err(root.field("state").invalid(format!("a rollout state, found {state}")));
            }
        };
        let step = step as usize;
        if step >= plan.steps.len() {
            return Err(root
                .field("step")
                .invalid(format!("a step below {}, found {step}", plan.steps.len())));
        }
        let rollout = core::Rollout {
            plan,
            step,
            holding_since_ms: holding_since_unix_ms,
            state,
            flag_version,
            started_by,
            started_ms: started_unix_ms,
        };
        Ok(RolloutInfo {
            environment,
            key,
            rollout,
            cohorts: cohorts.into_iter().map(CohortNow::from).collect(),
            window_since_ms: window_since_unix_ms,
        })
    }
}

/// The answer to a change of a plan: the plan after it, and the flag write (`revision`,
/// entry) it made.
pub fn rollout_response(
    info: &RolloutInfo,
    write: Option<(u64, &core::HistoryEntry)>,
) -> v1::RolloutResponse {
    v1::RolloutResponse {
        rollout: Some(v1::RolloutStatus::from(info)),
        write: write.map(|(revision, entry)| super::admin::write_response(revision, entry)),
    }
}

impl TryFrom<v1::RolloutResponse> for RolloutChange {
    type Error = InvalidMessage;

    fn try_from(response: v1::RolloutResponse) -> Result<Self, Self::Error> {
        let v1::RolloutResponse { rollout, write } = response;
        let rollout = rollout.ok_or_else(|| Path::Root("rollout").invalid("the plan after the change"))?;
        Ok(RolloutChange { info: rollout.try_into()?, written: write.map(Written::try_from).transpose()? })
    }
}

/// `StartRollout`'s request as the server reads it: the environment (empty is the
/// default's, resolved by the caller), the flag, the plan, who and why.
pub fn start_rollout_request_from_proto(
    request: v1::StartRolloutRequest,
) -> Result<(String, String, core::RolloutPlan, Authorship), InvalidMessage> {
    let v1::StartRolloutRequest { environment, key, plan, change } = request;
    let root = Path::Root("plan");
    let plan = plan.ok_or_else(|| root.invalid("the plan: steps, hold and the guard's terms"))?;
    Ok((environment, key, plan_from_proto(plan, &root)?, change.into()))
}

impl Requests<'_> {
    /// `StartRollout` of `plan` on `key`.
    pub fn start_rollout(
        &self,
        key: &str,
        plan: &core::RolloutPlan,
        by: Authorship,
    ) -> v1::StartRolloutRequest {
        v1::StartRolloutRequest {
            environment: self.environment(),
            key: key.to_owned(),
            plan: Some(plan.into()),
            change: Some(by.into()),
        }
    }

    /// `PauseRollout`, `ResumeRollout` or `AbortRollout` of `key`'s plan.
    pub fn change_rollout(&self, key: &str, by: Authorship) -> v1::ChangeRolloutRequest {
        v1::ChangeRolloutRequest {
            environment: self.environment(),
            key: key.to_owned(),
            change: Some(by.into()),
        }
    }

    /// `GetRollout` of `key`.
    pub fn get_rollout(&self, key: &str) -> v1::GetRolloutRequest {
        v1::GetRolloutRequest { environment: self.environment(), key: key.to_owned() }
    }

    /// `ListRollouts`.
    pub fn list_rollouts(&self) -> v1::ListRolloutsRequest {
        v1::ListRolloutsRequest { environment: self.environment() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RolloutInfo {
        RolloutInfo {
            environment: "production".into(),
            key: "chat".into(),
            rollout: core::Rollout {
                plan: core::RolloutPlan {
                    steps: vec![1.0, 5.0, 100.0],
                    hold_ms: 600_000,
                    max_hold_ms: 1_800_000,
                    dark_percent: Some(50.0),
                    min_samples: 1_000,
                    max_error_ratio: 1.5,
                    max_latency_p99_ratio: 2.0,
                    max_error_rate: Some(0.05),
                    max_latency_p99_us: Some(250_000),
                    on_breach: core::OnBreach::Rollback,
                },
                step: 1,
                holding_since_ms: 1_700_000_000_000,
                state: core::RolloutState::Paused { why: "lunch".into() },
                flag_version: 4,
                started_by: "ana".into(),
                started_ms: 1_699_999_000_000,
            },
            cohorts: vec![CohortNow {
                variant: "on".into(),
                evaluations: 12_400,
                successes: 12_300,
                errors: 100,
                latency_p99_us: Some(7_500),
            }],
            window_since_ms: 1_700_000_000_100,
        }
    }

    #[test]
    fn a_status_goes_over_the_wire_and_back_unchanged() {
        let info = info();
        let back = RolloutInfo::try_from(v1::RolloutStatus::from(&info)).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn a_start_request_carries_the_plan_and_a_max_hold_of_zero_is_the_hold() {
        let mut plan = info().rollout.plan;
        plan.max_hold_ms = 0;
        let request = Requests::new("staging").start_rollout("chat", &plan, Authorship::default());
        let (environment, key, read, _) = start_rollout_request_from_proto(request).unwrap();
        assert_eq!((environment.as_str(), key.as_str(), read.max_hold_ms), ("staging", "chat", 600_000));

        let mut request = Requests::new("").start_rollout("chat", &plan, Authorship::default());
        if let Some(plan) = request.plan.as_mut() {
            plan.on_breach = 9;
        }
        let error = start_rollout_request_from_proto(request).unwrap_err();
        assert_eq!(error.to_string(), "plan.on_breach: kill, rollback or pause, found 9");
        let missing = v1::StartRolloutRequest {
            plan: None,
            ..Requests::new("").start_rollout("chat", &plan, Authorship::default())
        };
        assert!(start_rollout_request_from_proto(missing).unwrap_err().to_string().starts_with("plan: "));
    }
}
