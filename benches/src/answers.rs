//! When each of N clients first answered a change: the propagation benches' clients record
//! here and the bench waits until all have.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// One slot per client, each set once per round to a time in the bench's own units (a
/// nonzero count since its chosen base).
#[derive(Debug)]
pub struct FirstAnswers {
    slots: Vec<AtomicU64>,
    answered: AtomicUsize,
    all_in: Notify,
}

impl FirstAnswers {
    /// Slots for `clients` clients, none answered.
    pub fn new(clients: usize) -> FirstAnswers {
        FirstAnswers {
            slots: (0..clients).map(|_| AtomicU64::new(0)).collect(),
            answered: AtomicUsize::new(0),
            all_in: Notify::new(),
        }
    }

    /// Client `id` answered at `at`; later answers in the same round are ignored.
    pub fn record(&self, id: usize, at: u64) {
        if self.slots[id].compare_exchange(0, at.max(1), Ordering::AcqRel, Ordering::Acquire).is_ok()
            && self.answered.fetch_add(1, Ordering::AcqRel) + 1 == self.slots.len()
        {
            self.all_in.notify_one();
        }
    }

    /// Starts a new round: nobody has answered.
    pub fn reset(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::Release);
        }
        self.answered.store(0, Ordering::Release);
    }

    /// Waits until every client answered this round, at most `timeout`.
    pub async fn wait_all(&self, timeout: Duration) -> Result<(), tokio::time::error::Elapsed> {
        let all_in = async {
            loop {
                let notified = self.all_in.notified();
                if self.answered.load(Ordering::Acquire) >= self.slots.len() {
                    break;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, all_in).await
    }

    /// Each client's answer this round.
    pub fn times(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().map(|slot| slot.load(Ordering::Acquire))
    }
}
