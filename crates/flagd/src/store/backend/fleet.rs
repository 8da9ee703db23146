//! Each flagd's connected SDKs, as the others see them: so that a kill handled by one flagd
//! counts the acknowledgements of SDKs on all (see `crate::fleet`).
//!
//! One row per flagd and environment: which revisions its SDKs have acknowledged, as counts
//! (`[[revision, sdks], …]`), and when it said so — by the database's clock, so that hosts
//! whose clocks differ still agree on which reports are fresh. Outside the writers' lock
//! and with no generation: reports are not the store's state, and must never wait for a
//! write or wake the other flagds' followers.

use std::sync::Arc;

use super::super::error::StoreError;
use super::codec::Param;
use super::postgres::{Pool, Transaction};

/// How many SDKs acknowledged which revision, newest acknowledgement per SDK.
pub(crate) type Acked = Vec<(u64, u32)>;

/// The database's clock, in ms since the Unix epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Reports older than this are of flagds long gone (their ids are never used again): the
/// next report of any flagd deletes them.
const FORGOTTEN_AFTER_MS: i64 = 3_600_000;

/// Replaces every report of `replica` with `reports` (environment, acknowledgements).
pub(crate) fn report(pool: &Arc<Pool>, replica: &str, reports: &[(String, Acked)]) -> Result<(), StoreError> {
    let txn = Transaction::unlocked(pool)?;
    txn.query(
        &format!("DELETE FROM flagd_fleet WHERE replica = $1 OR reported_ms < {NOW_MS} - $2"),
        &[Param::Text(replica.to_owned()), Param::Int(FORGOTTEN_AFTER_MS)],
    )?;
    for (environment, acked) in reports {
        let acked = serde_json::to_string(acked).map_err(StoreError::Encode)?;
        txn.query(
            &format!(
                "INSERT INTO flagd_fleet (replica, environment, reported_ms, acked) \
                 VALUES ($1, $2, {NOW_MS}, $3::text::json)"
            ),
            &[Param::Text(replica.to_owned()), Param::Text(environment.clone()), Param::Text(acked)],
        )?;
    }
    txn.commit()
}

/// The reports of `environment` by flagds other than `replica`, at most `fresh_for_ms` old:
/// older ones are of flagds that stopped or lost the database, whose SDKs have gone elsewhere.
pub(crate) fn others(
    pool: &Arc<Pool>,
    environment: &str,
    replica: &str,
    fresh_for_ms: i64,
) -> Result<Vec<Acked>, StoreError> {
    let txn = Transaction::read(pool)?;
    let rows = txn.query(
        &format!(
            "SELECT acked::text FROM flagd_fleet \
             WHERE environment = $1 AND replica <> $2 AND reported_ms >= {NOW_MS} - $3"
        ),
        &[Param::Text(environment.to_owned()), Param::Text(replica.to_owned()), Param::Int(fresh_for_ms)],
    )?;
    rows.iter()
        .map(|row| {
            let text: &str =
                row.try_get(0).map_err(|source| StoreError::postgres("reading a row", source))?;
            serde_json::from_str(text).map_err(StoreError::Encode)
        })
        .collect()
}
