//! One series' figures per window, oldest first, only windows that counted something.

use std::collections::VecDeque;

use flag_core::CohortFigures;

#[derive(Debug, Default)]
pub(super) struct Windows {
    /// `(window number, figures)`, numbers increasing.
    windows: VecDeque<(u64, CohortFigures)>,
}

impl Windows {
    pub(super) fn add(&mut self, window: u64, figures: &CohortFigures) {
        match self.windows.back_mut() {
            Some((last, sum)) if *last == window => sum.add(figures),
            // Reports are stamped when they arrive, so windows only move forward.
            _ => self.windows.push_back((window, *figures)),
        }
    }

    /// The sum over windows `first..=last`.
    pub(super) fn sum(&self, first: u64, last: u64) -> CohortFigures {
        let mut sum = CohortFigures::default();
        for (_, figures) in self.windows.iter().filter(|(window, _)| (first..=last).contains(window)) {
            sum.add(figures);
        }
        sum
    }

    /// Whether no window is kept.
    pub(super) fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    pub(super) fn let_go_before(&mut self, oldest: u64) {
        while self.windows.front().is_some_and(|(window, _)| *window < oldest) {
            self.windows.pop_front();
        }
    }
}
