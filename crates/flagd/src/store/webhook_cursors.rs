//! The webhook outbox: the change log (`changes`, never pruned) is the queue, and each
//! webhook keeps one cursor per environment — the last revision its receiver acknowledged.
//! Delivering is reading the log after the cursor; a delivery is done when the cursor moves
//! past it. Nothing is copied per webhook, so a receiver down for a week costs one row.
//!
//! # Where a webhook starts
//!
//! A webhook is registered the first time a flagd starts with its id, and starts **from
//! then**: each environment it covers gets a cursor at its revision at that start, so a new
//! receiver is not flooded with the whole history. An environment created later is covered
//! from its first change. At every start the registration records which environments existed
//! and which the webhook covered, so the next start can tell apart an environment created
//! while it was covered (its cursor may not have been written before a crash: from revision
//! 0) from one that a changed filter now covers (from that start's revision); a filter that
//! no longer covers an environment drops its cursor, so covering it again starts afresh.
//!
//! # Why cursor moves are not durable commits
//!
//! A cursor move commits with [`Durability::None`]: it is visible at once, and the next
//! durable commit (any flag write, or the flush at shutdown) makes it
//! durable. A crash loses only moves since then, and those changes are delivered again —
//! delivery is at least once anyway — while a durable commit (an fsync) per delivered
//! change would hold redb's one write transaction for milliseconds per delivery, in the way
//! of flag writes.

use std::collections::BTreeMap;

use super::backend::{Database, Durability, ReadTransaction, ReadableTable};
use flag_core::{Flag, HistoryEntry, Segment, SubjectKind};
use serde::{Deserialize, Serialize};

use super::environments;
use super::error::StoreError;
use super::read::{version_before, written};
use super::records::{ChangeRecord, Now, decode, encode};
use super::subject::Versioned;
use super::tables::{CHANGES, ENVIRONMENT_INFO, ENVIRONMENTS, WEBHOOK_CURSORS, WEBHOOKS};

/// Changes of one environment a webhook has not delivered yet.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outbox {
    /// The environment's revision when read.
    pub(crate) revision: u64,
    /// The first changes after the cursor, in revision order.
    pub(crate) entries: Vec<OutboxEntry>,
}

/// One change to deliver.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutboxEntry {
    /// The history entry the change appended (content after it).
    pub(crate) entry: HistoryEntry,
    /// The subject's previous version, if it had one (its content is `None` when it was
    /// deleted then).
    pub(crate) before: Option<HistoryEntry>,
}

/// A `webhooks` row.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRecord {
    /// When the webhook was first seen (ms since the Unix epoch).
    registered_ms: i64,
    /// The environments it covered at the last start; `None`: all.
    covered: Option<Vec<String>>,
    /// Every environment the store had at the last start.
    known: Vec<String>,
}

fn covers(filter: Option<&[String]>, environment: &str) -> bool {
    filter.is_none_or(|names| names.iter().any(|name| name == environment))
}

/// See [`Store::advance_webhook_cursor`](super::Store::advance_webhook_cursor).
pub(super) fn advance(db: &Database, id: &str, environment: &str, revision: u64) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    // Fails only for a transaction that made persistent savepoints, which this one never
    // does; it would then commit durably, which is only slower.
    let _ = txn.set_durability(Durability::None);
    {
        let mut cursors = txn.open_table(WEBHOOK_CURSORS)?;
        let current = cursors.get((id, environment))?.map_or(0, |row| row.value());
        if revision > current {
            cursors.insert((id, environment), revision)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// See [`Store::flush_webhook_cursors`](super::Store::flush_webhook_cursors): a durable
/// commit makes every earlier one durable.
pub(super) fn flush(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(WEBHOOK_CURSORS)?;
    txn.commit()?;
    Ok(())
}

/// See [`Store::register_webhook`](super::Store::register_webhook).
pub(super) fn register(
    db: &Database,
    id: &str,
    filter: Option<&[String]>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let txn = db.begin_write()?;
    let cursors = {
        let revisions: BTreeMap<String, u64> = {
            let table = txn.open_table(ENVIRONMENTS)?;
            table
                .iter()?
                .map(|row| row.map(|(name, revision)| (name.value().to_owned(), revision.value())))
                .collect::<Result<_, _>>()?
        };
        let mut webhooks = txn.open_table(WEBHOOKS)?;
        let previous: Option<WebhookRecord> = match webhooks.get(id)? {
            Some(row) => Some(decode(row.value(), "webhooks", id)?),
            None => None,
        };
        let mut table = txn.open_table(WEBHOOK_CURSORS)?;
        let mut cursors: BTreeMap<String, u64> = BTreeMap::new();
        for row in table.range((id, "")..)? {
            let (key, revision) = row?;
            let (row_id, environment) = key.value();
            if row_id != id {
                break;
            }
            cursors.insert(environment.to_owned(), revision.value());
        }
        for environment in cursors.keys().filter(|name| !covers(filter, name)).cloned().collect::<Vec<_>>() {
            cursors.remove(&environment);
            table.remove((id, environment.as_str()))?;
        }
        for (environment, revision) in &revisions {
            if !covers(filter, environment) || cursors.contains_key(environment) {
                continue;
            }
            // Created while the previous start covered it: every change of it is owed.
            let owed = previous.as_ref().is_some_and(|record| {
                !record.known.contains(environment) && covers(record.covered.as_deref(), environment)
            });
            let start = if owed { 0 } else { *revision };
            table.insert((id, environment.as_str()), start)?;
            cursors.insert(environment.clone(), start);
        }
        let record = WebhookRecord {
            registered_ms: previous.as_ref().map_or_else(|| Now::new().millis, |record| record.registered_ms),
            covered: filter.map(<[String]>::to_vec),
            known: revisions.into_keys().collect(),
        };
        webhooks.insert(id, encode(&record)?.as_slice())?;
        cursors
    };
    txn.commit()?;
    Ok(cursors)
}

/// See [`Store::webhook_outbox`](super::Store::webhook_outbox).
pub(super) fn outbox(
    db: &Database,
    environment: &str,
    after: u64,
    limit: usize,
) -> Result<Outbox, StoreError> {
    let txn = db.begin_read()?;
    // A deleted environment's last changes are owed too: its count lives on in its record.
    let revision = environments::counter(
        &txn.open_table(ENVIRONMENTS)?,
        &txn.open_table(ENVIRONMENT_INFO)?,
        environment,
    )?;
    let mut entries = Vec::new();
    let changes = txn.open_table(CHANGES)?;
    for row in changes.range((environment, after.saturating_add(1))..=(environment, revision))?.take(limit) {
        let (key, value) = row?;
        let at = key.value().1;
        let change: ChangeRecord = decode(value.value(), "changes", format_args!("({environment}, {at})"))?;
        entries.push(match change.kind {
            SubjectKind::Flag => with_before::<Flag>(&txn, environment, at, &change)?,
            SubjectKind::Segment => with_before::<Segment>(&txn, environment, at, &change)?,
        });
    }
    Ok(Outbox { revision, entries })
}

fn with_before<T: Versioned>(
    txn: &ReadTransaction,
    environment: &str,
    revision: u64,
    change: &ChangeRecord,
) -> Result<OutboxEntry, StoreError> {
    let (entry, previous) = written::<T>(txn, environment, revision, change)?;
    let before = version_before::<T>(txn, environment, change, previous)?;
    Ok(OutboxEntry { entry, before })
}

/// For the store's check: the problem found, if any — a cursor of no registered webhook, or
/// one past its environment's revision. Files from before webhooks lack the tables until
/// they are opened for writing.
pub(super) fn problem(
    txn: &ReadTransaction,
    revisions: &BTreeMap<String, u64>,
) -> Result<Option<String>, StoreError> {
    let (webhooks, cursors) = match (txn.open_table(WEBHOOKS), txn.open_table(WEBHOOK_CURSORS)) {
        (Ok(webhooks), Ok(cursors)) => (webhooks, cursors),
        (Err(StoreError::Table(redb::TableError::TableDoesNotExist(_))), _)
        | (_, Err(StoreError::Table(redb::TableError::TableDoesNotExist(_)))) => {
            return Ok(None);
        }
        (Err(error), _) | (_, Err(error)) => return Err(error),
    };
    for row in webhooks.iter()? {
        let (id, value) = row?;
        decode::<WebhookRecord>(value.value(), "webhooks", id.value())?;
    }
    for row in cursors.iter()? {
        let (key, revision) = row?;
        let ((id, environment), revision) = (key.value(), revision.value());
        if webhooks.get(id)?.is_none() {
            return Ok(Some(format!(
                "webhook cursor ({id:?}, {environment:?}) belongs to no registered webhook"
            )));
        }
        let reached = revisions.get(environment).copied().unwrap_or(0);
        if revision > reached {
            return Ok(Some(format!(
                "environment {environment:?}: webhook {id:?} has delivered up to revision {revision}, past its revision {reached}"
            )));
        }
    }
    Ok(None)
}
