//! Provider events, which OpenFeature 0.3 for Rust has no way to carry: its API and client
//! offer no event handlers and its provider trait no way to emit one (hooks run around
//! evaluations only). [`ProviderEvents`] follows the client instead and names what it sees
//! as OpenFeature's provider events do.

use flag_sdk::{Changes, Client, Status};
use tokio::sync::watch;

/// What happened to a provider, named after OpenFeature's provider events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderEvent {
    /// `PROVIDER_READY`: the client follows flagd again (or has its first snapshot).
    Ready,
    /// `PROVIDER_STALE`: the client lost flagd and serves the last flags it had while it
    /// reconnects.
    Stale,
    /// `PROVIDER_CONFIGURATION_CHANGED`: the client applied a change; evaluations from now
    /// on see it. Changes applied while nobody waited are reported once, together.
    ConfigurationChanged {
        /// The revision now served.
        revision: u64,
    },
}

/// The events of one provider, from [`FlagProvider::events`](crate::FlagProvider::events),
/// from the moment it was made.
#[derive(Debug)]
pub struct ProviderEvents {
    /// `watch`: what matters is the status now, not every transition missed.
    status: watch::Receiver<Status>,
    changes: Changes,
}

impl ProviderEvents {
    pub(crate) fn new(client: &Client) -> ProviderEvents {
        let mut status = client.status_changes();
        status.borrow_and_update();
        ProviderEvents { status, changes: client.changes() }
    }

    /// Waits for the next event; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<ProviderEvent> {
        loop {
            // Both branches are cancel-safe: a change seen by one is not lost to the other.
            tokio::select! {
                changed = self.status.changed() => {
                    changed.ok()?;
                    match *self.status.borrow_and_update() {
                        Status::Ready | Status::Offline => return Some(ProviderEvent::Ready),
                        Status::Stale { .. } => return Some(ProviderEvent::Stale),
                        // A status added to flag-sdk later: no OpenFeature event for it.
                        _ => continue,
                    }
                }
                revision = self.changes.changed() => {
                    return revision.map(|revision| ProviderEvent::ConfigurationChanged { revision });
                }
            }
        }
    }
}
