//! Publishing committed changes to every stream of an environment.
//!
//! Each environment has one `tokio::sync::watch` channel holding the latest change, already
//! encoded. `watch` and not `broadcast`: the writer does no per-subscriber work and never
//! waits for a slow stream, and a stream that falls behind sees only the newest change —
//! it notices the gap (`from_revision` is not what it sent last) and catches up in one step
//! from the store instead of replaying every intermediate frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use flag_core::ChangeBatch;
use flag_proto::{WatchFrame, changes_frame};
use tokio::sync::watch;

use crate::store::Committed;

/// One committed change, encoded once for every stream.
#[derive(Debug)]
pub(crate) struct Published {
    /// A stream that has sent everything up to here can send `frame` as it is.
    pub(crate) from_revision: u64,
    pub(crate) revision: u64,
    pub(crate) frame: WatchFrame,
    /// The environment's changes now come from another store (see [`Hub::store_replaced`]):
    /// no revision a stream sent counts in it.
    pub(crate) store_replaced: bool,
}

type Latest = Option<Arc<Published>>;

/// The per-environment channels.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    // A plain mutex: taken once per write and once per new stream, never per frame sent.
    environments: Mutex<HashMap<String, watch::Sender<Latest>>>,
    /// Set at shutdown: later subscriptions end at once instead of keeping the server up.
    closed: AtomicBool,
    /// Bumped by every publication, whatever the environment: what webhook deliverers wait
    /// on. A `watch` of a counter because they read what changed from the store and need
    /// only "something did"; it costs a write one store of an integer, whoever listens.
    commits: watch::Sender<u64>,
}

impl Hub {
    fn sender(&self, environment: &str) -> watch::Sender<Latest> {
        let mut environments = self.environments.lock().unwrap_or_else(PoisonError::into_inner);
        environments.entry(environment.to_owned()).or_insert_with(|| watch::Sender::new(None)).clone()
    }

    /// Follows an environment's changes from now on.
    pub(crate) fn subscribe(&self, environment: &str) -> watch::Receiver<Latest> {
        if self.closed.load(Ordering::Acquire) {
            // Its sender is dropped right away, so the first `changed()` reports the end.
            return watch::Sender::new(None).subscribe();
        }
        self.sender(environment).subscribe()
    }

    /// Publishes a committed write. Writes can finish out of order; an older revision than
    /// the one already published is dropped, since streams catch up past it anyway.
    pub(crate) fn publish(&self, environment: &str, committed: &Committed) {
        let revision = committed.revision;
        let frame = changes_frame(&ChangeBatch::of_entry(committed.entry.clone()));
        self.publish_frame(environment, revision.saturating_sub(1), revision, frame);
    }

    /// Publishes changes another flagd on the same store committed (see `replica`): streams
    /// at `batch.from_revision` send it as it is, the others catch up from the store.
    pub(crate) fn publish_batch(&self, environment: &str, batch: &ChangeBatch) {
        self.publish_frame(environment, batch.from_revision, batch.revision, changes_frame(batch));
    }

    /// Publishes that the environment reached `revision` with no changes to send as they
    /// are: `from_revision` is `revision` itself, which no stream behind it holds, so every
    /// stream catches up from the store.
    pub(crate) fn publish_gap(&self, environment: &str, revision: u64) {
        self.publish_frame(environment, revision, revision, changes_frame(&ChangeBatch::default()));
    }

    /// The environments followed now.
    pub(crate) fn environments(&self) -> Vec<String> {
        self.environments.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// The newest revision published for the environment, if any.
    pub(crate) fn published(&self, environment: &str) -> Option<u64> {
        let environments = self.environments.lock().unwrap_or_else(PoisonError::into_inner);
        environments.get(environment)?.borrow().as_ref().map(|latest| latest.revision)
    }

    /// Encoded before the channel is locked: streams read it meanwhile.
    fn publish_frame(&self, environment: &str, from_revision: u64, revision: u64, frame: WatchFrame) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.commits.send_modify(|count| *count = count.wrapping_add(1));
        let published = Arc::new(Published { from_revision, revision, frame, store_replaced: false });
        self.sender(environment).send_if_modified(|latest| {
            let newer = latest.as_ref().is_none_or(|current| current.revision < revision);
            if newer {
                *latest = Some(published);
            }
            newer
        });
    }

    /// Ends the subscriptions of a deleted environment: their `changed()` reports the end,
    /// and, the hub being open, the streams know it is the environment's.
    pub(crate) fn end(&self, environment: &str) {
        self.environments.lock().unwrap_or_else(PoisonError::into_inner).remove(environment);
    }

    /// Ends the subscriptions of an environment whose changes now come from another store (a
    /// relay's upstream was restored or replaced): each sees one last publication saying so,
    /// and its stream ends telling its client to subscribe again, naming the store it holds,
    /// which gets it a snapshot of the new one.
    pub(crate) fn store_replaced(&self, environment: &str) {
        let sender = self.environments.lock().unwrap_or_else(PoisonError::into_inner).remove(environment);
        if let Some(sender) = sender {
            let frame = changes_frame(&ChangeBatch::default());
            let last = Published { from_revision: 0, revision: u64::MAX, frame, store_replaced: true };
            sender.send_replace(Some(Arc::new(last)));
        }
    }

    /// Whether the hub is closed (the server is shutting down).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Changes whenever a write is published, in any environment.
    pub(crate) fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Ends every stream's subscription (at shutdown).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.environments.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replaced_store_is_said_once_then_its_subscriptions_end_and_new_ones_follow_on() {
        let hub = Hub::default();
        hub.publish_gap("production", 7);
        let mut old = hub.subscribe("production");
        old.borrow_and_update();
        hub.store_replaced("production");
        old.changed().await.expect("the last publication is seen");
        let last = old.borrow_and_update().clone().expect("a publication");
        assert!(last.store_replaced, "it says the store was replaced");
        assert!(old.changed().await.is_err(), "then the subscription ends");

        // The next store's revisions start again below the old ones, and are published.
        let mut new = hub.subscribe("production");
        hub.publish_gap("production", 2);
        new.changed().await.expect("the new store's revision");
        let published = new.borrow_and_update().clone().expect("a publication");
        assert_eq!((published.revision, published.store_replaced), (2, false));
        assert_eq!(hub.published("production"), Some(2));
    }
}
