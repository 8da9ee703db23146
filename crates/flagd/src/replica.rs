//! Streaming what other flagds commit. On a store several flagds share (PostgreSQL), any
//! of them takes writes, and each must send every committed change to its own SDKs, in
//! revision order, soon after the commit.
//!
//! A change notification names an environment and its new revision, and wakes this
//! follower (`Store::listen_for_commits`); it then reads the changes since what it last
//! streamed of that environment, and publishes them to the hub like a write of its own.
//! After a reconnection, a deletion, and periodically, it reads every environment's
//! revision instead, and the changes of each that moved: so a lost notification or a
//! reconnect loses nothing, and the periodic catch-up covers a silent connection. Its own
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
use crate::store::{Heard, StoreError};

/// How often the follower reads the revisions with no notification heard.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Starts following when the store is shared (PostgreSQL); ends when `stopped` turns true.
/// Called before the server serves: every stream then starts from a state read after the
/// follower's starting point, so none misses a commit in between.
pub(crate) async fn start(state: &Arc<State>, stopped: watch::Receiver<bool>) -> Result<(), StoreError> {
    let (wake, woken) = watch::channel(Heard::default());
    let store = state.store.clone();
    let listening = wake.clone();
    let started = tokio::task::spawn_blocking(move || {
        if !store.listen_for_commits(listening)? {
            return Ok(None);
        }
        Ok::<_, StoreError>(Some(store.revisions()?.into_iter().collect::<Streamed>()))
    })
    .await
    .map_err(|error| StoreError::Panicked { message: error.to_string() })?;
    if let Some(streamed) = started? {
        metrics::gauge!("flagd_store_stale").set(0.0);
        tokio::spawn(follow(Arc::clone(state), streamed, wake, woken, stopped));
    }
    Ok(())
}

/// Each environment's revision as last streamed: published by this follower, or seen
/// published by this flagd's own writer.
type Streamed = HashMap<String, u64>;

async fn follow(
    state: Arc<State>,
    mut streamed: Streamed,
    wake: watch::Sender<Heard>,
    mut woken: watch::Receiver<Heard>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut stale = false;
    loop {
        let periodic = tokio::select! {
            changed = woken.changed() => if changed.is_err() { return } else { false },
            () = tokio::time::sleep(CATCH_UP_EVERY) => true,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let mut heard = Heard::take(&wake);
        // After a failed read, every environment is read again until one succeeds.
        heard.everything |= periodic || stale;
        if !heard.everything
            && heard
                .revisions
                .iter()
                .all(|(environment, revision)| streamed_to(&state, &streamed, environment, *revision))
        {
            // This flagd's own writes, already published: nothing to read, and a later
            // notice of another flagd's write reads from here.
            for (environment, revision) in heard.revisions {
                let at = streamed.entry(environment).or_default();
                *at = (*at).max(revision);
            }
            continue;
        }
        let reading = Arc::clone(&state);
        let read = tokio::task::spawn_blocking(move || {
            let result = match heard.everything {
                true => catch_up(&reading, &mut streamed),
                false => catch_up_named(&reading, &mut streamed, heard.revisions),
            };
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
        if let Err(error) = stream_environment(state, streamed, &environment, revision) {
            // Deleted since the revisions were read, or one failed read: the streams catch
            // up from the store themselves (and learn of the deletion there).
            debug!(%environment, %error, "reading another flagd's commits failed; streams catch up themselves");
            state.hub.publish_gap(&environment, revision);
            streamed.insert(environment, revision);
        }
    }
    Ok(())
}

/// Whether `environment` was streamed up to `revision` already (published by this flagd's
/// writer or by this follower; an environment new here is at 0).
fn streamed_to(state: &State, streamed: &Streamed, environment: &str, revision: u64) -> bool {
    streamed.get(environment).copied().unwrap_or(0) >= revision
        || state.hub.published(environment).is_some_and(|published| published >= revision)
}

/// Publishes what was committed past `streamed` in the environments a notification named;
/// reads every environment instead when one of them cannot be read (deleted meanwhile, or
/// another store's in the same database).
fn catch_up_named(
    state: &State,
    streamed: &mut Streamed,
    revisions: HashMap<String, u64>,
) -> Result<(), StoreError> {
    let mut unread = false;
    for (environment, revision) in revisions {
        if let Err(error) = stream_environment(state, streamed, &environment, revision) {
            debug!(%environment, %error, "a named environment could not be read; reading every one");
            unread = true;
        }
    }
    match unread {
        true => catch_up(state, streamed),
        false => Ok(()),
    }
}

/// Publishes `environment`'s changes past what was streamed of it, up to at least
/// `revision`; an error (and nothing published) when they cannot be read.
fn stream_environment(
    state: &State,
    streamed: &mut Streamed,
    environment: &str,
    revision: u64,
) -> Result<(), StoreError> {
    // An environment another flagd created: streams of it here started from the store.
    // (Revisions go on across a deletion and re-creation, so they never go back.)
    let from = streamed.get(environment).copied().unwrap_or(0);
    if streamed_to(state, streamed, environment, revision) {
        streamed.insert(environment.to_owned(), revision.max(from));
        return Ok(());
    }
    match state.store.changes_since(environment, from)?.into_batch() {
        Some(batch) => {
            debug!(%environment, from, revision = batch.revision, "streaming another flagd's commits");
            state.hub.publish_batch(environment, &batch);
            streamed.insert(environment.to_owned(), batch.revision);
        }
        // From revision 0, or past the resume window: no batch to send as it is; streams
        // catch up from the store, as after any gap.
        None => {
            debug!(%environment, from, revision, "another flagd's commits: streams catch up from the store");
            state.hub.publish_gap(environment, revision);
            streamed.insert(environment.to_owned(), revision);
        }
    }
    Ok(())
}
