//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::acks::Connections;
use crate::auth::Access;
use crate::config::Config;
use crate::fanout::Hub;
use crate::health::HealthFigures;
use crate::openfeature::Currents;
use crate::rollout::Windows;
use crate::store::Store;

/// The server's shared state, one `Arc` per server.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) store: Store,
    /// In an `Arc` because the store publishes applies to it as they commit.
    pub(crate) hub: Arc<Hub>,
    /// The principals, read by the interceptors and watched by the streams.
    /// In an `Arc` because the interceptors hold it too.
    pub(crate) access: Arc<Access>,
    /// In an `Arc` because each stream's registration removes itself on drop.
    pub(crate) connections: Arc<Connections>,
    /// Set once the gRPC server accepts connections; read by `/readyz`.
    pub(crate) serving: AtomicBool,
    /// SDK health reports, aggregated in memory (lost at restart: SDKs keep reporting).
    pub(crate) health: HealthFigures,
    /// The window each running rollout plan is judging: the engine's, read by the status
    /// calls so they show the figures the engine will judge (see `rollout::engine`).
    pub(crate) rollout_windows: Windows,
    /// Each environment's flags compiled for OpenFeature's services, followed on first use.
    pub(crate) currents: Currents,
    /// This process among the flagds on a shared store (see `fleet`).
    pub(crate) replica: String,
}

impl State {
    /// A server's state over `store`, with `config` and the principals of `access`: nothing
    /// connected, served or reported yet.
    pub(crate) fn new(config: Config, store: Store, access: Access) -> State {
        let hub = Arc::new(Hub::default());
        store.publish_applies_to(Arc::clone(&hub) as _);
        State {
            config,
            store,
            hub,
            access: Arc::new(access),
            connections: Arc::default(),
            serving: AtomicBool::default(),
            health: HealthFigures::default(),
            rollout_windows: Windows::default(),
            currents: Currents::default(),
            replica: crate::fleet::replica_id(),
        }
    }
}
