//! Subscriptions to flag changes, for applications that react to them (rebuild a cache,
//! log, drain a queue) instead of evaluating on every request.

use std::sync::{Arc, Weak};

use tokio::sync::watch;

use crate::shared::Shared;

/// Wakes on every applied change. From [`Client::changes`](crate::Client::changes).
#[derive(Debug)]
pub struct Changes {
    applied: watch::Receiver<u64>,
    /// `Weak`: a subscription must not keep a dropped client's state alive; when it goes,
    /// `changed` answers `None`.
    shared: Weak<Shared>,
}

impl Changes {
    pub(crate) fn new(shared: &Arc<Shared>) -> Changes {
        let mut applied = shared.applied.subscribe();
        applied.borrow_and_update();
        Changes { applied, shared: Arc::downgrade(shared) }
    }

    /// Waits for the next change after the last one seen and answers the revision now
    /// served; `None` once the client is gone. Changes applied while nobody waited are
    /// reported once, together.
    pub async fn changed(&mut self) -> Option<u64> {
        self.applied.changed().await.ok()?;
        let shared = self.shared.upgrade()?;
        Some(shared.live.load().revision)
    }
}

/// Wakes when one flag's answers may have changed: its definition (including its deletion
/// or creation) or a segment it uses. From [`Client::flag_changes`](crate::Client::flag_changes).
#[derive(Debug)]
pub struct FlagChanges {
    key: String,
    /// The revision of the flag's last change as of the last wake-up.
    seen: Option<u64>,
    applied: watch::Receiver<u64>,
    /// `Weak`, as in [`Changes`].
    shared: Weak<Shared>,
}

impl FlagChanges {
    pub(crate) fn new(shared: &Arc<Shared>, key: &str) -> FlagChanges {
        let mut applied = shared.applied.subscribe();
        applied.borrow_and_update();
        let seen = shared.live.load().model.changed_at.get(key).copied();
        FlagChanges { key: key.into(), seen, applied, shared: Arc::downgrade(shared) }
    }

    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Waits until the flag changes and answers the revision now served; `None` once the
    /// client is gone. Changes to other flags do not wake it.
    pub async fn changed(&mut self) -> Option<u64> {
        loop {
            self.applied.changed().await.ok()?;
            let shared = self.shared.upgrade()?;
            let live = shared.live.load();
            let now = live.model.changed_at.get(self.key.as_str()).copied();
            if now != self.seen {
                self.seen = now;
                return Some(live.revision);
            }
        }
    }
}
