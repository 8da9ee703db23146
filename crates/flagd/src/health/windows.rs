//! One series' figures per window and per client revision, oldest window first, only what
//! counted something.
//!
//! The revision is the one the reporting client's flags were at: a rollout's step is judged
//! on figures counted at or after the revision that wrote it, so reports of the step
//! before — still arriving for a few seconds after the change — never count for it.

use std::collections::VecDeque;

use flag_core::CohortFigures;

#[derive(Debug, Default)]
pub(super) struct Windows {
    /// `(window number, revision, figures)`, window numbers increasing; within a window one
    /// entry per revision reported (a change is rolled out to clients in moments, so a
    /// window holds one or two).
    windows: VecDeque<(u64, u64, CohortFigures)>,
}

impl Windows {
    pub(super) fn add(&mut self, window: u64, revision: u64, figures: &CohortFigures) {
        // Reports are stamped when they arrive, so windows only move forward.
        let same_window = self.windows.iter_mut().rev().take_while(|(number, _, _)| *number == window);
        match same_window.into_iter().find(|(_, counted_at, _)| *counted_at == revision) {
            Some((_, _, sum)) => sum.add(figures),
            None => self.windows.push_back((window, revision, *figures)),
        }
    }

    /// The sum over windows `first..=last` of what was counted at `from_revision` or later.
    pub(super) fn sum(&self, first: u64, last: u64, from_revision: u64) -> CohortFigures {
        let mut sum = CohortFigures::default();
        let counted = |(window, revision, _): &&(u64, u64, CohortFigures)| {
            (first..=last).contains(window) && *revision >= from_revision
        };
        for (_, _, figures) in self.windows.iter().filter(counted) {
            sum.add(figures);
        }
        sum
    }

    /// Whether no window is kept.
    pub(super) fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    pub(super) fn let_go_before(&mut self, oldest: u64) {
        while self.windows.front().is_some_and(|(window, _, _)| *window < oldest) {
            self.windows.pop_front();
        }
    }
}
