//! A kill's acknowledgements followed from its commit, for the page that asked for it.
//!
//! The kill posted by the page's script is answered at the commit; the wait for the SDKs
//! starts right then, here, so "slowest 3 ms" counts from the commit as `flagctl kill`'s
//! report does — not from whenever the page's event stream connects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flag_core::AckReport;
use tokio::sync::watch;

use crate::acks::Connections;

/// How long a kill's acknowledgements are followed (as long as the Admin call may wait).
pub(crate) const FOLLOW_FOR: Duration = Duration::from_secs(60);

/// Most kills followed at once; the oldest is let go beyond it.
const MAX_FOLLOWED: usize = 256;

/// The report so far and whether the wait has ended.
pub(crate) type Progress = (AckReport, bool);

/// A kill's progress as it is published: `None` until the wait's first report.
pub(crate) type Following = watch::Receiver<Option<Progress>>;

/// The kills being followed, by environment and revision.
#[derive(Debug, Default)]
pub(crate) struct KillFollows {
    follows: Mutex<HashMap<(String, u64), Following>>,
}

impl KillFollows {
    /// Starts following `revision`'s acknowledgements in `environment` now.
    pub(crate) fn start(&self, connections: &Arc<Connections>, environment: &str, revision: u64) {
        let (sender, receiver) = watch::channel(None);
        {
            let mut follows = self.follows.lock().unwrap_or_else(PoisonError::into_inner);
            // Ended follows go first; past the bound, any (their pages fall back to a fresh wait).
            follows.retain(|_, progress| progress.borrow().as_ref().is_none_or(|(_, done)| !done));
            if follows.len() >= MAX_FOLLOWED {
                follows.clear();
            }
            follows.insert((environment.to_owned(), revision), receiver);
        }
        let connections = Arc::clone(connections);
        let environment = environment.to_owned();
        tokio::spawn(async move {
            let report = connections
                .wait_reporting(&environment, revision, FOLLOW_FOR, |report| {
                    sender.send_replace(Some((report.clone(), false)));
                })
                .await;
            sender.send_replace(Some((report, true)));
        });
    }

    /// The progress of a kill being followed, if it is.
    pub(crate) fn progress(
        &self,
        environment: &str,
        revision: u64,
    ) -> Option<watch::Receiver<Option<Progress>>> {
        let follows = self.follows.lock().unwrap_or_else(PoisonError::into_inner);
        follows.get(&(environment.to_owned(), revision)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn acknowledgements_are_counted_from_the_start_of_the_follow() {
        let connections = Arc::new(Connections::default());
        let sdk = connections.register("production", "checkout");
        let follows = KillFollows::default();
        follows.start(&connections, "production", 4);
        let mut progress = follows.progress("production", 4).unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        sdk.ack(4);
        let (report, done) =
            progress.wait_for(|p| p.as_ref().is_some_and(|(_, done)| *done)).await.unwrap().clone().unwrap();
        assert!(done);
        assert_eq!((report.acknowledged, report.connected), (1, 1));
        assert!(report.slowest >= Duration::from_millis(30), "{report:?}");
        assert!(follows.progress("production", 5).is_none());
    }
}
