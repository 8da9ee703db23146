//! Kill acknowledgements across the flagds of one store. A kill is answered with how many
//! SDKs acknowledged it; with several flagds on one PostgreSQL store, its SDKs are spread
//! over all of them, and the flagd that took the kill must count them all.
//!
//! So each flagd reports, per environment, how many of its SDKs acknowledged which revision
//! (`Store::report_fleet`): soon after acknowledgements come, and every few seconds anyway,
//! so a report's age says whether its flagd still runs. A kill then counts its own SDKs as
//! on a single flagd (`Connections::wait_for`) and polls the others' reports until they all
//! hold the kill's revision or the wait ends.

use std::sync::Arc;
use std::time::Duration;

use flag_core::AckReport;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

use crate::state::State;

/// Acknowledgements arriving within this long go out in one report.
const GATHER: Duration = Duration::from_millis(10);
/// How often a flagd reports with nothing new: a report older than `STALE` is of a flagd
/// that stopped (its SDKs have failed over to another, which reports them).
const REPORT_EVERY: Duration = Duration::from_secs(2);
const STALE: Duration = Duration::from_secs(6);
/// How often a kill reads the other flagds' reports while it waits.
const POLL: Duration = Duration::from_millis(10);

/// This process among the flagds on the store: unique enough that two never share it.
pub(crate) fn replica_id() -> String {
    format!("{}-{:016x}", std::process::id(), fastrand::u64(..))
}

/// Starts reporting this flagd's SDKs when the store is shared; ends when `stopped` turns
/// true, taking its reports with it.
pub(crate) fn start(state: &Arc<State>, stopped: watch::Receiver<bool>) {
    if state.store.is_postgres() {
        tokio::spawn(report(Arc::clone(state), stopped));
    }
}

async fn report(state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let mut changes = state.connections.changes();
    let mut failing = false;
    loop {
        let reports = state.connections.acked_by_environment();
        let (store, replica) = (state.store.clone(), state.replica.clone());
        let reported = tokio::task::spawn_blocking(move || store.report_fleet(&replica, &reports)).await;
        match reported {
            Ok(Ok(())) => failing = false,
            Ok(Err(error)) if !failing => {
                failing = true;
                warn!(error = %crate::store::chain(&error), "reporting this flagd's SDKs to the others failed; kills on other flagds do not count them meanwhile");
            }
            Ok(Err(_)) => {}
            Err(error) => warn!(%error, "reporting this flagd's SDKs panicked"),
        }
        changes.borrow_and_update();
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(REPORT_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
        tokio::time::sleep(GATHER).await;
    }
    let (store, replica) = (state.store.clone(), state.replica.clone());
    let _ = tokio::task::spawn_blocking(move || store.report_fleet(&replica, &[])).await;
}

/// Waits until every SDK of `environment` connected to any flagd on the store when the
/// wait began has acknowledged `revision`, or `timeout` passes.
pub(crate) async fn wait_for(
    state: &Arc<State>,
    environment: &str,
    revision: u64,
    timeout: Duration,
) -> AckReport {
    let local = state.connections.wait_for(environment, revision, timeout);
    if !state.store.is_postgres() {
        return local.await;
    }
    let (mut report, others) = tokio::join!(local, wait_for_others(state, environment, revision, timeout));
    report.connected += others.connected;
    report.acknowledged += others.acknowledged;
    report.slowest = report.slowest.max(others.slowest);
    let behind = others.connected - others.acknowledged;
    if behind > 0 {
        report.missing.push(format!("({behind} on other flagds)"));
    }
    report
}

/// The other flagds' SDKs: connected, acknowledged, and when the last one did.
#[derive(Debug, Default)]
struct Others {
    connected: u32,
    acknowledged: u32,
    slowest: Duration,
}

async fn wait_for_others(state: &Arc<State>, environment: &str, revision: u64, timeout: Duration) -> Others {
    let start = Instant::now();
    let mut others: Option<Others> = None;
    loop {
        let (store, replica, name) = (state.store.clone(), state.replica.clone(), environment.to_owned());
        let fresh_for = i64::try_from(STALE.as_millis()).unwrap_or(i64::MAX);
        let read = tokio::task::spawn_blocking(move || store.fleet(&name, &replica, fresh_for)).await;
        if let Ok(Ok(reports)) = read {
            let counts = reports.iter().flatten();
            let acknowledged: u32 = counts.clone().filter(|(at, _)| *at >= revision).map(|(_, n)| n).sum();
            let connected: u32 = counts.map(|(_, n)| n).sum();
            // Those connected when the wait began are the ones waited for, as on one flagd.
            let seen = others.get_or_insert(Others { connected, ..Others::default() });
            if acknowledged > seen.acknowledged {
                seen.acknowledged = acknowledged.min(seen.connected);
                seen.slowest = start.elapsed();
            }
        }
        let remaining = timeout.saturating_sub(start.elapsed());
        if others.as_ref().is_some_and(|seen| seen.acknowledged >= seen.connected) || remaining.is_zero() {
            return others.unwrap_or_default();
        }
        tokio::time::sleep(POLL.min(remaining)).await;
    }
}
