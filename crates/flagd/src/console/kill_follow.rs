//! A kill's acknowledgements followed from its commit, for the page that asked for it.
//!
//! The kill posted by the page's script is answered at the commit; the wait for the SDKs
//! starts right then, here, so "slowest 3 ms" counts from the commit as `flagctl kill`'s
//! report does — not from whenever the page's event stream connects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flag_core::AckReport;
use tokio::sync::watch;

use crate::acks::Connections;

/// How long a kill's acknowledgements are followed (as long as the Admin call may wait).
pub(crate) const FOLLOW_FOR: Duration = Duration::from_secs(60);

/// How long a follow is kept from its start: the wait's longest, and a minute more for a
/// page that connects late.
const KEPT_FOR: Duration = Duration::from_secs(120);

/// Most kills followed at once.
const MAX_FOLLOWED: usize = 256;

/// The report so far and whether the wait has ended.
pub(crate) type Progress = (AckReport, bool);

/// A kill's progress as it is published: `None` until the wait's first report.
pub(crate) type Following = watch::Receiver<Option<Progress>>;

/// The kills being followed, by environment and revision.
#[derive(Debug, Default)]
pub(crate) struct KillFollows {
    follows: Mutex<HashMap<(String, u64), Follow>>,
}

#[derive(Debug)]
struct Follow {
    started: Instant,
    progress: Following,
}

impl KillFollows {
    /// Starts following `revision`'s acknowledgements in `environment` now.
    pub(crate) fn start(&self, connections: &Arc<Connections>, environment: &str, revision: u64) {
        let (sender, receiver) = watch::channel(None);
        {
            let mut follows = self.follows.lock().unwrap_or_else(PoisonError::into_inner);
            // A follow is kept until a while after it began, so a page that connects late
            // still gets the report counted from the commit; past the bound a new kill is not
            // followed here, and its page waits from when it connects.
            follows.retain(|_, follow| follow.started.elapsed() < KEPT_FOR);
            if follows.len() >= MAX_FOLLOWED {
                return;
            }
            let follow = Follow { started: Instant::now(), progress: receiver };
            follows.insert((environment.to_owned(), revision), follow);
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
        follows.get(&(environment.to_owned(), revision)).map(|follow| follow.progress.clone())
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
