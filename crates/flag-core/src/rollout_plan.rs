//! A guarded rollout's plan (the steps, the hold, what the guard tolerates, what a breach
//! does) and how far it has got. flagd stores and runs it; flag-proto puts it on the wire.
//!
//! Percentages are of the flag's `on` share; the control is the `off` cohort, which every
//! plan's flag must have.

use serde::{Deserialize, Serialize};

/// What a plan does when its guard trips.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    /// Kill the flag: everyone gets its off variant at once.
    #[default]
    Kill,
    /// Go back to the previous step's percentage (0 % before the first).
    Rollback,
    /// Leave the flag as it is and pause the plan.
    Pause,
}

/// A plan as started: the steps and the guard's terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// The `on` percentages, increasing, each above 0 and at most 100.
    pub steps: Vec<f64>,
    /// How long each step is held before it is judged (ms, above 0).
    pub hold_ms: u64,
    /// How long an inconclusive step's hold may be extended to, in all (ms, at least
    /// `hold_ms`), before the plan pauses.
    pub max_hold_ms: u64,
    /// A dark cohort's reach, when the flag is a dark launch (0 to 100).
    pub dark_percent: Option<f64>,
    /// Evaluations each cohort needs in a window to be judged (above 0).
    pub min_samples: u64,
    /// The new path's error rate may be up to this many times the control's (above 1).
    pub max_error_ratio: f64,
    /// The new path's p99 latency may be up to this many times the control's (above 1).
    pub max_latency_p99_ratio: f64,
    /// An absolute ceiling on the new path's error rate (a fraction, 0 to 1).
    pub max_error_rate: Option<f64>,
    /// An absolute ceiling on the new path's p99 latency (µs).
    pub max_latency_p99_us: Option<u64>,
    /// What a breach does.
    pub on_breach: OnBreach,
}

/// Where a plan stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RolloutState {
    /// Holding its current step.
    Running,
    /// Stopped where it is until resumed, and why.
    Paused {
        /// Why: an operator's reason, a manual change, or a hold that stayed inconclusive.
        why: String,
    },
    /// The guard tripped and the breach's action was taken, with the figures.
    RolledBack {
        /// The guard and the figures.
        why: String,
    },
    /// An operator stopped it for good.
    Aborted {
        /// The operator's reason.
        why: String,
    },
    /// Every step was held and judged healthy.
    Done,
}

impl RolloutState {
    /// Whether the plan still owns its flag (running or paused): a second plan is refused.
    pub fn is_live(&self) -> bool {
        matches!(self, RolloutState::Running | RolloutState::Paused { .. })
    }
}

/// A stored plan and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The plan as started.
    pub plan: RolloutPlan,
    /// The step being held: an index into `plan.steps`.
    pub step: usize,
    /// When the current step's hold began (ms since the Unix epoch).
    pub holding_since_ms: i64,
    /// Where it stands.
    pub state: RolloutState,
    /// The flag's version as the plan last wrote it: a newer one was written by someone
    /// else, which pauses the plan.
    pub flag_version: u64,
    /// Who started it.
    pub started_by: String,
    /// When (ms since the Unix epoch).
    pub started_ms: i64,
}

/// A plan refused, naming the argument and what was expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No steps.
    #[error("steps: expected at least one percentage")]
    NoSteps,
    /// A step outside (0, 100] or not above the one before.
    #[error("steps[{index}]: expected a percentage above {after} and at most 100, found {found}")]
    Step {
        /// Its position.
        index: usize,
        /// What it had to be above: the step before, or 0.
        after: f64,
        /// What it was.
        found: f64,
    },
    /// A hold of zero.
    #[error("hold: expected a duration above 0")]
    Hold,
    /// A max hold below the hold.
    #[error("max_hold: expected at least the hold ({hold_ms} ms), found {found_ms} ms")]
    MaxHold {
        /// The hold.
        hold_ms: u64,
        /// The max hold.
        found_ms: u64,
    },
    /// A ratio at or below 1, or a fraction out of range.
    #[error("{argument}: expected {expected}, found {found}")]
    Bound {
        /// The argument.
        argument: &'static str,
        /// What it had to be.
        expected: &'static str,
        /// What it was.
        found: f64,
    },
}

impl RolloutPlan {
    /// Checks the plan's own terms (the flag's are the store's to check).
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.steps.is_empty() {
            return Err(PlanError::NoSteps);
        }
        let mut after = 0.0;
        for (index, step) in self.steps.iter().copied().enumerate() {
            // `!(a < b)` so that NaN is refused too.
            if !(step > after && step <= 100.0) {
                return Err(PlanError::Step { index, after, found: step });
            }
            after = step;
        }
        if self.hold_ms == 0 {
            return Err(PlanError::Hold);
        }
        if self.max_hold_ms < self.hold_ms {
            return Err(PlanError::MaxHold { hold_ms: self.hold_ms, found_ms: self.max_hold_ms });
        }
        let bounds = [
            ("max_error_ratio", "a ratio above 1", Some(self.max_error_ratio), 1.0, f64::INFINITY, false),
            (
                "max_latency_p99_ratio",
                "a ratio above 1",
                Some(self.max_latency_p99_ratio),
                1.0,
                f64::INFINITY,
                false,
            ),
            ("min_samples", "a count above 0", Some(self.min_samples as f64), 0.0, f64::INFINITY, false),
            ("max_error_rate", "a fraction above 0 and at most 1", self.max_error_rate, 0.0, 1.0, false),
            ("dark_percent", "a percentage from 0 to 100", self.dark_percent, 0.0, 100.0, true),
        ];
        for (argument, expected, value, low, high, low_included) in bounds {
            let Some(found) = value else { continue };
            let above_low = if low_included { found >= low } else { found > low };
            if !(above_low && found <= high) {
                return Err(PlanError::Bound { argument, expected, found });
            }
        }
        if let Some(found) = self.dark_percent.filter(|dark| *dark >= 100.0) {
            return Err(PlanError::Bound {
                argument: "dark_percent",
                expected: "a percentage below 100 (at 100 no one is left on `off` to compare with)",
                found,
            });
        }
        if self.max_latency_p99_us == Some(0) {
            return Err(PlanError::Bound {
                argument: "max_latency_p99",
                expected: "a duration above 0",
                found: 0.0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RolloutPlan {
        RolloutPlan {
            steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
            hold_ms: 600_000,
            max_hold_ms: 3_600_000,
            dark_percent: None,
            min_samples: 1_000,
            max_error_ratio: 1.5,
            max_latency_p99_ratio: 2.0,
            max_error_rate: None,
            max_latency_p99_us: None,
            on_breach: OnBreach::Kill,
        }
    }

    #[test]
    fn a_plan_of_increasing_steps_and_ratios_above_one_is_accepted() {
        assert_eq!(plan().validate(), Ok(()));
    }

    #[test]
    fn each_bad_argument_is_refused_by_name() {
        let cases: [(RolloutPlan, &str); 10] = [
            (RolloutPlan { steps: vec![], ..plan() }, "steps: expected at least one percentage"),
            (
                RolloutPlan { steps: vec![5.0, 5.0], ..plan() },
                "steps[1]: expected a percentage above 5 and at most 100, found 5",
            ),
            (
                RolloutPlan { steps: vec![50.0, 101.0], ..plan() },
                "steps[1]: expected a percentage above 50 and at most 100, found 101",
            ),
            (
                RolloutPlan { steps: vec![0.0], ..plan() },
                "steps[0]: expected a percentage above 0 and at most 100, found 0",
            ),
            (RolloutPlan { hold_ms: 0, ..plan() }, "hold: expected a duration above 0"),
            (
                RolloutPlan { max_hold_ms: 1, ..plan() },
                "max_hold: expected at least the hold (600000 ms), found 1 ms",
            ),
            (
                RolloutPlan { max_error_ratio: 1.0, ..plan() },
                "max_error_ratio: expected a ratio above 1, found 1",
            ),
            (
                RolloutPlan { max_latency_p99_ratio: 0.5, ..plan() },
                "max_latency_p99_ratio: expected a ratio above 1, found 0.5",
            ),
            (RolloutPlan { min_samples: 0, ..plan() }, "min_samples: expected a count above 0, found 0"),
            (
                RolloutPlan { dark_percent: Some(100.0), ..plan() },
                "dark_percent: expected a percentage below 100 (at 100 no one is left on `off` to compare with), found 100",
            ),
        ];
        for (plan, message) in cases {
            assert_eq!(plan.validate().map_err(|error| error.to_string()), Err(message.to_owned()));
        }
    }

    #[test]
    fn only_running_and_paused_plans_own_their_flag() {
        assert!(RolloutState::Running.is_live());
        assert!(RolloutState::Paused { why: "manual".into() }.is_live());
        assert!(!RolloutState::Done.is_live());
        assert!(!RolloutState::RolledBack { why: "errors".into() }.is_live());
    }
}
