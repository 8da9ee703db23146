//! What OpenFeature's services are served from: a flagd's own store, or a relay's mirror of
//! its upstream's (see `relay`). The services themselves are the same for both.

use std::future::Future;
use std::sync::Arc;

use flag_core::FlagSet;
use tonic::Status;

use crate::openfeature::current::Currents;
use crate::state::State;
use crate::status::RequestError;
use crate::sync_source::SyncSource;

/// One environment's flags as read now.
#[derive(Debug)]
pub(crate) struct Flags {
    pub(crate) revision: u64,
    pub(crate) set: FlagSet,
    /// The store the revision counts in (OFREP's `ETag`, the sync service's metadata).
    pub(crate) store_id: String,
}

/// Where OpenFeature's services read an environment's flags, beside what streams share.
pub(crate) trait FlagSource: SyncSource {
    /// The followers of the environments the services read.
    fn currents(&self) -> &Currents;

    /// Refused when there is no such environment (a cheaper check than reading it).
    fn known(self: &Arc<Self>, environment: &str) -> impl Future<Output = Result<(), Status>> + Send;

    /// The environment's flags now; refused when there is no such environment.
    fn flags(self: &Arc<Self>, environment: &str) -> impl Future<Output = Result<Flags, Status>> + Send;
}

impl FlagSource for State {
    fn currents(&self) -> &Currents {
        &self.currents
    }

    async fn known(self: &Arc<Self>, environment: &str) -> Result<(), Status> {
        let (store, environment) = (self.store.clone(), environment.to_owned());
        let read = tokio::task::spawn_blocking(move || store.revision(&environment)).await;
        read.map_err(RequestError::from)?.map_err(RequestError::from)?;
        Ok(())
    }

    async fn flags(self: &Arc<Self>, environment: &str) -> Result<Flags, Status> {
        let (store, environment) = (self.store.clone(), environment.to_owned());
        let read = tokio::task::spawn_blocking(move || store.snapshot(&environment)).await;
        let (revision, set) = read.map_err(RequestError::from)?.map_err(RequestError::from)?;
        Ok(Flags { revision, set, store_id: self.store.id().to_owned() })
    }
}
