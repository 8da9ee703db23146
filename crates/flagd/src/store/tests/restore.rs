//! Point-in-time restore: the environment becomes what it was, as new versions, and a kill
//! made since is kept unless revival is asked for.

use flag_core::{FlagSet, Operation};

use super::*;
use crate::store::{Restore, Restored};

fn restore(store: &Store, restore: Restore) -> Result<Restored, WriteError> {
    Ok(store.restore_if(ENV, restore, &meta("bad deploy"), &|| true)?.unwrap())
}

fn to(revision: u64) -> Restore {
    Restore { to_revision: revision, ..Restore::default() }
}

/// The set's content without what the store stamps, to compare states across versions.
fn contents(set: &FlagSet) -> (Vec<Flag>, Vec<Segment>) {
    (set.flags.iter().map(content).collect(), set.segments.clone())
}

/// r1 chat 5 %, r2 search, r3 segment staff, then the "deploy": r4 chat 50 %, r5 search
/// deleted, r6 beta created, r7 staff changed.
fn deployed(store: &Store) -> FlagSet {
    put(store, rollout("chat", 5.0));
    put(store, rollout("search", 20.0));
    write(store, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }).unwrap();
    let before = store.snapshot(ENV).unwrap().1;
    put(store, rollout("chat", 50.0));
    write(store, WriteOp::DeleteFlag { key: "search".into(), expected_version: None }).unwrap();
    put(store, rollout("beta", 1.0));
    write(store, WriteOp::PutSegment { segment: segment("staff", &["ana", "ben"]) }).unwrap();
    before
}

#[test]
fn a_restore_brings_back_every_flag_and_segment_as_new_versions() {
    let (_dir, store) = new_store();
    let before = deployed(&store);
    let restored = restore(&store, to(3)).unwrap();

    assert_eq!(restored.to_revision, 3);
    let now = store.snapshot(ENV).unwrap();
    assert_eq!(contents(&now.1), contents(&before));
    assert_eq!(now.0, 7 + 4, "four changes: staff, beta deleted, chat, search recreated");
    let operations: Vec<(String, Operation)> =
        restored.applied.changes.iter().map(|c| (c.key.clone(), c.operation)).collect();
    assert_eq!(
        operations,
        [
            ("staff".into(), Operation::Update),
            ("beta".into(), Operation::Delete),
            ("chat".into(), Operation::Update),
            ("search".into(), Operation::Create),
        ]
    );
    // New versions whose history says what was restored; the old versions are still there.
    let chat = store.flag_history(ENV, "chat", None, 10).unwrap();
    assert_eq!(chat.iter().map(|e| e.version).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(chat[0].reason.starts_with("restore to r3 ("), "{}", chat[0].reason);
    assert!(chat[0].reason.ends_with("): bad deploy"), "{}", chat[0].reason);
    assert_eq!(chat[0].actor, "ana@example.com");
    assert_eq!(content(chat[2].flag.as_ref().unwrap()), content(chat[0].flag.as_ref().unwrap()));
    // A deleted flag comes back with its identity: the creation time of its first version.
    let search = store.flag("production", "search").unwrap().unwrap().flag;
    assert_eq!(search.version, 3);
    let first = store.flag_history(ENV, "search", None, 10).unwrap().pop().unwrap();
    assert_eq!(search.metadata.created_at, first.flag.unwrap().metadata.created_at);
    assert_consistent(&store);
}

#[test]
fn a_kill_made_since_is_kept_and_reported_unless_revival_is_allowed() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("search", 5.0));
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    put(&store, rollout("search", 90.0));

    let kept = restore(&store, to(2)).unwrap();
    assert_eq!(kept.applied.kept_killed, ["chat"]);
    let now = store.snapshot(ENV).unwrap().1;
    assert!(!now.flags[0].enabled, "chat stays killed");
    assert_eq!(content(&now.flags[1]), rollout("search", 5.0), "search is restored");

    let revived = restore(&store, Restore { allow_revive: true, ..to(2) }).unwrap();
    assert!(revived.applied.kept_killed.is_empty());
    assert!(store.snapshot(ENV).unwrap().1.flags[0].enabled, "revived when asked");

    // Going back to a killed state kills: that is always safe.
    let killed_at = store.revision(ENV).unwrap();
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    let killed_at = killed_at + 1;
    write(&store, WriteOp::Revive { key: "chat".into(), expected_version: None }).unwrap();
    restore(&store, to(killed_at)).unwrap();
    assert!(!store.snapshot(ENV).unwrap().1.flags[0].enabled);
}

#[test]
fn dry_runs_stale_expectations_and_unknown_revisions_change_nothing() {
    let (_dir, store) = new_store();
    deployed(&store);
    let untouched = dump(&store);

    let planned = restore(&store, Restore { dry_run: true, ..to(3) }).unwrap();
    assert_eq!(planned.applied.changes.len(), 4);
    assert_eq!(planned.applied.revision, 7, "a dry run reports the revision it planned against");
    assert_eq!(dump(&store), untouched);

    let stale = restore(&store, Restore { expected_revision: Some(6), ..to(3) }).unwrap_err();
    assert!(matches!(stale, WriteError::RevisionConflict { expected: 6, current: 7 }), "{stale:?}");
    let future = restore(&store, to(8)).unwrap_err();
    assert!(matches!(future, WriteError::FutureRevision { revision: 8, current: 7, .. }), "{future:?}");
    assert!(future.to_string().contains("no revision 8 yet"), "{future}");
    assert_eq!(dump(&store), untouched);
}

#[test]
fn a_restore_whose_client_has_gone_writes_nothing() {
    let (_dir, store) = new_store();
    deployed(&store);
    let untouched = dump(&store);
    let answer = store.restore_if(ENV, to(3), &meta("late"), &|| false).unwrap();
    assert!(answer.is_none());
    assert_eq!(dump(&store), untouched);
}

#[test]
fn a_restore_records_the_principal_and_whom_it_acted_for_on_every_change() {
    let (_dir, store) = new_store();
    deployed(&store);
    let by_bot =
        WriteMeta { actor: "ci-bot".into(), on_behalf_of: Some("ana".into()), reason: "bad deploy".into() };
    let restored = store.restore_if(ENV, to(3), &by_bot, &|| true).unwrap().unwrap();
    assert_eq!(restored.applied.changes.len(), 4);
    let log = store.environment_history(ENV, None, 4).unwrap();
    for entry in &log {
        assert_eq!(
            (entry.actor.as_str(), entry.on_behalf_of.as_deref()),
            ("ci-bot", Some("ana")),
            "{entry:?}"
        );
    }
    // Earlier changes keep theirs.
    let older = store.environment_history(ENV, Some(log[3].revision), 10).unwrap();
    assert!(older.iter().all(|entry| entry.on_behalf_of.is_none()), "{older:?}");
}
