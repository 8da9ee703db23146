//! The environment cap: growth past it is refused with the figures and changes nothing;
//! kills and shrinking writes always commit.

use super::*;
use crate::store::Batch;

const CAP: usize = 4096;

fn capped(dir: &TempDir, cap: usize) -> Store {
    let options = StoreOptions { max_environment_bytes: cap, ..StoreOptions::default() };
    open_in(dir, options)
}

fn put_op(key: &str) -> WriteOp {
    WriteOp::PutFlag { flag: rollout(key, 10.0), expected_version: None }
}

#[test]
fn growing_an_environment_past_its_cap_is_refused_with_the_figures_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = capped(&dir, CAP);
    let mut written = 0;
    let error = loop {
        match write(&store, put_op(&format!("flag-{written:03}"))) {
            Ok(_) => written += 1,
            Err(error) => break error,
        }
        assert!(written < 1000, "a 4 KiB cap never refused a write");
    };
    assert!(written >= 5, "a few flags fit in 4 KiB, refused after {written}");
    let WriteError::EnvironmentTooLarge { environment, bytes, limit } = &error else {
        panic!("expected the cap's refusal, got {error:?}");
    };
    assert_eq!((environment.as_str(), *limit), (ENV, CAP));
    assert!(*bytes > CAP && *bytes < CAP + 1024, "{bytes}");
    let message = error.to_string();
    assert!(message.contains(&format!("({bytes} bytes)")) && message.contains("4096 bytes"), "{message}");

    let before = dump(&store);
    let revision = store.revision(ENV).unwrap();
    assert!(matches!(write(&store, put_op("one-more")), Err(WriteError::EnvironmentTooLarge { .. })));
    let batch = Batch { flags: vec![rollout("from-a-file", 10.0)], ..Batch::default() };
    let refused = store.apply(ENV, Batch { dry_run: true, ..batch.clone() }, &meta("dry run"));
    assert!(matches!(refused, Err(WriteError::EnvironmentTooLarge { .. })), "{refused:?}");
    let refused = store.apply(ENV, batch, &meta("apply"));
    assert!(matches!(refused, Err(WriteError::EnvironmentTooLarge { .. })), "{refused:?}");
    assert_eq!(dump(&store), before, "refused writes left every row as it was");
    assert_eq!(store.revision(ENV).unwrap(), revision);

    // At the cap, a kill still commits, and so does replacing a flag by a smaller one.
    write(&store, WriteOp::Kill { key: "flag-000".into() }).unwrap();
    let mut smaller = rollout("flag-001", 10.0);
    smaller.description.clear();
    write(&store, WriteOp::PutFlag { flag: smaller, expected_version: None }).unwrap();
    assert_consistent(&store);
}

#[test]
fn an_environment_over_a_lowered_cap_still_takes_kills_and_deletes_but_not_growth() {
    let dir = tempfile::tempdir().unwrap();
    let store = capped(&dir, CAP * 4);
    for i in 0..20 {
        write(&store, put_op(&format!("flag-{i:03}"))).unwrap();
    }
    drop(store);
    let store = capped(&dir, CAP / 4);
    write(&store, WriteOp::Kill { key: "flag-003".into() }).unwrap();
    write(&store, WriteOp::Revive { key: "flag-003".into(), expected_version: None }).unwrap();
    write(&store, WriteOp::DeleteFlag { key: "flag-004".into(), expected_version: None }).unwrap();
    let error = write(&store, put_op("flag-999")).unwrap_err();
    assert!(matches!(error, WriteError::EnvironmentTooLarge { limit: 1024, .. }), "{error:?}");
    // The running total the cap is checked against is what the file holds (see `assert_consistent`).
    assert_consistent(&store);
}
