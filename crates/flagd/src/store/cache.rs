//! The writer's copy of each environment's current flag set.
//!
//! Every write validates the whole environment after the change. Decoding every row of the
//! environment from the file on each write would cost as much as validating it, so the
//! writer keeps the decoded sets. The cache is only ever read and replaced under the write
//! lock, replaced only after a successful commit, and thrown away (to be rebuilt from the
//! file) whenever a commit fails or a writer panics — so it cannot drift from the file.
//!
//! On PostgreSQL other flagds write the same store: the cache knows the store's generation
//! it was read at (`Database::cache_read_at`), and a write that finds the store at another
//! reads the cache afresh first (see `Writer::transact`).
//!
//! Each set is behind an `Arc` so that an apply can plan and validate against it without
//! holding the write lock (see `apply`): taking it costs a reference count, not a copy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::backend::{Database, ReadTransaction, ReadableTable};
use flag_core::{Flag, FlagSet, Segment};

use super::error::StoreError;
use super::records::decode;
use super::size;
use super::tables::{ENVIRONMENTS, FLAGS, SEGMENTS};

/// Each environment's live flags and segments, each list sorted by key, and the size of its
/// full snapshot (see `size`), kept up to date by every write rather than recomputed; and
/// which environments exist, so a write to one that does not is refused without a read.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Cache {
    environments: HashMap<String, Arc<FlagSet>>,
    bytes: HashMap<String, usize>,
    existing: HashSet<String>,
}

/// The flag set of an environment nobody has written.
static EMPTY: FlagSet = FlagSet { flags: Vec::new(), segments: Vec::new() };

impl Cache {
    /// Reads every live flag and segment from the file, in one read transaction.
    pub(super) fn load(db: &Database) -> Result<Cache, StoreError> {
        Cache::read(db, &db.begin_read()?)
    }

    /// Reads every live flag and segment as `txn` sees them.
    pub(super) fn read(db: &Database, txn: &ReadTransaction) -> Result<Cache, StoreError> {
        let cache = Cache::read_rows(txn)?;
        db.cache_read_at(txn.generation());
        Ok(cache)
    }

    fn read_rows(txn: &ReadTransaction) -> Result<Cache, StoreError> {
        let mut existing = HashSet::new();
        for row in txn.open_table(ENVIRONMENTS)?.iter()? {
            existing.insert(row?.0.value().to_owned());
        }
        let mut environments: HashMap<String, FlagSet> = HashMap::new();
        for row in txn.open_table(FLAGS)?.iter()? {
            let (key, value) = row?;
            let (environment, flag_key) = key.value();
            let flag: Flag = decode(value.value(), "flags", format_args!("({environment}, {flag_key})"))?;
            environments.entry(environment.to_owned()).or_default().flags.push(flag);
        }
        for row in txn.open_table(SEGMENTS)?.iter()? {
            let (key, value) = row?;
            let (environment, segment_key) = key.value();
            let segment: Segment =
                decode(value.value(), "segments", format_args!("({environment}, {segment_key})"))?;
            environments.entry(environment.to_owned()).or_default().segments.push(segment);
        }
        // Rows come in key order, so each environment's lists are already sorted by key.
        let bytes =
            environments.iter().map(|(name, set)| (name.clone(), size::snapshot_bytes(set))).collect();
        let environments = environments.into_iter().map(|(name, set)| (name, Arc::new(set))).collect();
        Ok(Cache { environments, bytes, existing })
    }

    /// Whether the environment exists (see `environments`).
    pub(super) fn exists(&self, environment: &str) -> bool {
        self.existing.contains(environment)
    }

    /// Records a committed creation (`true`) or deletion of the environment.
    pub(super) fn set_exists(&mut self, environment: &str, exists: bool) {
        if exists {
            self.existing.insert(environment.to_owned());
        } else {
            self.existing.remove(environment);
        }
    }

    /// The size of the environment's full snapshot, in encoded bytes.
    pub(super) fn bytes(&self, environment: &str) -> usize {
        self.bytes.get(environment).copied().unwrap_or(size::EMPTY_SNAPSHOT_BYTES)
    }

    /// The environment's live set (empty when it was never written).
    pub(super) fn environment(&self, environment: &str) -> &FlagSet {
        self.environments.get(environment).map_or(&EMPTY, |set| set)
    }

    /// The environment's live set, shared (empty when it was never written).
    pub(super) fn shared(&self, environment: &str) -> Arc<FlagSet> {
        self.environments.get(environment).map_or_else(|| Arc::new(FlagSet::default()), Arc::clone)
    }

    /// Replaces the environment's set with the one just committed, `bytes` in a snapshot.
    pub(super) fn replace(&mut self, environment: &str, set: FlagSet, bytes: usize) {
        // An emptied environment is dropped, as `load` would not see it either.
        if set.flags.is_empty() && set.segments.is_empty() {
            self.environments.remove(environment);
            self.bytes.remove(environment);
        } else if let Some(slot) = self.environments.get_mut(environment) {
            *slot = Arc::new(set);
            self.bytes.insert(environment.to_owned(), bytes);
        } else {
            self.environments.insert(environment.to_owned(), Arc::new(set));
            self.bytes.insert(environment.to_owned(), bytes);
        }
    }
}
