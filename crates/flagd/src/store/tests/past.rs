//! An environment at an earlier revision or time is exactly what it was then: every
//! revision's state, recorded as it happened, is read back after the history moved on.

use flag_core::FlagSet;

use super::*;
use crate::store::{Batch, PastError};

/// Writes of every kind, each followed by the environment's snapshot at that point.
fn history_of_every_kind(store: &Store) -> Vec<FlagSet> {
    let now = |store: &Store| store.snapshot(ENV).unwrap().1;
    let mut states = vec![now(store)];
    put(store, rollout("chat", 5.0));
    states.push(now(store));
    put(store, rollout("search", 50.0));
    states.push(now(store));
    put(store, rollout("chat", 25.0));
    states.push(now(store));
    write(store, WriteOp::Kill { key: "chat".into() }).unwrap();
    states.push(now(store));
    write(store, WriteOp::DeleteFlag { key: "search".into(), expected_version: None }).unwrap();
    states.push(now(store));
    write(store, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }).unwrap();
    states.push(now(store));
    let batch = Batch {
        flags: vec![rollout("search", 10.0), rollout("beta", 1.0)],
        segments: vec![segment("staff", &["ana", "ben"])],
        ..Batch::default()
    };
    let applied = store.apply(ENV, batch, &meta("apply")).unwrap();
    assert_eq!(applied.revision, 9, "the apply wrote three revisions");
    // An apply's intermediate revisions are not states anyone saw, but each is well defined:
    // segments first, then flags by key.
    let mut after_segment = states.last().unwrap().clone();
    after_segment.segments = vec![now(store).segments[0].clone()];
    let mut after_beta = after_segment.clone();
    after_beta.flags.insert(0, now(store).flags[0].clone());
    states.push(after_segment);
    states.push(after_beta);
    states.push(now(store));
    write(
        store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: Some(1),
            expected_version: None,
            allow_revive: true,
        },
    )
    .unwrap();
    states.push(now(store));
    states
}

#[test]
fn every_past_revision_reads_back_as_it_was() {
    let (_dir, store) = new_store();
    let states = history_of_every_kind(&store);
    let current = store.revision(ENV).unwrap();
    assert_eq!(usize::try_from(current).unwrap() + 1, states.len());
    for (revision, expected) in states.iter().enumerate() {
        let past = store.environment_at(ENV, revision as u64).unwrap();
        assert_eq!(past.set, *expected, "revision {revision}");
        assert_eq!(past.current, current);
        assert_eq!(past.committed_ms.is_some(), revision > 0);
    }
    // The killed, then deleted and recreated flags come back with the content they had.
    let at_4 = store.environment_at(ENV, 4).unwrap().set;
    assert!(!at_4.flags.iter().find(|f| f.key == "chat").unwrap().enabled);
    assert_eq!(at_4.flags.iter().find(|f| f.key == "search").unwrap().version, 1);
}

#[test]
fn a_revision_not_reached_yet_is_refused_with_the_current_one() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let error = store.environment_at(ENV, 2).unwrap_err();
    assert!(matches!(error, PastError::FutureRevision { revision: 2, current: 1, .. }), "{error:?}");
    assert!(error.to_string().contains("at revision 1"), "{error}");
    // An environment never written is empty at revision 0.
    assert_eq!(store.environment_at("staging", 0).unwrap().set, FlagSet::default());
}

#[test]
fn a_time_finds_the_last_revision_committed_by_then() {
    let (_dir, store) = new_store();
    let mut times = Vec::new();
    for n in 0..5 {
        times.push(put(&store, rollout("chat", f64::from(n + 1))).entry.timestamp_ms);
        // Distinct milliseconds, so each revision has a time of its own.
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    assert_eq!(store.revision_at(ENV, times[0] - 1).unwrap(), 0, "before the first write");
    for (index, time) in times.iter().enumerate() {
        assert_eq!(store.revision_at(ENV, *time).unwrap(), index as u64 + 1);
        assert_eq!(store.revision_at(ENV, time + 1).unwrap(), index as u64 + 1, "between writes");
    }
    assert_eq!(store.revision_at(ENV, i64::MAX).unwrap(), 5);
    let past = store.environment_at(ENV, 3).unwrap();
    assert_eq!(past.committed_ms, Some(times[2]));
}

#[test]
fn two_sides_are_read_together_now_or_at_a_revision() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("chat", 50.0));
    store
        .write(
            "staging",
            WriteOp::PutFlag { flag: rollout("chat", 90.0), expected_version: None },
            &meta("s"),
        )
        .unwrap();
    let (then, staging) = store.sides((ENV, Some(1)), ("staging", None)).unwrap();
    assert_eq!((then.revision, then.current, staging.revision), (1, 2, 1));
    assert_eq!(content(&then.set.flags[0]), rollout("chat", 5.0));
    assert_eq!(content(&staging.set.flags[0]), rollout("chat", 90.0));
    let future = store.sides((ENV, None), ("staging", Some(5))).unwrap_err();
    assert!(matches!(future, PastError::FutureRevision { revision: 5, current: 1, .. }), "{future:?}");
}
