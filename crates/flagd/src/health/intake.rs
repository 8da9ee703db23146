//! A report arriving on a `Sync.Watch` stream: checked against the environment's flags and
//! counted. The catalog of flags is read from the store at most once per revision the
//! reports reach, however many streams report.

use std::sync::Arc;

use flag_core::HealthReport;

use super::{Applied, Catalog};
use crate::state::State;
use crate::status::RequestError;

/// Counts `report` from a stream of `environment` that was sent everything up to
/// `sent_revision` (so no cohort of it can be newer).
pub(crate) async fn count_report(
    state: &Arc<State>,
    environment: &str,
    sent_revision: u64,
    report: HealthReport,
) -> Result<Applied, RequestError> {
    let newest = report.cohorts.iter().map(|cohort| cohort.revision).max().unwrap_or(0);
    let needed = newest.min(sent_revision);
    let catalog = match state.health.catalog(environment, needed) {
        Some(catalog) => catalog,
        None => fresh_catalog(state, environment, needed).await?,
    };
    Ok(state.health.apply(environment, report, &catalog))
}

/// Reads the environment's flags unless another stream just did.
async fn fresh_catalog(
    state: &Arc<State>,
    environment: &str,
    needed: u64,
) -> Result<Arc<Catalog>, RequestError> {
    let _one_at_a_time = state.health.refreshing().await;
    if let Some(catalog) = state.health.catalog(environment, needed) {
        return Ok(catalog);
    }
    let store = state.store.clone();
    let name = environment.to_owned();
    let (revision, set) = tokio::task::spawn_blocking(move || store.snapshot(&name)).await??;
    let catalog = Arc::new(Catalog::of(revision, &set));
    state.health.set_catalog(environment, Arc::clone(&catalog));
    Ok(catalog)
}
