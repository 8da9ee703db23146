//! Streaming what other flagds commit. On a store several flagds share (PostgreSQL), any
//! of them takes writes, and each must send every committed change to its own SDKs, in
//! revision order, soon after the commit.
//!
//! A change notification only wakes this follower (`Store::listen_for_commits`); it then
//! reads each environment's revision and, for those past what it last streamed, the changes
//! since, and publishes them to the hub like a write of its own. So a lost notification or a
//! reconnect loses nothing, and a periodic catch-up covers a silent connection. Its own
//! writes are published by the writer already: the hub's revision says so, and they are
//! skipped without a read.
//!
//! While the database cannot be read, SDKs keep the last state they were sent, and
//! `flagd_store_stale` is 1 in `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::state::State;
use crate::store::StoreError;

/// How often the follower reads the revisions with no notification heard.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Starts following when the store is shared (PostgreSQL); ends when `stopped` turns true.
/// Called before the server serves: every stream then starts from a state read after the
/// follower's starting point, so none misses a commit in between.
pub(crate) async fn start(state: &Arc<State>, stopped: watch::Receiver<bool>) -> Result<(), StoreError> {
    let (wake, woken) = watch::channel(0);
    let store = state.store.clone();
    let started = tokio::task::spawn_blocking(move || {
        if !store.listen_for_commits(wake)? {
            return Ok(None);
        }
        Ok::<_, StoreError>(Some(store.revisions()?.into_iter().collect::<Streamed>()))
    })
    .await
    .map_err(|error| StoreError::Panicked { message: error.to_string() })?;
    if let Some(streamed) = started? {
        metrics::gauge!("flagd_store_stale").set(0.0);
        tokio::spawn(follow(Arc::clone(state), streamed, woken, stopped));
    }
    Ok(())
}

/// Each environment's revision as last streamed: published by this follower, or seen
/// published by this flagd's own writer.
type Streamed = HashMap<String, u64>;

async fn follow(
    state: Arc<State>,
    mut streamed: Streamed,
    mut woken: watch::Receiver<u64>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut stale = false;
    loop {
        tokio::select! {
            changed = woken.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(CATCH_UP_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let reading = Arc::clone(&state);
        let read = tokio::task::spawn_blocking(move || {
            let result = catch_up(&reading, &mut streamed);
            (streamed, result)
        })
        .await;
        let result;
        (streamed, result) = match read {
            Ok(read) => read,
            Err(error) => {
                // `streamed` went with the task: one that panicked is not worth keeping.
                warn!(%error, "following other flagds' commits panicked; giving up");
                return;
            }
        };
        match result {
            Ok(()) if stale => {
                stale = false;
                info!("store readable again: other flagds' commits stream again");
                metrics::gauge!("flagd_store_stale").set(0.0);
            }
            Ok(()) => {}
            Err(error) if !stale => {
                stale = true;
                warn!(error = %crate::store::chain(&error), "store unreadable: SDKs keep the last state sent until it is back");
                metrics::gauge!("flagd_store_stale").set(1.0);
            }
            Err(error) => debug!(%error, "store still unreadable"),
        }
    }
}

/// Publishes what was committed past `streamed`, and brings it up to date.
fn catch_up(state: &State, streamed: &mut Streamed) -> Result<(), StoreError> {
    let revisions = state.store.revisions()?;
    let existing: HashMap<&str, u64> =
        revisions.iter().map(|(name, revision)| (name.as_str(), *revision)).collect();
    // Deleted on another flagd: their streams end as they would on the one that deleted.
    streamed.retain(|environment, _| {
        let exists = existing.contains_key(environment.as_str());
        if !exists {
            state.hub.end(environment);
        }
        exists
    });
    for (environment, revision) in revisions {
        // An environment another flagd created: streams of it here started from the store.
        let from = streamed.get(&environment).copied().unwrap_or(0);
        if revision < from {
            // Deleted and created again meanwhile: its streams start over from a snapshot.
            state.hub.end(&environment);
            streamed.insert(environment, revision);
            continue;
        }
        if revision == from
            || state.hub.published(&environment).is_some_and(|published| published >= revision)
        {
            streamed.insert(environment, revision);
            continue;
        }
        match state.store.changes_since(&environment, from)?.into_batch() {
            Some(batch) => {
                debug!(%environment, from, revision = batch.revision, "streaming another flagd's commits");
                state.hub.publish_batch(&environment, &batch);
                streamed.insert(environment, batch.revision);
            }
            // From revision 0, or past the resume window: no batch to send as it is; streams
            // catch up from the store, as after any gap.
            None => {
                debug!(%environment, from, revision, "another flagd's commits: streams catch up from the store");
                state.hub.publish_gap(&environment, revision);
                streamed.insert(environment, revision);
            }
        }
    }
    Ok(())
}
