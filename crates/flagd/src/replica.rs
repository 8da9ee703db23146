//! Streaming what other flagds commit. On a store several flagds share (PostgreSQL), any
//! of them takes writes, and each must send every committed change to its own SDKs, in
//! revision order, soon after the commit.
//!
//! A change notification only wakes this follower (`Store::listen_for_commits`); it then
//! reads each environment's revision and, for those past what it last streamed, the changes
//! since, and publishes them to the hub like a write of its own. So a lost notification or a
//! reconnect loses nothing, and a periodic catch-up covers a silent connection. Its own
//! writes are published by the writer, most often before its notification comes back here:
//! the hub's revision then says so, and they are skipped without a read.
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
                // What was streamed went with the task. Starting over from nothing sends every
                // environment's streams to catch up from the store: nothing is missed.
                warn!(%error, "following other flagds' commits panicked; starting over");
                (Streamed::new(), Ok(()))
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
    // Before the revisions: an environment followed first here exists when they are read.
    let followed = state.hub.environments();
    let revisions = state.store.revisions()?;
    let existing: HashMap<&str, u64> =
        revisions.iter().map(|(name, revision)| (name.as_str(), *revision)).collect();
    // Deleted on another flagd (even one created meanwhile, never seen here): their streams
    // end as they would on the flagd that deleted it.
    streamed.retain(|environment, _| existing.contains_key(environment.as_str()));
    for environment in followed {
        if !existing.contains_key(environment.as_str()) {
            state.hub.end(&environment);
        }
    }
    for (environment, revision) in revisions {
        // An environment another flagd created: streams of it here started from the store.
        // (Revisions go on across a deletion and re-creation, so they never go back.)
        let from = streamed.get(&environment).copied().unwrap_or(0);
        if revision <= from
            || state.hub.published(&environment).is_some_and(|published| published >= revision)
        {
            streamed.insert(environment, revision);
            continue;
        }
        let changes = match state.store.changes_since(&environment, from) {
            Ok(changes) => changes.into_batch(),
            // Deleted since the revisions were read, or one failed read: the streams catch
            // up from the store themselves (and learn of the deletion there).
            Err(error) => {
                debug!(%environment, %error, "reading another flagd's commits failed; streams catch up themselves");
                None
            }
        };
        match changes {
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
