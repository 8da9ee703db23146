//! Whose turn it is to write: kills and revives go before every waiting write.
//!
//! redb runs one write transaction at a time, so writes queue. A plain `Mutex` serves them
//! in no particular order, and a kill sent during an incident could wait behind a queue of
//! routine writes or a 10,000-flag apply. Here a turn is granted to a waiting kill first;
//! an apply that is writing its rows asks [`Lanes::kill_waiting`] between rows and, when a
//! kill waits, aborts its uncommitted transaction and gives its turn away (see `apply`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Which queue a write waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    /// Kill and revive: granted before any write of the other lane.
    Urgent,
    /// Everything else.
    Normal,
}

/// The writers' turns.
#[derive(Debug, Default)]
pub(super) struct Lanes {
    /// A `Mutex` + `Condvar` rather than a lock per lane: granting a turn must see both
    /// queues at once to put the urgent one first.
    state: Mutex<State>,
    turn: Condvar,
    /// The number of urgent writes waiting, readable without the lock so a running apply
    /// can ask between rows for a few nanoseconds.
    urgent_waiting: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    busy: bool,
    urgent_waiting: usize,
    /// Writers of either lane waiting for a turn: what tests wait on to know a write queued.
    waiting: usize,
}

/// A turn to write; the next writer is let in when it is dropped.
#[derive(Debug)]
pub(super) struct Turn<'a> {
    lanes: &'a Lanes,
}

impl Lanes {
    /// Waits for a turn in `lane`.
    pub(super) fn enter(&self, lane: Lane) -> Turn<'_> {
        // Poison only means a writer panicked while it changed two plain fields; both are
        // valid whatever it did, and its `Turn` was dropped during the unwind.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.waiting += 1;
        match lane {
            Lane::Urgent => {
                state.urgent_waiting += 1;
                self.urgent_waiting.fetch_add(1, Ordering::SeqCst);
                while state.busy {
                    state = self.turn.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                state.urgent_waiting -= 1;
                self.urgent_waiting.fetch_sub(1, Ordering::SeqCst);
            }
            Lane::Normal => {
                while state.busy || state.urgent_waiting > 0 {
                    state = self.turn.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        state.waiting -= 1;
        state.busy = true;
        Turn { lanes: self }
    }

    /// How many writers wait for a turn.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).waiting
    }

    /// Whether an urgent write waits for the current turn to end.
    pub(super) fn kill_waiting(&self) -> bool {
        self.urgent_waiting.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.lanes.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.busy = false;
        drop(state);
        self.lanes.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;

    /// Gives the spawned writers time to queue (the lanes have no hook to wait on; a writer
    /// that queues late only makes the order check weaker, never wrong).
    fn settle() {
        thread::sleep(Duration::from_millis(50));
    }

    #[test]
    fn an_urgent_write_goes_before_every_waiting_normal_write() {
        let lanes = Arc::new(Lanes::default());
        let first = lanes.enter(Lane::Normal);
        let (order, seen) = mpsc::channel();
        let mut waiting = Vec::new();
        for n in 0..3 {
            let (lanes, order) = (Arc::clone(&lanes), order.clone());
            waiting.push(thread::spawn(move || {
                let _turn = lanes.enter(Lane::Normal);
                order.send(format!("normal {n}")).unwrap();
            }));
        }
        settle();
        assert!(!lanes.kill_waiting());
        let (urgent_lanes, urgent_order) = (Arc::clone(&lanes), order.clone());
        waiting.push(thread::spawn(move || {
            let _turn = urgent_lanes.enter(Lane::Urgent);
            urgent_order.send("kill".to_owned()).unwrap();
        }));
        settle();
        assert!(lanes.kill_waiting(), "the running writer can see the kill");
        drop(first);
        for handle in waiting {
            handle.join().unwrap();
        }
        drop(order);
        let order: Vec<String> = seen.iter().collect();
        assert_eq!(order[0], "kill", "order: {order:?}");
        assert_eq!(order.len(), 4);
        assert!(!lanes.kill_waiting());
    }
}
