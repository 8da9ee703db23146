//! Optimistic concurrency: `expected_version` makes read-modify-write safe.

use std::collections::BTreeSet;
use std::thread;

use super::*;

#[test]
fn of_two_writers_expecting_the_same_version_exactly_one_wins() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let by = |percent: f64| WriteOp::PutFlag { flag: rollout("chat", percent), expected_version: Some(1) };
    let (first, second) = thread::scope(|s| {
        let first = s.spawn(|| write(&store, by(10.0)));
        let second = s.spawn(|| write(&store, by(20.0)));
        (first.join().unwrap(), second.join().unwrap())
    });
    let (winner, loser) = match (first, second) {
        (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner, loser),
        other => panic!("expected one winner and one conflict, got {other:?}"),
    };
    assert_eq!(winner.entry.version, 2);
    assert!(
        matches!(&loser, WriteError::VersionConflict { key, expected: 1, current: 2 } if key == "chat"),
        "{loser:?}"
    );
    assert_eq!(store.flag(ENV, "chat").unwrap().unwrap().flag, winner.entry.flag.unwrap());
    assert_eq!(store.revision(ENV).unwrap(), 2, "the conflict wrote nothing");
    assert_consistent(&store);
}

#[test]
fn expected_version_zero_means_create_only() {
    let (_dir, store) = new_store();
    let create = || write(&store, WriteOp::PutFlag { flag: rollout("chat", 5.0), expected_version: Some(0) });
    assert_eq!(create().unwrap().entry.version, 1);
    let error = create().unwrap_err();
    assert!(matches!(error, WriteError::VersionConflict { expected: 0, current: 1, .. }), "{error:?}");
    // A deleted flag counts as absent: current is 0.
    write(&store, WriteOp::DeleteFlag { key: "chat".into(), expected_version: Some(1) }).unwrap();
    let error = write(&store, WriteOp::Revive { key: "chat".into(), expected_version: Some(1) }).unwrap_err();
    assert!(matches!(error, WriteError::VersionConflict { expected: 1, current: 0, .. }), "{error:?}");
    assert_eq!(create().unwrap().entry.version, 3);
}

/// N threads each read the flag, change it, and write it back expecting the version they
/// read, retrying on conflict. Without optimistic concurrency, increments would be lost.
#[test]
fn concurrent_read_modify_write_loses_no_update() {
    const THREADS: usize = 4;
    const INCREMENTS: usize = 15;
    let (_dir, store) = new_store();
    put(&store, rollout("counter", 0.0));
    let conflicts: usize = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let store = store.clone();
                s.spawn(move || {
                    let mut conflicts = 0;
                    for increment in 0..INCREMENTS {
                        // Bounded, so that a store that always conflicts fails the test instead of hanging it.
                        for attempt in 0.. {
                            assert!(attempt < 1_000, "thread {thread} never got a write through");
                            let current = store.flag(ENV, "counter").unwrap().unwrap().flag;
                            let mut next = current.clone();
                            // The counter lives in the description; each write also says who made it.
                            let count: usize =
                                current.description.split(' ').next().unwrap_or("0").parse().unwrap_or(0);
                            next.description = format!("{} by {thread}.{increment}", count + 1);
                            let op = WriteOp::PutFlag { flag: next, expected_version: Some(current.version) };
                            match store.write(ENV, op, &meta("increment")) {
                                Ok(_) => break,
                                Err(WriteError::VersionConflict { .. }) => conflicts += 1,
                                Err(other) => panic!("{other:?}"),
                            }
                        }
                    }
                    conflicts
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });

    let total = THREADS * INCREMENTS;
    let flag = store.flag(ENV, "counter").unwrap().unwrap().flag;
    assert_eq!(
        flag.version,
        total as u64 + 1,
        "every increment is a version ({conflicts} conflicts retried)"
    );
    assert!(flag.description.starts_with(&format!("{total} by ")), "{}", flag.description);
    let history = store.flag_history(ENV, "counter", None, usize::MAX).unwrap();
    let writers: BTreeSet<String> =
        history.iter().filter_map(|e| e.flag.as_ref()).map(|f| f.description.clone()).collect();
    assert_eq!(writers.len(), total + 1, "each increment recorded once");
    assert_eq!(store.revision(ENV).unwrap(), total as u64 + 1);
    assert_consistent(&store);
}

/// Kills sent back to back make a running apply give way, but only a few times: it then
/// keeps its turn and commits while the kills are still coming.
#[test]
fn kills_back_to_back_do_not_starve_an_apply() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let (_dir, store) = new_store();
    put(&store, rollout("incident", 50.0));
    let flags: Vec<Flag> = (0..2_000).map(|i| rollout(&format!("flag-{i:04}"), 10.0)).collect();
    let applied = AtomicBool::new(false);
    let kills_during = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    thread::scope(|s| {
        s.spawn(|| {
            while !applied.load(Ordering::Acquire) && Instant::now() < deadline {
                write(&store, WriteOp::Kill { key: "incident".into() }).unwrap();
                write(&store, WriteOp::Revive { key: "incident".into(), expected_version: None }).unwrap();
                kills_during.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Let the kills start first, so the apply meets them from its first attempt.
        while kills_during.load(Ordering::Relaxed) == 0 {
            thread::yield_now();
        }
        let batch = crate::store::Batch { flags, ..crate::store::Batch::default() };
        let result = store.apply(ENV, batch, &meta("apply during kills"));
        applied.store(true, Ordering::Release);
        assert_eq!(result.unwrap().changes.len(), 2_000);
    });
    assert!(Instant::now() < deadline, "the apply committed only once the kills stopped");
    assert_consistent(&store);
}
