//! A relay's copy of one upstream environment, kept so that an SDK resuming from a revision
//! the relay has seen gets only what changed since, as it would from the upstream itself.

use std::collections::BTreeMap;

use flag_core::{ChangeBatch, Flag, FlagSet, Segment};
use flag_proto::Snapshot;

/// Most deletions remembered; past them, clients older than the newest revision get a
/// snapshot instead of changes (a deleted key must not grow the relay's memory forever).
const MAX_TOMBSTONES: usize = 10_000;

/// One environment as the upstream last sent it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mirror {
    store_id: String,
    revision: u64,
    /// The oldest revision a client can be brought forward from with changes: before it, the
    /// mirror does not know what changed (it began with a snapshot, received or cached).
    known_from: u64,
    /// Each flag with the revision that last changed it.
    flags: BTreeMap<String, (Flag, u64)>,
    segments: BTreeMap<String, (Segment, u64)>,
    /// Deleted keys with the revision that deleted them.
    deleted_flags: BTreeMap<String, u64>,
    deleted_segments: BTreeMap<String, u64>,
}

/// What brings a client at some revision to the mirror's.
#[derive(Debug, PartialEq)]
pub(crate) enum CatchUp {
    Changes(ChangeBatch),
    Snapshot(FlagSet),
}

/// A change batch that does not start where the mirror stands.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("changes from revision {from} do not follow revision {held}")]
pub(crate) struct Gap {
    pub(crate) from: u64,
    pub(crate) held: u64,
}

impl Mirror {
    /// The environment as `snapshot` has it; clients can resume from its revision on.
    pub(crate) fn from_snapshot(snapshot: Snapshot) -> Mirror {
        let Snapshot { revision, store_id, set } = snapshot;
        let FlagSet { flags, segments } = set;
        Mirror {
            store_id,
            revision,
            known_from: revision,
            flags: flags.into_iter().map(|flag| (flag.key.clone(), (flag, revision))).collect(),
            segments: segments
                .into_iter()
                .map(|segment| (segment.key.clone(), (segment, revision)))
                .collect(),
            deleted_flags: BTreeMap::new(),
            deleted_segments: BTreeMap::new(),
        }
    }

    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Every flag and segment, sorted by key.
    pub(crate) fn set(&self) -> FlagSet {
        FlagSet {
            flags: self.flags.values().map(|(flag, _)| flag.clone()).collect(),
            segments: self.segments.values().map(|(segment, _)| segment.clone()).collect(),
        }
    }

    /// Applies the upstream's changes from the mirror's revision on.
    pub(crate) fn apply(&mut self, batch: &ChangeBatch) -> Result<(), Gap> {
        if batch.from_revision != self.revision {
            return Err(Gap { from: batch.from_revision, held: self.revision });
        }
        self.record(batch);
        Ok(())
    }

    /// Applies `batch`, which starts at the mirror's revision.
    fn record(&mut self, batch: &ChangeBatch) {
        if batch.revision <= self.revision {
            return; // nothing new (an empty catch-up)
        }
        let revision = batch.revision;
        for flag in &batch.upserted_flags {
            self.deleted_flags.remove(&flag.key);
            self.flags.insert(flag.key.clone(), (flag.clone(), revision));
        }
        for segment in &batch.upserted_segments {
            self.deleted_segments.remove(&segment.key);
            self.segments.insert(segment.key.clone(), (segment.clone(), revision));
        }
        for key in &batch.deleted_flags {
            self.flags.remove(key);
            self.deleted_flags.insert(key.clone(), revision);
        }
        for key in &batch.deleted_segments {
            self.segments.remove(key);
            self.deleted_segments.insert(key.clone(), revision);
        }
        self.revision = revision;
        self.forget_old_deletions();
    }

    /// Installs a snapshot the upstream sent (after a gap, or on reconnecting) and answers
    /// the changes it made, for the streams at the mirror's old revision; `None` when it
    /// comes from another store (the upstream was restored or replaced), after which every
    /// stream needs a snapshot.
    pub(crate) fn install(&mut self, snapshot: Snapshot) -> Option<ChangeBatch> {
        if snapshot.store_id != self.store_id || snapshot.revision < self.revision {
            *self = Mirror::from_snapshot(snapshot);
            return None;
        }
        let from_revision = self.revision;
        let Snapshot { revision, set, .. } = snapshot;
        let FlagSet { flags, segments } = set;
        let mut batch = ChangeBatch { from_revision, revision, ..ChangeBatch::default() };
        let flags: BTreeMap<String, Flag> = flags.into_iter().map(|flag| (flag.key.clone(), flag)).collect();
        let segments: BTreeMap<String, Segment> =
            segments.into_iter().map(|segment| (segment.key.clone(), segment)).collect();
        batch.deleted_flags = self.flags.keys().filter(|key| !flags.contains_key(*key)).cloned().collect();
        batch.deleted_segments =
            self.segments.keys().filter(|key| !segments.contains_key(*key)).cloned().collect();
        batch.upserted_flags = flags
            .into_values()
            .filter(|flag| self.flags.get(&flag.key).is_none_or(|(held, _)| held != flag))
            .collect();
        batch.upserted_segments = segments
            .into_values()
            .filter(|segment| self.segments.get(&segment.key).is_none_or(|(held, _)| held != segment))
            .collect();
        self.record(&batch);
        Some(batch)
    }

    /// What brings a client holding `since` (of this store) to the mirror's revision: the
    /// changes since, if the mirror knows them, else the whole environment. A client ahead
    /// of the mirror (a relay started from its cache while the upstream is away) is told
    /// nothing new: an older snapshot would take back what it holds, a kill perhaps.
    pub(crate) fn since(&self, since: u64) -> CatchUp {
        if since > self.revision {
            return CatchUp::Changes(ChangeBatch {
                from_revision: since,
                revision: since,
                ..ChangeBatch::default()
            });
        }
        if since < self.known_from {
            return CatchUp::Snapshot(self.set());
        }
        let changed = |at: &u64| *at > since;
        CatchUp::Changes(ChangeBatch {
            from_revision: since,
            revision: self.revision,
            upserted_flags: self
                .flags
                .values()
                .filter(|(_, at)| changed(at))
                .map(|(f, _)| f.clone())
                .collect(),
            deleted_flags: self
                .deleted_flags
                .iter()
                .filter(|(_, at)| changed(at))
                .map(|(k, _)| k.clone())
                .collect(),
            upserted_segments: self
                .segments
                .values()
                .filter(|(_, at)| changed(at))
                .map(|(s, _)| s.clone())
                .collect(),
            deleted_segments: self
                .deleted_segments
                .iter()
                .filter(|(_, at)| changed(at))
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }

    fn forget_old_deletions(&mut self) {
        if self.deleted_flags.len() + self.deleted_segments.len() > MAX_TOMBSTONES {
            self.deleted_flags.clear();
            self.deleted_segments.clear();
            self.known_from = self.revision;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(revision: u64, store_id: &str, flags: &[(&str, f64)]) -> Snapshot {
        let flags = flags.iter().map(|(key, percent)| Flag::rollout(key, *percent).unwrap()).collect();
        Snapshot { revision, store_id: store_id.into(), set: FlagSet { flags, segments: vec![] } }
    }

    fn keys(flags: &[Flag]) -> Vec<&str> {
        flags.iter().map(|flag| flag.key.as_str()).collect()
    }

    #[test]
    fn a_client_the_mirror_has_seen_gets_only_what_changed_since() {
        let mut mirror = Mirror::from_snapshot(snapshot(3, "s1", &[("a", 1.0), ("b", 2.0)]));
        let upsert = |from, revision, key: &str| ChangeBatch {
            from_revision: from,
            revision,
            upserted_flags: vec![Flag::rollout(key, 50.0).unwrap()],
            ..ChangeBatch::default()
        };
        mirror.apply(&upsert(3, 4, "a")).unwrap();
        mirror
            .apply(&ChangeBatch {
                from_revision: 4,
                revision: 5,
                deleted_flags: vec!["b".into()],
                ..Default::default()
            })
            .unwrap();
        mirror.apply(&upsert(5, 6, "c")).unwrap();
        assert_eq!(mirror.apply(&upsert(9, 10, "d")), Err(Gap { from: 9, held: 6 }));

        let CatchUp::Changes(since_4) = mirror.since(4) else { panic!("changes expected") };
        assert_eq!((since_4.from_revision, since_4.revision), (4, 6));
        assert_eq!((keys(&since_4.upserted_flags), since_4.deleted_flags), (vec!["c"], vec!["b".to_owned()]));
        let CatchUp::Changes(current) = mirror.since(6) else { panic!("changes expected") };
        assert!(current.upserted_flags.is_empty() && current.deleted_flags.is_empty());
        // Before the first snapshot, or ahead of the mirror: only a snapshot is safe.
        let CatchUp::Snapshot(set) = mirror.since(2) else { panic!("a snapshot expected") };
        assert_eq!(keys(&set.flags), ["a", "c"]);
        // A client ahead of the mirror keeps what it has.
        let CatchUp::Changes(ahead) = mirror.since(8) else { panic!("no snapshot for a client ahead") };
        assert_eq!((ahead.from_revision, ahead.revision, ahead.upserted_flags.len()), (8, 8, 0));
    }

    #[test]
    fn a_snapshot_after_a_gap_is_published_as_what_it_changed() {
        let mut mirror = Mirror::from_snapshot(snapshot(3, "s1", &[("a", 1.0), ("b", 2.0)]));
        let batch = mirror.install(snapshot(7, "s1", &[("a", 1.0), ("b", 9.0), ("c", 3.0)])).unwrap();
        assert_eq!((batch.from_revision, batch.revision), (3, 7));
        assert_eq!(keys(&batch.upserted_flags), ["b", "c"], "a is unchanged");
        let CatchUp::Changes(since_3) = mirror.since(3) else { panic!("changes expected") };
        assert_eq!(keys(&since_3.upserted_flags), ["b", "c"]);

        // Another store's snapshot replaces everything: no stream can resume across it.
        assert_eq!(mirror.install(snapshot(2, "s2", &[("z", 1.0)])), None);
        assert_eq!((mirror.store_id(), mirror.revision()), ("s2", 2));
        assert!(matches!(mirror.since(1), CatchUp::Snapshot(_)));
    }
}
