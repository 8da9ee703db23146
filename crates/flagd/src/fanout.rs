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

use crate::store::{ApplyPublisher, Committed};

/// The most recent frames a publication keeps, so that a stream a few changes behind sends
/// them as they are instead of reading them back from the store.
const KEPT_FRAMES: usize = 16;
/// ...and at most this many bytes of them, the newest always kept whatever its size.
const KEPT_BYTES: usize = 16 << 20;

/// One committed change (or several, coalesced), encoded once for every stream.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    /// A stream that has sent everything up to here can send `frame` as it is.
    pub(crate) from_revision: u64,
    pub(crate) revision: u64,
    pub(crate) frame: WatchFrame,
}

/// What an environment's streams follow: its newest frames.
#[derive(Debug)]
pub(crate) struct Published {
    /// Oldest first, each starting where the one before it ends; never empty. Most streams
    /// send only the newest. One that has not sent the ones before it yet sends those first,
    /// in order: a stream busy with one change, and the streams of an apply whose large
    /// frame was encoded after the kill that followed it had been published.
    frames: Vec<Frame>,
    /// The newest frame's revision.
    pub(crate) revision: u64,
    /// The environment's changes now come from another store (see [`Hub::store_replaced`]):
    /// no revision a stream sent counts in it.
    pub(crate) store_replaced: bool,
}

impl Published {
    fn of(frames: Vec<Frame>) -> Published {
        let revision = frames.last().map_or(0, |frame| frame.revision);
        Published { frames, revision, store_replaced: false }
    }

    /// The frames a stream that has sent everything up to `sent` sends now, in order; `None`
    /// when none starts there (it missed more than is kept, and catches up from the store).
    /// A gap's frame ([`Hub::publish_gap`], from its revision to itself) is never sent: a
    /// stream behind it catches up from the store, and one at its revision, having caught
    /// up, starts with the frame after it.
    pub(crate) fn after(&self, sent: u64) -> Option<&[Frame]> {
        let first =
            self.frames.iter().position(|frame| frame.from_revision == sent && frame.revision > sent)?;
        Some(&self.frames[first..])
    }

    /// `self` with `frame` added, if it continues or precedes what is kept: a newer frame
    /// that continues the newest is kept after it, one that does not replaces them all (the
    /// streams see the gap); an older frame that ends where the oldest starts goes first. Any
    /// other older frame is no news (streams past it catch up over it anyway).
    fn with(&self, frame: Frame) -> Option<Published> {
        let (oldest, newest) = (self.frames.first()?, self.frames.last()?);
        let frames = if frame.revision > newest.revision {
            if frame.from_revision != newest.revision {
                vec![frame]
            } else {
                self.frames.iter().cloned().chain([frame]).collect()
            }
        } else if frame.revision == oldest.from_revision && frame.from_revision < frame.revision {
            [frame].into_iter().chain(self.frames.iter().cloned()).collect()
        } else {
            return None;
        };
        Some(Published::of(kept(frames)))
    }
}

/// The newest of `frames` within [`KEPT_FRAMES`] and [`KEPT_BYTES`].
fn kept(mut frames: Vec<Frame>) -> Vec<Frame> {
    let mut bytes = 0;
    let mut keep = 0;
    for frame in frames.iter().rev() {
        bytes += frame.frame.bytes().len();
        if keep == KEPT_FRAMES || (keep > 0 && bytes > KEPT_BYTES) {
            break;
        }
        keep += 1;
    }
    frames.drain(..frames.len() - keep);
    frames
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

    /// Publishes a committed write. Writes can finish out of order: see [`Published::with`]
    /// for what becomes of an older revision than the one already published.
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
        let frame = Frame { from_revision, revision, frame };
        self.sender(environment).send_if_modified(|latest| {
            let published = match latest.as_deref() {
                Some(current) if !current.store_replaced => current.with(frame),
                _ => Some(Published::of(vec![frame])),
            };
            let changed = published.is_some();
            if let Some(published) = published {
                *latest = Some(Arc::new(published));
            }
            changed
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
            let frame =
                Frame { from_revision: 0, revision: u64::MAX, frame: changes_frame(&ChangeBatch::default()) };
            let last = Published { frames: vec![frame], revision: u64::MAX, store_replaced: true };
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

/// An apply (or restore, or promote) is published as one frame of its whole delta, encoded
/// once: streams that sent everything before it send it as it is, rather than each reading
/// thousands of changes back from the store ahead of a kill that follows.
impl ApplyPublisher for Hub {
    fn prepare(&self, environment: &str, delta: &ChangeBatch) -> Box<dyn FnOnce() + Send + '_> {
        let (environment, frame) = (environment.to_owned(), changes_frame(delta));
        let (from_revision, revision) = (delta.from_revision, delta.revision);
        Box::new(move || self.publish_frame(&environment, from_revision, revision, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from_revision: u64, revision: u64) -> ChangeBatch {
        ChangeBatch { from_revision, revision, ..ChangeBatch::default() }
    }

    /// The (from, to) of the frames a stream at `sent` would send.
    fn sends(hub: &Hub, sent: u64) -> Option<Vec<(u64, u64)>> {
        let latest = hub.subscribe("production").borrow().clone()?;
        latest.after(sent).map(|frames| frames.iter().map(|f| (f.from_revision, f.revision)).collect())
    }

    #[test]
    fn a_stream_behind_by_a_few_changes_sends_the_kept_frames_in_order() {
        let hub = Hub::default();
        for revision in 1..=3 {
            hub.publish_batch("production", &batch(revision - 1, revision));
        }
        assert_eq!(sends(&hub, 3), None, "up to date: nothing starts there");
        assert_eq!(sends(&hub, 2), Some(vec![(2, 3)]));
        assert_eq!(sends(&hub, 0), Some(vec![(0, 1), (1, 2), (2, 3)]));
        // Only the newest frames are kept.
        for revision in 4..=40 {
            hub.publish_batch("production", &batch(revision - 1, revision));
        }
        assert_eq!(sends(&hub, 0), None, "too far behind: it catches up from the store");
        assert_eq!(sends(&hub, 40 - KEPT_FRAMES as u64).map(|frames| frames.len()), Some(KEPT_FRAMES));
    }

    #[test]
    fn a_gaps_frame_is_never_sent_and_a_stream_at_its_revision_goes_on_after_it() {
        let hub = Hub::default();
        hub.publish_batch("production", &batch(0, 1));
        // Another flagd's commits up to 7, read as a gap: streams catch up from the store.
        hub.publish_gap("production", 7);
        assert_eq!(sends(&hub, 1), None, "behind the gap: from the store");
        assert_eq!(sends(&hub, 7), None, "at the gap: nothing to send");
        hub.publish_batch("production", &batch(7, 8));
        assert_eq!(sends(&hub, 7), Some(vec![(7, 8)]), "caught up to 7: the next change alone");
        assert_eq!(sends(&hub, 1), None);
    }

    #[test]
    fn an_apply_published_after_the_kill_that_followed_it_is_sent_before_the_kill() {
        let hub = Hub::default();
        hub.publish_batch("production", &batch(9, 10));
        // The kill (10,010 to 10,011) is published while the apply's frame (10 to 10,010) is
        // still being encoded.
        hub.publish_batch("production", &batch(10_010, 10_011));
        assert_eq!(sends(&hub, 10), None, "until the apply's frame is there, a gap");
        hub.publish_batch("production", &batch(10, 10_010));
        assert_eq!(sends(&hub, 10), Some(vec![(10, 10_010), (10_010, 10_011)]));
        assert_eq!(hub.published("production"), Some(10_011), "the newest revision stays the kill's");
        // An older frame that fits nowhere changes nothing.
        hub.publish_batch("production", &batch(3, 4));
        assert_eq!(sends(&hub, 3), None);
    }

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
