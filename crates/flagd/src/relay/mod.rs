//! Relay mode (`flagd relay --upstream URL`): a flagd with no store of its own that serves
//! `Sync.Watch` to local SDKs, and OpenFeature's services (RPC, in-process sync, OFREP) to
//! local providers, from one upstream stream per environment.
//!
//! - `mirror` — one environment as the upstream sent it, with what changed at which revision,
//!   so an SDK resuming from a revision the relay has seen gets only the changes since;
//! - `upstream` — the upstreams' connections and the follower of one environment: it applies
//!   the upstream's frames to the mirror, publishes them to the relay's streams, and reports
//!   the relay's SDKs' acknowledgements upstream (so a kill there counts them);
//! - `reports` — the SDKs' health reports passed upstream (so its rollout guards count them),
//!   and the upstream's acknowledgements passed back;
//! - `cache` — the mirrors on disk, so a relay restarted while its upstream is away serves;
//! - `admin_proxy` — Admin reads forwarded upstream, writes refused with its address;
//! - `settings` and `serve` — the options and the wiring.
//!
//! Relays chain: a relay's upstream may be a relay, whose follower reports the acknowledgements
//! of its SDKs and of the relays below it, summed.

mod admin_proxy;
mod cache;
mod mirror;
mod reports;
mod serve;
mod settings;
mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flag_core::HealthReport;
use flag_proto::{changes_frame, snapshot_frame};
use tokio::sync::watch;
use tonic::Status;
use tracing::debug;

use crate::acks::Connections;
use crate::auth::Access;
use crate::fanout::Hub;
use crate::openfeature::{Currents, FlagSource, Flags};
use crate::sync_source::{CatchUp, FrameKind, StreamSettings, SyncSource};
use crate::watch_stream::FrameSender;
use mirror::Mirror;
use reports::Reports;
use upstream::Upstreams;

pub use serve::serve_relay;
pub use settings::RelayConfig;

/// How long a new stream waits for the relay's first copy of its environment.
const FIRST_COPY_WAIT: Duration = Duration::from_secs(10);

/// Where a followed environment stands.
#[derive(Clone, Debug, PartialEq)]
enum Standing {
    /// No copy yet; the last failure to get one, if any.
    Waiting(Option<String>),
    /// Served from the mirror.
    Held,
    /// The upstream has no such environment (never had, or deleted it).
    Gone(String),
}

/// One environment the relay follows.
#[derive(Debug)]
struct Followed {
    mirror: Mutex<Option<Mirror>>,
    copy: watch::Sender<Standing>,
    /// Whether its upstream stream is up now.
    connected: AtomicBool,
    /// Its SDKs' health reports not yet acknowledged upstream.
    reports: Reports,
}

impl Followed {
    fn new(mirror: Option<Mirror>) -> Followed {
        let standing = if mirror.is_some() { Standing::Held } else { Standing::Waiting(None) };
        Followed {
            mirror: Mutex::new(mirror),
            copy: watch::Sender::new(standing),
            connected: AtomicBool::new(false),
            reports: Reports::default(),
        }
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, Option<Mirror>> {
        self.mirror.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A failed attempt to reach the upstream, for the streams waiting for a first copy.
    fn failed(&self, error: &str) {
        self.copy.send_if_modified(|copy| match copy {
            Standing::Waiting(last) => {
                *last = Some(error.to_owned());
                true
            }
            Standing::Held | Standing::Gone(_) => false,
        });
    }
}

/// The relay's shared state: what its streams are served from.
#[derive(Debug)]
pub(crate) struct Relay {
    settings: StreamSettings,
    access: Arc<Access>,
    hub: Hub,
    connections: Arc<Connections>,
    upstreams: Arc<Upstreams>,
    environments: Mutex<HashMap<String, Arc<Followed>>>,
    /// Bumped by every change to a mirror: the cache writer waits on it.
    changed: watch::Sender<u64>,
    stopped: watch::Receiver<bool>,
    /// Set once the gRPC server accepts connections; read by `/readyz`.
    serving: AtomicBool,
    /// Each environment's flags compiled for OpenFeature's services, followed on first use.
    currents: Currents,
}

impl Relay {
    fn environments(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Followed>>> {
        self.environments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The environment's entry, following it upstream from now on if it was not yet.
    fn follow(self: &Arc<Self>, environment: &str) -> Arc<Followed> {
        let mut environments = self.environments();
        if let Some(followed) = environments.get(environment) {
            return Arc::clone(followed);
        }
        let followed = Arc::new(Followed::new(None));
        environments.insert(environment.to_owned(), Arc::clone(&followed));
        tokio::spawn(upstream::follow(Arc::clone(self), environment.to_owned(), Arc::clone(&followed)));
        followed
    }

    /// Starts following the environments of a cache file, serving their copies meanwhile.
    fn follow_cached(self: &Arc<Self>, cached: Vec<(String, Mirror)>) {
        let mut environments = self.environments();
        for (environment, mirror) in cached {
            let followed = Arc::new(Followed::new(Some(mirror)));
            environments.insert(environment.clone(), Arc::clone(&followed));
            tokio::spawn(upstream::follow(Arc::clone(self), environment, followed));
        }
    }

    /// The upstream has no such environment: its streams end and it is followed no more.
    fn forget(&self, environment: &str, reason: String) {
        if let Some(followed) = self.environments().remove(environment) {
            followed.copy.send_replace(Standing::Gone(reason));
        }
        self.hub.end(environment);
        self.changed.send_modify(|count| *count += 1);
    }

    /// Every mirror held now, by environment, for the cache file.
    fn mirrors(&self) -> Vec<(String, Mirror)> {
        let environments: Vec<_> =
            self.environments().iter().map(|(name, followed)| (name.clone(), Arc::clone(followed))).collect();
        let mut mirrors: Vec<_> = environments
            .into_iter()
            .filter_map(|(name, followed)| Some((name, followed.mirror().clone()?)))
            .collect();
        mirrors.sort_by(|a, b| a.0.cmp(&b.0));
        mirrors
    }

    /// Ready when serving, with a copy of every environment it follows.
    fn is_ready(&self) -> bool {
        self.serving.load(Ordering::Acquire)
            && self.environments().values().all(|followed| *followed.copy.borrow() == Standing::Held)
    }

    /// Per followed environment, whether its upstream stream is up.
    fn upstream_connected(&self) -> Vec<(String, bool)> {
        let mut connected: Vec<_> = self
            .environments()
            .iter()
            .map(|(name, followed)| (name.clone(), followed.connected.load(Ordering::Acquire)))
            .collect();
        connected.sort();
        connected
    }
}

impl SyncSource for Relay {
    fn settings(&self) -> StreamSettings {
        self.settings
    }

    fn access(&self) -> &Access {
        &self.access
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// Health reports feed the upstream's rollout guards: a relay takes them and passes them
    /// upstream (see `reports`).
    fn counts_reports(&self) -> bool {
        true
    }

    async fn open(self: &Arc<Self>, environment: &str) -> Result<String, Status> {
        let followed = self.follow(environment);
        let mut copy = followed.copy.subscribe();
        let _ = tokio::time::timeout(
            FIRST_COPY_WAIT,
            copy.wait_for(|copy| !matches!(copy, Standing::Waiting(_))),
        )
        .await;
        let copy = copy.borrow().clone();
        match copy {
            Standing::Held => {
                Ok(followed.mirror().as_ref().map(|mirror| mirror.store_id().to_owned()).unwrap_or_default())
            }
            Standing::Gone(reason) => Err(Status::not_found(reason)),
            Standing::Waiting(error) => {
                let (address, _) = self.upstreams.current();
                let why = error.unwrap_or_else(|| "no answer yet".into());
                Err(Status::unavailable(format!(
                    "this relay has no copy of environment {environment:?} yet: its upstream {address} did not send one within {FIRST_COPY_WAIT:?} ({why})"
                )))
            }
        }
    }

    async fn catch_up(self: &Arc<Self>, environment: &str, since: u64) -> Result<CatchUp, Status> {
        let followed = self.environments().get(environment).cloned();
        let gone = || Status::not_found(format!("environment {environment:?} is no longer followed"));
        let followed = followed.ok_or_else(gone)?;
        let (revision, store_id, catch_up) = {
            let mirror = followed.mirror();
            let mirror = mirror.as_ref().ok_or_else(gone)?;
            (mirror.revision(), mirror.store_id().to_owned(), mirror.since(since))
        };
        match catch_up {
            mirror::CatchUp::Changes(batch) => Ok(CatchUp {
                revision: batch.revision,
                frame: changes_frame(&batch),
                kind: FrameKind::Change,
            }),
            // Encoded on a blocking thread: a snapshot of many flags takes a while.
            mirror::CatchUp::Snapshot(set) => {
                let frame = tokio::task::spawn_blocking(move || snapshot_frame(revision, &store_id, &set))
                    .await
                    .map_err(|error| Status::internal(format!("encoding a snapshot: {error}")))?;
                Ok(CatchUp { revision, frame, kind: FrameKind::Snapshot })
            }
        }
    }

    /// Passed upstream, which caps the report's revisions at what it sent the relay.
    fn count_report(
        self: &Arc<Self>,
        environment: &str,
        _sent: u64,
        report: HealthReport,
        reply: FrameSender,
    ) {
        debug!(%environment, instance = %report.instance, sequence = report.sequence, "health report passed upstream");
        self.follow(environment).reports.forward(report, reply);
    }
}

/// OpenFeature's services read the mirror: the environment is followed upstream on first
/// use, as for a `Sync.Watch` stream, and each change the relay publishes is read again.
impl FlagSource for Relay {
    fn currents(&self) -> &Currents {
        &self.currents
    }

    async fn known(self: &Arc<Self>, environment: &str) -> Result<(), Status> {
        self.open(environment).await.map(drop)
    }

    async fn flags(self: &Arc<Self>, environment: &str) -> Result<Flags, Status> {
        self.open(environment).await?;
        let followed = self.environments().get(environment).cloned();
        let gone = || Status::not_found(format!("environment {environment:?} is no longer followed"));
        let followed = followed.ok_or_else(gone)?;
        let mirror = followed.mirror();
        let mirror = mirror.as_ref().ok_or_else(gone)?;
        Ok(Flags { revision: mirror.revision(), set: mirror.set(), store_id: mirror.store_id().to_owned() })
    }
}
