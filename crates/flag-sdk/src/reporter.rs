//! Health reports to flagd: what the client counted per (flag, variant, revision) since its
//! last report, numbered so that flagd counts each report exactly once.
//!
//! # Delivery
//!
//! At each interval the reporter adds the growth of every state's counters to `pending`.
//! Then, if no report awaits flagd's acknowledgement, `pending` becomes the next report:
//! the next sequence number, sent on the stream. That report stays `in_flight` — and is sent
//! again, unchanged, first thing on every new stream — until flagd acknowledges its sequence;
//! what is counted meanwhile waits in `pending` for the next number. flagd applies a report
//! only if its sequence is above the last it applied for this instance, so a report resent
//! after a reconnect is not counted twice, and no count leaves `pending` or `in_flight`
//! before an acknowledgement says it is counted. Memory stays bounded while flagd is away:
//! one report in flight and one pending table, however long the outage.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use flag_core::{CohortFigures, CohortReport, HealthReport};

use crate::shared::{Live, Shared};

/// Reports one client's figures; its follower sends what it answers.
#[derive(Debug)]
pub(crate) struct Reporter {
    /// Names this client process to flagd: sequence numbers count per instance.
    instance: String,
    /// A `Mutex`: touched once per interval and per acknowledgement, never by evaluation.
    state: Mutex<ReportState>,
}

#[derive(Debug, Default)]
struct ReportState {
    tallied: Vec<Tallied>,
    next_sequence: u64,
    /// Sent, not yet acknowledged: sent again on each new stream.
    in_flight: Option<HealthReport>,
    /// Counted since the report in flight was made.
    pending: BTreeMap<(String, String, u64), CohortFigures>,
}

/// A state whose counts are being reported, and its totals when last tallied.
#[derive(Debug)]
struct Tallied {
    live: Arc<Live>,
    evaluations: Vec<u64>,
    health: Vec<CohortFigures>,
    /// Tallies since it was replaced (`None` while live): a replaced state is tallied twice
    /// more, for evaluations that loaded it just before the swap.
    retired_tallies: Option<u8>,
}

impl Tallied {
    fn new(live: Arc<Live>) -> Tallied {
        let slots = live.counters.labels().len();
        Tallied {
            live,
            evaluations: vec![0; slots],
            health: vec![CohortFigures::default(); slots],
            retired_tallies: None,
        }
    }

    /// Adds the growth since the last tally to `pending`.
    fn tally(&mut self, pending: &mut BTreeMap<(String, String, u64), CohortFigures>) {
        let counters = &self.live.counters;
        let evaluations = counters.totals();
        let health = counters.health_if_used().map(|health| health.totals(evaluations.len()));
        for (slot, (flag, variant)) in counters.labels().iter().enumerate().skip(1) {
            let mut grown = CohortFigures {
                evaluations: evaluations[slot].wrapping_sub(self.evaluations[slot]),
                ..CohortFigures::default()
            };
            if let Some(now) = health.as_ref().map(|totals| &totals[slot]) {
                let before = &self.health[slot];
                grown.successes = now.successes.wrapping_sub(before.successes);
                grown.errors = now.errors.wrapping_sub(before.errors);
                for (bucket, count) in grown.latency.counts.iter_mut().enumerate() {
                    *count = now.latency.counts[bucket].wrapping_sub(before.latency.counts[bucket]);
                }
            }
            if grown != CohortFigures::default() {
                let key = (flag.to_string(), variant.to_string(), self.live.revision);
                pending.entry(key).or_default().add(&grown);
            }
        }
        self.evaluations = evaluations;
        if let Some(health) = health {
            self.health = health;
        }
    }
}

impl Reporter {
    pub(crate) fn new() -> Reporter {
        let instance = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let state = ReportState { next_sequence: 1, ..ReportState::default() };
        Reporter { instance, state: Mutex::new(state) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ReportState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tallies what was counted since the last call; answers the next report to send, if
    /// none is awaiting acknowledgement and anything was counted.
    pub(crate) fn next_report(&self, shared: &Shared) -> Option<HealthReport> {
        let mut state = self.state();
        let state = &mut *state;
        for retired in shared.take_report_retired() {
            match state.tallied.iter_mut().find(|t| Arc::ptr_eq(&t.live, &retired)) {
                Some(known) => known.retired_tallies = Some(0),
                None => state.tallied.push(Tallied { retired_tallies: Some(0), ..Tallied::new(retired) }),
            }
        }
        let live = shared.live.load_full();
        if !state.tallied.iter().any(|t| Arc::ptr_eq(&t.live, &live)) {
            state.tallied.push(Tallied::new(live));
        }
        for tallied in &mut state.tallied {
            tallied.tally(&mut state.pending);
            if let Some(tallies) = tallied.retired_tallies.as_mut() {
                *tallies += 1;
            }
        }
        state.tallied.retain(|t| t.retired_tallies.is_none_or(|tallies| tallies < 2));
        if state.in_flight.is_some() || state.pending.is_empty() {
            return None;
        }
        let cohorts = std::mem::take(&mut state.pending)
            .into_iter()
            .map(|((flag, variant, revision), figures)| CohortReport { flag, variant, revision, figures })
            .collect();
        let report = HealthReport { instance: self.instance.clone(), sequence: state.next_sequence, cohorts };
        state.next_sequence += 1;
        state.in_flight = Some(report.clone());
        Some(report)
    }

    /// The report sent but not acknowledged, to send again on a new stream.
    pub(crate) fn unacknowledged(&self) -> Option<HealthReport> {
        self.state().in_flight.clone()
    }

    /// flagd has counted the report `sequence`.
    pub(crate) fn acknowledged(&self, sequence: u64) {
        let mut state = self.state();
        if state.in_flight.as_ref().is_some_and(|report| report.sequence == sequence) {
            state.in_flight = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Context, Evaluate, Flag, ON, Outcome};

    use super::*;
    use crate::TestFlags;

    fn cohorts(report: &HealthReport) -> Vec<(&str, &str, u64, u64, u64)> {
        let figures = |c: &CohortReport| (c.figures.evaluations, c.figures.errors);
        report
            .cohorts
            .iter()
            .map(|c| (c.flag.as_str(), c.variant.as_str(), c.revision, figures(c).0, figures(c).1))
            .collect()
    }

    #[test]
    fn a_report_stays_in_flight_until_acknowledged_and_what_is_counted_meanwhile_goes_next() {
        let flags = TestFlags::new();
        flags.flag(Flag::rollout("chat", 100.0).unwrap()).unwrap();
        let client = flags.client();
        let shared = &client.shared;
        shared.keep_retired_for_reports();
        let reporter = Reporter::new();
        let user = Context::new("user-1");
        let first_revision = client.revision();

        for _ in 0..3 {
            assert!(client.is_enabled("chat", &user));
        }
        client.record_outcome("chat", &user, Outcome::Error);
        let first = reporter.next_report(shared).expect("counted: a report");
        assert_eq!(first.sequence, 1);
        assert_eq!(cohorts(&first), [("chat", ON, first_revision, 3, 1)]);

        // Unacknowledged: nothing new is sent, and the same report is there to resend.
        assert!(client.is_enabled("chat", &user));
        assert!(client.is_enabled("chat", &user));
        assert_eq!(reporter.next_report(shared), None);
        assert_eq!(reporter.unacknowledged(), Some(first.clone()));
        reporter.acknowledged(7);
        assert_eq!(reporter.unacknowledged(), Some(first), "another number acknowledges nothing");
        reporter.acknowledged(1);
        assert_eq!(reporter.unacknowledged(), None);

        // A change: the replaced snapshot's last counts go out with the new one's.
        flags.flag(Flag::rollout("chat", 100.0).unwrap()).unwrap();
        assert!(client.is_enabled("chat", &user));
        let second = reporter.next_report(shared).expect("counted meanwhile: a report");
        assert_eq!(second.sequence, 2);
        assert_eq!(
            cohorts(&second),
            [("chat", ON, first_revision, 2, 0), ("chat", ON, client.revision(), 1, 0)]
        );
        reporter.acknowledged(2);
        assert_eq!(reporter.next_report(shared), None, "nothing counted since: no report");
    }
}
