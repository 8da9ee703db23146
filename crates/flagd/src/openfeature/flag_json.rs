//! A revision as flagd flag JSON for in-process providers, through `openfeature-json`; the
//! flags it cannot express exactly are left out (a provider answers them as not found, so
//! the caller's default — never a wrong value), logged, counted and named in the JSON's
//! metadata. RPC and OFREP evaluate with our own evaluator and serve them correctly.

use std::sync::Arc;

use tracing::warn;

use crate::openfeature::current::Current;

/// The flag configuration `SyncFlags` and `FetchAllFlags` send for `current`.
pub(crate) fn flagd_json(current: &Current) -> Arc<str> {
    let exported = openfeature_json::to_flagd(&current.set);
    for left_out in &exported.left_out {
        warn!(
            environment = %current.environment,
            flag = %left_out.flag,
            why = %left_out.why,
            revision = current.revision,
            "flag left out of the in-process (flagd sync) configuration"
        );
    }
    let environment = current.environment.clone();
    metrics::gauge!("flagd_openfeature_flags_left_out", "environment" => environment)
        .set(exported.left_out.len() as f64);
    Arc::from(exported.json.to_string())
}
