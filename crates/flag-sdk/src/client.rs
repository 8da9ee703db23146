//! The handle applications hold: synchronous evaluation of the live snapshot, status and
//! subscriptions. Cheap to clone; the background tasks stop when the last clone is dropped.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use flag_core::{Context, Evaluate, FlagHandle, FlagRef, Outcome, Question};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dark_launch::{DarkLaunch, DarkLaunchStats, DarkLaunches};
use crate::evaluate::{CachedClient, Current, micros};
use crate::metrics::Flusher;
use crate::observe::Observation;
use crate::settings::ClientBuilder;
use crate::shared::{Live, Shared};
use crate::status::{Status, SyncStats};
use crate::subscribe::{Changes, FlagChanges};

/// The in-process flag client. Build one with [`Client::builder`] (or [`TestFlags`](crate::TestFlags)
/// in unit tests) and share it: clones are cheap and see the same flags.
///
/// Every evaluation is synchronous and reads the snapshot in memory: one lock-free load, no
/// allocation, never a wait on the network, whatever the server is doing.
///
/// The getters are flag-core's [`Evaluate`] (`use flag_sdk::Evaluate;`). The client's one
/// load ends with each call — a change may swap the snapshot out and free it right after —
/// so answers that would borrow it are copied: [`string_value`](Evaluate::string_value) is
/// a `String`, [`json_value`](Evaluate::json_value) a `serde_json::Value`, and the
/// `*_detail` getters answer an [`OwnedDetail`](flag_core::OwnedDetail); they allocate for
/// it. Owned rather than `Arc`-backed: sharing the snapshot's values through `Arc`s would
/// cost an atomic write to one shared count per call, which contends across threads, and
/// holding the snapshot in the answer would keep old snapshots alive. Copying costs only
/// these getters; the others (`is_enabled`, `bool_value`, `number_value`, `launch_stage`)
/// allocate nothing. To borrow without copying, ask [`Client::current`] (or
/// [`Client::cached`] in a hot loop).
#[derive(Clone, Debug)]
pub struct Client {
    /// The snapshot cell itself (also in `shared`): evaluations reach it in one hop.
    live: Arc<ArcSwap<Live>>,
    pub(crate) shared: Arc<Shared>,
    /// Dark-launch figures per flag, read by the application (e.g. a mismatch rate). Shared
    /// by the clones, which count into the same figures; the background tasks never use it.
    dark_launches: Arc<DarkLaunches>,
    /// Shared by the clones so the tasks stop with the last of them.
    tasks: Arc<Tasks>,
}

/// The client's background tasks (follower, cache writer, file reload, metrics flush).
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// A `Mutex` only so tasks can be added while the client is being built.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Flushes evaluation counts on demand as well as on its timer.
    pub(crate) flusher: Arc<Flusher>,
}

impl Tasks {
    pub(crate) fn add(&self, handle: JoinHandle<()>) {
        match self.handles.lock() {
            Ok(mut handles) => handles.push(handle),
            // A poisoned list still must not leave the task running forever.
            Err(_) => handle.abort(),
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        let handles = match self.handles.get_mut() {
            Ok(handles) => handles,
            Err(poisoned) => poisoned.into_inner(),
        };
        for handle in handles.drain(..) {
            handle.abort();
        }
    }
}

impl Client {
    /// A builder for a client following the flagd at `endpoint` (e.g. `http://127.0.0.1:8013`),
    /// or at one of several replicas of one store, comma-separated
    /// (`http://flagd-a:8013,http://flagd-b:8013`) and tried in that order; see
    /// [`ClientBuilder::fallback_endpoints`] for how the client moves between them.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoint)
    }

    /// A builder for a client serving the flags file at `path` instead of following flagd;
    /// see [`ClientBuilder::offline_file`].
    pub fn offline(path: impl Into<std::path::PathBuf>) -> ClientBuilder {
        ClientBuilder::new(String::new()).offline_file(path)
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, tasks: Arc<Tasks>) -> Client {
        Client { live: Arc::clone(&shared.live), shared, dark_launches: Arc::default(), tasks }
    }

    /// The flags as of now, for several evaluations that must agree, and for string and JSON
    /// values and details borrowed from it instead of copied. One load.
    pub fn current(&self) -> Current {
        Current::new(self.live.load())
    }

    /// A handle for `key` that skips the hash lookup in hot loops; it stays valid across
    /// changes (and finds the flag if it is created later).
    pub fn handle(&self, key: &str) -> FlagHandle {
        self.live.load().snapshot.handle(key)
    }

    /// A per-thread evaluator for hot loops; see [`CachedClient`].
    pub fn cached(&self) -> CachedClient {
        CachedClient::new(Arc::clone(&self.live))
    }

    /// The revision of the flags served: flagd's when following it (or the cache's), a count
    /// of loads for an offline file or [`TestFlags`](crate::TestFlags), 0 before any.
    pub fn revision(&self) -> u64 {
        self.live.load().revision
    }

    /// Whether the flags are current.
    pub fn status(&self) -> Status {
        *self.shared.status.borrow()
    }

    /// The endpoint whose stream the client follows now, as given to the builder; `None`
    /// while it follows none (connecting, between two servers, offline, test flags).
    pub fn endpoint(&self) -> Option<String> {
        self.shared.endpoint()
    }

    /// Snapshots, changes and reconnections so far.
    pub fn sync_stats(&self) -> SyncStats {
        self.shared.sync.stats()
    }

    /// Follows the status: `changed().await` wakes on each transition.
    pub fn status_changes(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    /// Wakes on every applied change to any flag.
    pub fn changes(&self) -> Changes {
        Changes::new(&self.shared)
    }

    /// Wakes when `key`'s answers may have changed: its definition, or a segment it uses.
    pub fn flag_changes(&self, key: &str) -> FlagChanges {
        FlagChanges::new(&self.shared, key)
    }

    /// Runs old and new code paths by the dark-launch cohort of `ctx`; see [`DarkLaunch`].
    pub fn dark_launch<'a>(&'a self, key: &'a str, ctx: &Context<'_>) -> DarkLaunch<'a> {
        DarkLaunch::new(&self.live, &self.dark_launches, key, ctx)
    }

    /// Figures of the dark launch of `key` in this process so far.
    pub fn dark_launch_stats(&self, key: &str) -> DarkLaunchStats {
        self.dark_launches.stats(key)
    }

    /// Records how a unit of work went for the variant of `flag` that `ctx` gets from the
    /// current flags (evaluated again, not counted as an evaluation). Counted per thread
    /// like evaluations, without allocating, and reported to flagd (see the README).
    #[inline]
    pub fn record_outcome<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>, outcome: Outcome) {
        self.live.load().record(flag, ctx, Some(outcome), None);
    }

    /// Records how long a unit of work took, as [`record_outcome`](Self::record_outcome)
    /// does its outcome, in flag-core's fixed latency buckets.
    #[inline]
    pub fn record_latency<F: FlagRef + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        latency: std::time::Duration,
    ) {
        self.live.load().record(flag, ctx, None, Some(micros(latency)));
    }

    /// Watches a unit of work: when the returned [`Observation`] is dropped it records the
    /// time since now and a success, or an error if it was [`fail`](Observation::fail)ed or
    /// dropped by a panic.
    #[inline]
    pub fn observe<'a, F: FlagRef + ?Sized>(
        &'a self,
        flag: &'a F,
        ctx: &'a Context<'a>,
    ) -> Observation<'a, F> {
        Observation::new(&self.live, flag, ctx)
    }

    /// Reports the evaluation counts gathered since the last report to the `metrics`
    /// recorder now, instead of at the next background flush.
    pub fn flush_metrics(&self) {
        self.tasks.flusher.flush(&self.shared);
    }
}

impl<'a> Evaluate<'a> for &'a Client {
    type Out<Q: Question<'a>> = Q::Owned;

    #[inline]
    fn ask<F: FlagRef + ?Sized, Q: Question<'a>>(self, flag: &F, ctx: &Context<'_>, question: Q) -> Q::Owned {
        let live = self.live.load();
        Q::into_owned(question.answer(live.evaluate(flag, ctx)))
    }
}
