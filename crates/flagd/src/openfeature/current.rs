//! Each environment's flags as OpenFeature's services read them: compiled once per
//! revision and shared by every request and stream, kept current by one task per
//! environment that follows the [`Hub`](crate::fanout::Hub).
//!
//! The task subscribes before it reads, so no commit falls between the read and the
//! subscription; a burst of commits is read once (the hub's `watch` keeps only the newest).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use flag_core::{FlagSet, Serve, Snapshot};
use flag_proto::PreEncoded;
use tokio::sync::watch;
use tonic::Status;
use tracing::warn;

use crate::openfeature::source::{FlagSource, Flags};
use crate::status::RequestError;

/// How a flag changed between two revisions, in the words of flagd's `configuration_change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChangeKind {
    /// A new flag.
    Write,
    /// A flag stored again with a new version.
    Update,
    /// A flag gone.
    Delete,
}

impl ChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Write => "write",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One environment at one revision.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) environment: String,
    pub(crate) revision: u64,
    /// The store `revision` counts in.
    pub(crate) store_id: String,
    pub(crate) set: FlagSet,
    pub(crate) snapshot: Snapshot,
    /// Flags that serve one variant to everyone (no rules, no prerequisites, no split):
    /// their answers are OpenFeature's `STATIC`, which providers may cache until a change.
    pub(crate) fixed: HashSet<String>,
    /// What changed since revision `changed_since` (empty for the first read).
    pub(crate) changed: Vec<(String, ChangeKind)>,
    pub(crate) changed_since: u64,
    /// The set as flagd flag JSON, made on first use by the sync service.
    pub(crate) flagd_json: OnceLock<Arc<str>>,
    /// That JSON as an encoded `SyncFlagsResponse`, made on first use: every provider's
    /// stream sends the same bytes.
    pub(crate) sync_response: OnceLock<PreEncoded>,
}

impl Current {
    fn new(environment: String, flags: Flags, before: Option<&Current>) -> Result<Current, RequestError> {
        let Flags { revision, set, store_id } = flags;
        let snapshot = set.compile().map_err(RequestError::StoredSet)?;
        let fixed = set
            .flags
            .iter()
            .filter(|flag| {
                flag.rules.is_empty()
                    && flag.prerequisites.is_empty()
                    && matches!(flag.default, Serve::Variant(_))
            })
            .map(|flag| flag.key.clone())
            .collect();
        let changed = before.map(|before| changes(&before.set, &set)).unwrap_or_default();
        let changed_since = before.map_or(revision, |before| before.revision);
        Ok(Current {
            environment,
            revision,
            store_id,
            set,
            snapshot,
            fixed,
            changed,
            changed_since,
            flagd_json: OnceLock::new(),
            sync_response: OnceLock::new(),
        })
    }
}

/// The flags of `after` that are new, changed or gone since `before`.
pub(crate) fn changes(before: &FlagSet, after: &FlagSet) -> Vec<(String, ChangeKind)> {
    let versions: HashMap<&str, u64> = before.flags.iter().map(|f| (f.key.as_str(), f.version)).collect();
    let mut changed: Vec<(String, ChangeKind)> = after
        .flags
        .iter()
        .filter_map(|flag| match versions.get(flag.key.as_str()) {
            None => Some((flag.key.clone(), ChangeKind::Write)),
            Some(&version) if version != flag.version => Some((flag.key.clone(), ChangeKind::Update)),
            Some(_) => None,
        })
        .collect();
    let kept: HashSet<&str> = after.flags.iter().map(|f| f.key.as_str()).collect();
    changed.extend(
        before
            .flags
            .iter()
            .filter(|f| !kept.contains(f.key.as_str()))
            .map(|f| (f.key.clone(), ChangeKind::Delete)),
    );
    changed
}

/// What a follower publishes: `None` once its environment is gone.
pub(crate) type Following = watch::Receiver<Option<Arc<Current>>>;

/// The followed environments.
#[derive(Debug, Default)]
pub(crate) struct Currents {
    environments: Mutex<HashMap<String, Following>>,
}

impl Currents {
    /// The environment's current flags, followed from now on; refused when it does not exist.
    pub(crate) async fn follow<S: FlagSource>(
        source: &Arc<S>,
        environment: &str,
    ) -> Result<Following, Status> {
        if let Some(following) = source.currents().live(environment) {
            return Ok(following);
        }
        // Known to exist before the hub is asked: a selector naming no environment must
        // leave nothing behind in the hub.
        source.known(environment).await?;
        let mut updates = source.hub().subscribe(environment);
        updates.borrow_and_update();
        let first = read(source, environment, None).await?;
        let mut environments = source.currents().environments.lock().unwrap_or_else(PoisonError::into_inner);
        // Another request may have started the follower meanwhile.
        if let Some(following) = environments.get(environment).filter(|f| f.has_changed().is_ok()) {
            return Ok(following.clone());
        }
        let (publish, following) = watch::channel(Some(Arc::new(first)));
        environments.insert(environment.to_owned(), following.clone());
        tokio::spawn(keep_current(Arc::clone(source), environment.to_owned(), publish, updates));
        Ok(following)
    }

    fn live(&self, environment: &str) -> Option<Following> {
        let environments = self.environments.lock().unwrap_or_else(PoisonError::into_inner);
        environments.get(environment).filter(|following| following.has_changed().is_ok()).cloned()
    }
}

/// The environment's flags now; `before` to say what changed.
async fn read<S: FlagSource>(
    source: &Arc<S>,
    environment: &str,
    before: Option<Arc<Current>>,
) -> Result<Current, Status> {
    let flags = source.flags(environment).await?;
    let environment = environment.to_owned();
    // Compiled on a blocking thread: an environment of many flags takes a while.
    let compiled =
        tokio::task::spawn_blocking(move || Current::new(environment, flags, before.as_deref())).await;
    Ok(compiled.map_err(RequestError::from)??)
}

/// Follows the hub and publishes every new revision, until the environment is deleted or
/// the server stops (then `None`, which ends the streams following it). When the changes
/// start coming from another store (a relay's upstream replaced), it follows the new one.
async fn keep_current<S: FlagSource>(
    source: Arc<S>,
    environment: String,
    publish: watch::Sender<Option<Arc<Current>>>,
    mut updates: watch::Receiver<Option<Arc<crate::fanout::Published>>>,
) {
    // Set when revisions count in a store not yet read: no revision compares with it.
    let mut unread_store = false;
    while updates.changed().await.is_ok() {
        let (newest, replaced) =
            updates.borrow_and_update().as_ref().map_or((0, false), |p| (p.revision, p.store_replaced));
        if replaced {
            updates = source.hub().subscribe(&environment);
            updates.borrow_and_update();
            unread_store = true;
        }
        let before = publish.borrow().clone();
        if !unread_store && before.as_ref().is_some_and(|b| b.revision >= newest) {
            continue;
        }
        match read(&source, &environment, before).await {
            Ok(current) => {
                unread_store = false;
                publish.send_replace(Some(Arc::new(current)));
            }
            // The next commit tries again; until then providers keep the last revision.
            Err(error) => {
                warn!(%environment, error = error.message(), "OpenFeature services could not read the new revision");
            }
        }
    }
    source.currents().environments.lock().unwrap_or_else(PoisonError::into_inner).remove(&environment);
    publish.send_replace(None);
}

#[cfg(test)]
mod tests {
    use flag_core::Flag;

    use super::*;

    #[test]
    fn changes_name_new_updated_and_deleted_flags() {
        let flag = |key: &str, version| {
            let mut flag = Flag::rollout(key, 5.0).unwrap();
            flag.version = version;
            flag
        };
        let before =
            FlagSet { flags: vec![flag("kept", 1), flag("bumped", 1), flag("gone", 3)], segments: vec![] };
        let after =
            FlagSet { flags: vec![flag("kept", 1), flag("bumped", 2), flag("new", 1)], segments: vec![] };
        let mut changed = changes(&before, &after);
        changed.sort();
        assert_eq!(
            changed,
            [
                ("bumped".to_owned(), ChangeKind::Update),
                ("gone".to_owned(), ChangeKind::Delete),
                ("new".to_owned(), ChangeKind::Write),
            ]
        );
    }
}
