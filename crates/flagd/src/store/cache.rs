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
//! A write of one flag (a kill above all) patches the cached set in place rather than
//! building a new one: copying and freeing a 10,000-flag set took ~9 ms of a kill's time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::backend::{Database, ReadTransaction, ReadableTable};
use flag_core::{Flag, FlagSet, HistoryEntry, Segment, SubjectKind};

use super::error::StoreError;
use super::records::decode;
use super::size;
use super::subject::Versioned;
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

/// An environment's live set after a committed write.
#[derive(Debug)]
pub(super) enum NewSet {
    /// The whole set, as the write built (and validated) it.
    Whole(FlagSet),
    /// One flag replaced (`None`: deleted).
    Flag(String, Option<Box<Flag>>),
    /// One segment replaced (`None`: deleted).
    Segment(String, Option<Segment>),
}

impl NewSet {
    /// The one flag or segment the write of `entry` changed.
    pub(super) fn one(entry: &HistoryEntry) -> NewSet {
        match entry.kind {
            SubjectKind::Flag => NewSet::Flag(entry.key.clone(), entry.flag.clone().map(Box::new)),
            SubjectKind::Segment => NewSet::Segment(entry.key.clone(), entry.segment.clone()),
        }
    }

    /// Makes `set` the set after the write.
    pub(super) fn apply_to(self, set: &mut FlagSet) {
        match self {
            NewSet::Whole(whole) => *set = whole,
            NewSet::Flag(key, flag) => Flag::replace_in(set, &key, flag.map(|flag| *flag)),
            NewSet::Segment(key, segment) => Segment::replace_in(set, &key, segment),
        }
    }
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
    pub(super) fn replace(&mut self, environment: &str, set: NewSet, bytes: usize) {
        // The key is allocated only for an environment new to the cache.
        if !self.environments.contains_key(environment) {
            self.environments.insert(environment.to_owned(), Arc::default());
        }
        let Some(slot) = self.environments.get_mut(environment) else { return };
        match set {
            NewSet::Whole(whole) => *slot = Arc::new(whole),
            // In place unless an apply is planning against this set; then the copy is
            // this write's, and the apply keeps what it planned against.
            one => one.apply_to(Arc::make_mut(slot)),
        }
        // An emptied environment is dropped, as `load` would not see it either.
        if slot.flags.is_empty() && slot.segments.is_empty() {
            self.environments.remove(environment);
            self.bytes.remove(environment);
        } else if let Some(known) = self.bytes.get_mut(environment) {
            *known = bytes;
        } else {
            self.bytes.insert(environment.to_owned(), bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(key: &str) -> Flag {
        Flag::rollout(key, 1.0).unwrap()
    }

    #[test]
    fn a_one_flag_write_patches_the_set_and_leaves_the_one_an_apply_plans_against() {
        let mut cache = Cache::default();
        let whole = FlagSet { flags: vec![flag("a"), flag("b")], segments: vec![] };
        cache.replace("production", NewSet::Whole(whole), 100);
        let planning = cache.shared("production");
        let mut killed = flag("a");
        killed.enabled = false;
        cache.replace("production", NewSet::Flag("a".into(), Some(Box::new(killed))), 99);
        assert!(planning.flags[0].enabled, "the apply's set is its own");
        assert!(!cache.environment("production").flags[0].enabled);
        assert_eq!(cache.bytes("production"), 99);

        // Shared by nobody, the set is patched where it is: nothing copied.
        drop(planning);
        let before = std::ptr::from_ref(cache.environment("production"));
        cache.replace("production", NewSet::Flag("c".into(), Some(Box::new(flag("c")))), 120);
        assert_eq!(std::ptr::from_ref(cache.environment("production")), before);
        let keys: Vec<&str> = cache.environment("production").flags.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);

        // Emptied, the environment is dropped as a load from the file would see it.
        for key in ["a", "b", "c"] {
            cache.replace("production", NewSet::Flag(key.into(), None), 10);
        }
        assert_eq!(cache, Cache::default());
    }
}
