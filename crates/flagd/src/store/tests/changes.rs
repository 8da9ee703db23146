//! `changes_since`: exact, coalesced deltas, and when a client must take a snapshot.

use std::collections::BTreeMap;

use flag_core::{ChangeBatch, FlagSet};

use super::*;
use crate::store::ChangesSince;

/// Applies a delta to a client's copy, as an SDK would.
fn apply(mut set: FlagSet, delta: ChangesSince) -> (u64, FlagSet) {
    let ChangesSince::Delta(ChangeBatch {
        revision,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
        ..
    }) = delta
    else {
        panic!("expected a delta");
    };
    let mut flags: BTreeMap<_, _> = set.flags.drain(..).map(|f| (f.key.clone(), f)).collect();
    let mut segments: BTreeMap<_, _> = set.segments.drain(..).map(|s| (s.key.clone(), s)).collect();
    for key in deleted_flags {
        assert!(flags.remove(&key).is_some(), "deleted {key}, which the client did not have");
    }
    for key in deleted_segments {
        assert!(segments.remove(&key).is_some(), "deleted segment {key}, which the client did not have");
    }
    flags.extend(upserted_flags.into_iter().map(|f| (f.key.clone(), f)));
    segments.extend(upserted_segments.into_iter().map(|s| (s.key.clone(), s)));
    (revision, FlagSet { flags: flags.into_values().collect(), segments: segments.into_values().collect() })
}

#[test]
fn a_delta_lists_each_changed_key_once_in_its_current_state() {
    let (_dir, store) = new_store();
    put(&store, rollout("changed", 1.0));
    put(&store, rollout("deleted", 1.0));
    put(&store, rollout("untouched", 1.0));
    write(&store, WriteOp::PutSegment { segment: segment("old", &["u1"]) }).unwrap();
    let since = store.revision(ENV).unwrap();

    put(&store, rollout("changed", 2.0));
    write(&store, WriteOp::Kill { key: "changed".into() }).unwrap();
    put(&store, rollout("added", 1.0));
    write(&store, WriteOp::DeleteFlag { key: "deleted".into(), expected_version: None }).unwrap();
    put(&store, rollout("fleeting", 1.0));
    write(&store, WriteOp::DeleteFlag { key: "fleeting".into(), expected_version: None }).unwrap();
    write(&store, WriteOp::PutSegment { segment: segment("new", &["u2"]) }).unwrap();
    write(&store, WriteOp::DeleteSegment { key: "old".into() }).unwrap();
    store
        .write(
            "staging",
            WriteOp::PutFlag { flag: rollout("elsewhere", 1.0), expected_version: None },
            &meta("x"),
        )
        .unwrap();

    let ChangesSince::Delta(ChangeBatch {
        from_revision,
        revision,
        upserted_flags,
        deleted_flags,
        upserted_segments,
        deleted_segments,
    }) = store.changes_since(ENV, since).unwrap()
    else {
        panic!("expected a delta");
    };
    assert_eq!((from_revision, revision), (4, 12));
    let keys: Vec<&str> = upserted_flags.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["added", "changed"]);
    assert_eq!(
        upserted_flags[1],
        store.flag(ENV, "changed").unwrap().unwrap().flag,
        "current content, killed"
    );
    assert_eq!(deleted_flags, ["deleted"], "not `fleeting`: the client never had it");
    assert_eq!(upserted_segments, vec![store.segments(ENV).unwrap()[0].clone()]);
    assert_eq!(deleted_segments, ["old"]);

    let current = store.revision(ENV).unwrap();
    assert_eq!(
        store.changes_since(ENV, current).unwrap(),
        ChangesSince::Delta(ChangeBatch {
            from_revision: current,
            revision: current,
            upserted_flags: vec![],
            deleted_flags: vec![],
            upserted_segments: vec![],
            deleted_segments: vec![],
        }),
        "an up-to-date client gets an empty delta"
    );
}

#[test]
fn too_old_for_zero_the_future_and_beyond_the_window() {
    let (_dir, store) = new_store_with(StoreOptions { resume_window: 3, ..StoreOptions::default() });
    assert_eq!(store.changes_since(ENV, 0).unwrap(), ChangesSince::TooOld);
    assert_eq!(
        store.changes_since(ENV, 1).unwrap(),
        ChangesSince::TooOld,
        "unknown environment: 1 is in the future"
    );
    for percent in 1..=5 {
        put(&store, rollout("chat", f64::from(percent)));
    }
    assert_eq!(store.changes_since(ENV, 0).unwrap(), ChangesSince::TooOld);
    assert_eq!(store.changes_since(ENV, 6).unwrap(), ChangesSince::TooOld);
    assert_eq!(store.changes_since(ENV, 1).unwrap(), ChangesSince::TooOld, "4 behind, window 3");
    assert!(matches!(
        store.changes_since(ENV, 2).unwrap(),
        ChangesSince::Delta(ChangeBatch { from_revision: 2, revision: 5, .. })
    ));
}

/// Model check: for a pseudo-random run of writes, the snapshot at every revision plus the
/// delta since it is the current snapshot.
#[test]
fn snapshot_at_any_revision_plus_the_delta_is_the_current_snapshot() {
    let (_dir, store) = new_store();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let keys = ["a", "b", "c", "d"];
    let mut snapshots = vec![(0, FlagSet::default())];
    while snapshots.len() < 40 {
        let key = keys[next(4) as usize].to_string();
        let op = match next(6) {
            0 | 1 => WriteOp::PutFlag { flag: rollout(&key, next(100) as f64), expected_version: None },
            2 => WriteOp::Kill { key },
            3 => WriteOp::DeleteFlag { key, expected_version: None },
            4 => WriteOp::Rollback { key, to_version: None, expected_version: None, allow_revive: false },
            _ => WriteOp::PutSegment { segment: segment(&key, &["u1"]) },
        };
        // Refusals (not found, nothing to roll back) are part of the run: they change nothing.
        if write(&store, op).is_ok() {
            snapshots.push(store.snapshot(ENV).unwrap());
        }
    }
    let (current, now) = snapshots.last().cloned().unwrap();
    for (since, then) in &snapshots[1..] {
        let delta = store.changes_since(ENV, *since).unwrap();
        assert_eq!(apply(then.clone(), delta), (current, now.clone()), "from revision {since}");
    }
    assert_consistent(&store);
}
