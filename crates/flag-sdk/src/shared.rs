//! What a client's handles and its background tasks share: the live snapshot, the status,
//! and the notifications that subscriptions follow.

use std::sync::Arc;

use arc_swap::ArcSwap;
use flag_core::{Snapshot, ValidationError};
use tokio::sync::watch;
use tracing::info_span;

use crate::counters::EvalCounters;
use crate::model::Model;
use crate::status::{Status, SyncCounters};

/// Most replaced states kept for the metrics flusher. Each holds a whole snapshot, so the
/// cap bounds memory; more changes than this within one flush interval (10 s by default)
/// drop the oldest states' unreported counts.
pub(crate) const MAX_RETIRED: usize = 64;

/// One applied state of the flags: what every evaluation reads.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) snapshot: Snapshot,
    pub(crate) counters: EvalCounters,
    /// The server revision this state is at (0: none yet, or not from a server).
    pub(crate) revision: u64,
    /// The data the snapshot was compiled from: the base for the next change, and what
    /// per-flag subscriptions and the cache file read.
    pub(crate) model: Arc<Model>,
}

impl Live {
    pub(crate) fn new(model: Arc<Model>, snapshot: Snapshot, revision: u64) -> Live {
        let counters = EvalCounters::new(&snapshot);
        Live { snapshot, counters, revision, model }
    }

    fn empty() -> Live {
        Live::new(Arc::new(Model::default()), Snapshot::empty(), 0)
    }
}

/// State shared by every clone of a client and by its tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `ArcSwap`: evaluations load it without locks or waiting, from any thread, while the
    /// follower swaps in a new state; an old state lives until its last reader is done. In
    /// its own `Arc` so clients and caches reach it with one pointer less.
    pub(crate) live: Arc<ArcSwap<Live>>,
    /// `watch`: observers want the current status, not every transition they missed.
    pub(crate) status: watch::Sender<Status>,
    /// Counts applied states. `watch`: a slow subscriber needs to know that something
    /// changed, not each step; per-flag subscribers then compare the model, so coalescing
    /// loses no change.
    pub(crate) applied: watch::Sender<u64>,
    /// What the follower did, for [`Client::sync_stats`](crate::Client::sync_stats).
    pub(crate) sync: SyncCounters,
    /// Environment followed, for labels and logs.
    pub(crate) environment: String,
    /// The flagd store the live revision counts in (empty: unknown), sent back on resume so
    /// a replaced or wiped server answers with a snapshot instead of a wrong delta. A
    /// `Mutex`: set on a snapshot or a cache start, read on connect and by the cache writer,
    /// never by an evaluation.
    pub(crate) store_id: std::sync::Mutex<String>,
    /// The endpoint whose stream is followed now (`None` between streams). A `Mutex`: set
    /// once per stream, read by [`Client::endpoint`](crate::Client::endpoint), never by an
    /// evaluation.
    endpoint: std::sync::Mutex<Option<String>>,
    /// States replaced since the metrics flusher last looked, whose evaluation counts are
    /// not all reported yet: without them, a state that lives between two flushes would
    /// never be counted. A `Mutex`: touched once per apply and once per flush, never by an
    /// evaluation. Capped (see [`MAX_RETIRED`]) for clients nobody flushes.
    pub(crate) retired: std::sync::Mutex<Vec<Arc<Live>>>,
    /// The same for the health reporter, which tallies on its own interval; `None` while no
    /// reporter runs (offline files, test flags), so nothing is kept for nobody.
    report_retired: std::sync::Mutex<Option<Vec<Arc<Live>>>>,
    /// Registered once: setting it on every apply is then one store, not a label lookup
    /// (the flusher sets it too, for a recorder installed later).
    revision_gauge: metrics::Gauge,
}

impl Shared {
    pub(crate) fn new(environment: String, status: Status) -> Shared {
        Shared {
            live: Arc::new(ArcSwap::from_pointee(Live::empty())),
            status: watch::Sender::new(status),
            applied: watch::Sender::new(0),
            sync: SyncCounters::default(),
            revision_gauge: metrics::gauge!("flag_sdk_snapshot_revision", "environment" => environment.clone()),
            environment,
            store_id: std::sync::Mutex::default(),
            endpoint: std::sync::Mutex::default(),
            retired: std::sync::Mutex::default(),
            report_retired: std::sync::Mutex::default(),
        }
    }

    /// Compiles `model` and makes it the state every evaluation sees, at `revision`.
    pub(crate) fn install(&self, model: Model, revision: u64) -> Result<Arc<Live>, ValidationError> {
        let _span = info_span!("apply", environment = %self.environment, revision).entered();
        let previous = self.live.load_full();
        let snapshot = model.compile(&previous.snapshot)?;
        let live = Arc::new(Live::new(Arc::new(model), snapshot, revision));
        if let Some(health) = previous.counters.health_if_used() {
            // The application records outcomes: the first recording on the new state must
            // not allocate its counters on the application's path.
            live.counters.prepare_health(health);
        }
        let replaced = self.live.swap(Arc::clone(&live));
        let mut retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if retired.len() == MAX_RETIRED {
            retired.remove(0);
        }
        retired.push(Arc::clone(&replaced));
        drop(retired);
        let mut report_retired =
            self.report_retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(report_retired) = report_retired.as_mut() {
            if report_retired.len() == MAX_RETIRED {
                report_retired.remove(0);
            }
            report_retired.push(replaced);
        }
        drop(report_retired);
        self.revision_gauge.set(revision as f64);
        tracing::debug!(flags = live.snapshot.len(), "applied");
        // Subscribers learn of it only after the store, so what they then read is new.
        self.applied.send_modify(|generation| *generation += 1);
        Ok(live)
    }

    /// From now on, keeps replaced states for the health reporter.
    pub(crate) fn keep_retired_for_reports(&self) {
        self.report_retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert_default();
    }

    /// The states replaced since the reporter last asked.
    pub(crate) fn take_report_retired(&self) -> Vec<Arc<Live>> {
        let mut retired = self.report_retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        retired.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub(crate) fn store_id(&self) -> String {
        self.store_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn set_store_id(&self, id: String) {
        *self.store_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = id;
    }

    pub(crate) fn endpoint(&self) -> Option<String> {
        self.endpoint.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn set_endpoint(&self, endpoint: Option<&str>) {
        *self.endpoint.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            endpoint.map(str::to_owned);
    }

    pub(crate) fn set_status(&self, status: Status) {
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }
}
