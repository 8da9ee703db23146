//! Each flagd's connected SDKs, as the others see them: so that a kill handled by one flagd
//! counts the acknowledgements of SDKs on all (see `crate::fleet`).
//!
//! One row per flagd and environment: which revisions its SDKs have acknowledged, as counts
//! (`[[revision, sdks], …]`), and when it said so. Outside the writers' lock and with no
//! generation: reports are not the store's state, and must never wait for a write or wake
//! the other flagds' followers.

use std::sync::Arc;

use super::super::error::StoreError;
use super::codec::Param;
use super::postgres::{Pool, Transaction};

/// How many SDKs acknowledged which revision, newest acknowledgement per SDK.
pub(crate) type Acked = Vec<(u64, u32)>;

/// Replaces every report of `replica` with `reports` (environment, acknowledgements).
pub(crate) fn report(
    pool: &Arc<Pool>,
    replica: &str,
    reports: &[(String, Acked)],
    now_ms: i64,
) -> Result<(), StoreError> {
    let txn = Transaction::unlocked(pool)?;
    txn.query("DELETE FROM flagd_fleet WHERE replica = $1", &[Param::Text(replica.to_owned())])?;
    for (environment, acked) in reports {
        let acked = serde_json::to_string(acked).map_err(StoreError::Encode)?;
        txn.query(
            "INSERT INTO flagd_fleet (replica, environment, reported_ms, acked) VALUES ($1, $2, $3, $4::text::json)",
            &[
                Param::Text(replica.to_owned()),
                Param::Text(environment.clone()),
                Param::Int(now_ms),
                Param::Text(acked),
            ],
        )?;
    }
    txn.commit()
}

/// The reports of `environment` by flagds other than `replica`, made at or after
/// `fresh_from_ms`: older ones are of flagds that stopped or lost the database, whose SDKs
/// have gone elsewhere.
pub(crate) fn others(
    pool: &Arc<Pool>,
    environment: &str,
    replica: &str,
    fresh_from_ms: i64,
) -> Result<Vec<Acked>, StoreError> {
    let txn = Transaction::read(pool)?;
    let rows = txn.query(
        "SELECT acked::text FROM flagd_fleet WHERE environment = $1 AND replica <> $2 AND reported_ms >= $3",
        &[Param::Text(environment.to_owned()), Param::Text(replica.to_owned()), Param::Int(fresh_from_ms)],
    )?;
    rows.iter()
        .map(|row| {
            let text: &str =
                row.try_get(0).map_err(|source| StoreError::postgres("reading a row", source))?;
            serde_json::from_str(text).map_err(StoreError::Encode)
        })
        .collect()
}
