//! Guarded rollouts: a plan ramps a flag's `on` share step by step while its new path's
//! cohort looks like its control cohort (`off`) over the same window, and acts when it
//! does not.
//!
//! - `guard` — the decision rule, pure: two cohorts' figures in, a [`Verdict`] out.
//! - `calls` — the Admin API's rollout calls, over the store's plans.

pub(crate) mod calls;
mod guard;

pub use guard::{Breach, Cohort, GuardKind, GuardSettings, Shortfall, Verdict, judge};
