//! Guarded rollouts: a plan ramps a flag's `on` share step by step while its new path's
//! cohort looks like its control cohort (`off`) over the same window, and acts when it
//! does not.
//!
//! - `guard` — the decision rule, pure: two cohorts' figures in, a [`Verdict`] out.
//! - `decide` — a window's verdict made a store transition, with the words history shows.
//! - `engine` — the task that runs every running plan: holds, windows, decisions, writes.
//! - `calls` — the Admin API's rollout calls, over the store's plans and the engine's
//!   windows.

pub(crate) mod calls;
mod decide;
mod engine;
#[cfg(test)]
mod engine_tests;
mod guard;

pub(crate) use decide::DECISIONS;
pub(crate) use engine::{Windows, start as start_engine};

pub use guard::{Breach, Cohort, GuardKind, GuardSettings, Shortfall, Verdict, judge};
