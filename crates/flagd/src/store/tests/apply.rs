//! Apply: a flag file in one transaction — idempotent, all or nothing, pruning on request.

use flag_core::{FlagSet, Operation};

use super::validation::in_segment;
use super::*;
use crate::store::{Applied, Batch};

fn apply(store: &Store, batch: Batch) -> Result<Applied, WriteError> {
    store.apply(ENV, batch, &meta("apply"))
}

fn batch(flags: Vec<Flag>, segments: Vec<Segment>) -> Batch {
    Batch { flags, segments, ..Batch::default() }
}

fn planned(applied: &Applied) -> Vec<(String, Operation)> {
    applied.changes.iter().map(|c| (c.key.clone(), c.operation)).collect()
}

/// A flag whose rule needs segment `staff`: valid only if the segment is written too.
fn staff_only_chat() -> Flag {
    let mut chat = rollout("chat", 5.0);
    chat.rules.push(in_segment("staff"));
    chat
}

#[test]
fn a_file_applies_in_one_commit_and_applying_it_again_changes_nothing() {
    let (_dir, store) = new_store();
    put(&store, rollout("old", 1.0));
    let file = batch(vec![staff_only_chat(), rollout("search", 50.0)], vec![segment("staff", &["ana"])]);

    let first = apply(&store, file.clone()).unwrap();
    // The flag needing the segment is valid only together with it: one validation, at the end.
    assert_eq!(
        planned(&first),
        [
            ("staff".into(), Operation::Create),
            ("chat".into(), Operation::Create),
            ("search".into(), Operation::Create)
        ]
    );
    assert_eq!(first.revision, 4);
    assert_eq!(store.revision(ENV).unwrap(), 4);
    assert_eq!(content(&store.flag(ENV, "chat").unwrap().unwrap().flag), staff_only_chat());

    let second = apply(&store, file).unwrap();
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert_eq!(second.revision, 4);
    assert!(second.last.is_none());
    assert_eq!(store.flag(ENV, "old").unwrap().map(|r| r.flag.key), Some("old".into()), "no prune asked");
    assert_consistent(&store);
}

#[test]
fn an_invalid_file_changes_nothing_and_names_the_flag_by_key() {
    let (_dir, store) = new_store();
    put(&store, rollout("search", 10.0));
    let before = dump(&store);
    let mut broken = rollout("search", 20.0);
    broken.off_variant = Some("missing".into());
    // `chat` is fine on its own terms but its segment is absent.
    let Err(WriteError::Invalid(error)) = apply(&store, batch(vec![staff_only_chat(), broken], vec![]))
    else {
        panic!("expected a validation error");
    };
    let paths: Vec<&str> = error.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"flags[\"search\"].off_variant"), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("flags[\"chat\"].rules[0]")), "{paths:?}");
    assert_eq!(dump(&store), before);
    assert_consistent(&store);
}

#[test]
fn prune_deletes_what_the_file_lacks_and_a_dry_run_commits_nothing() {
    let (_dir, store) = new_store();
    put(&store, rollout("keep", 10.0));
    put(&store, rollout("gone", 10.0));
    write(&store, WriteOp::PutSegment { segment: segment("unused", &["bo"]) }).unwrap();
    let before = dump(&store);
    let file = Batch { prune: true, dry_run: true, ..batch(vec![rollout("keep", 20.0)], vec![]) };

    let dry = apply(&store, file.clone()).unwrap();
    let expected = [
        ("unused".into(), Operation::Delete),
        ("gone".into(), Operation::Delete),
        ("keep".into(), Operation::Update),
    ];
    assert_eq!(planned(&dry), expected);
    assert_eq!(dry.revision, 3, "a dry run reports the current revision");
    assert_eq!(dump(&store), before);

    let done = apply(&store, Batch { dry_run: false, ..file }).unwrap();
    assert_eq!(planned(&done), expected);
    let (revision, set) = store.snapshot(ENV).unwrap();
    assert_eq!(revision, 6);
    let keys: Vec<&str> = set.flags.iter().map(|f| f.key.as_str()).collect();
    assert_eq!((keys, set.segments.len()), (vec!["keep"], 0));
    assert_consistent(&store);
}

#[test]
fn a_stale_plan_and_duplicate_keys_are_refused() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 10.0));
    let stale = Batch { expected_revision: Some(0), ..batch(vec![rollout("chat", 20.0)], vec![]) };
    assert!(matches!(apply(&store, stale), Err(WriteError::RevisionConflict { expected: 0, current: 1 })));
    let twice = batch(vec![rollout("a", 1.0), rollout("a", 2.0)], vec![]);
    let Err(WriteError::Invalid(error)) = apply(&store, twice) else { panic!("expected a refusal") };
    assert_eq!(error.problems[0].path, "flags[1].key");
    assert_eq!(
        store.snapshot(ENV).unwrap(),
        (1, FlagSet { flags: vec![store.flag(ENV, "chat").unwrap().unwrap().flag], segments: vec![] })
    );
}

#[test]
fn an_apply_never_revives_a_killed_flag_but_can_kill_one() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("search", 5.0));
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    // The file, as in git: both enabled, chat ramped to 25 %.
    let mut search_off = rollout("search", 5.0);
    search_off.enabled = false;
    let applied = apply(&store, batch(vec![rollout("chat", 25.0), search_off], vec![])).unwrap();
    assert_eq!(applied.kept_killed, ["chat"]);
    let chat = store.flag(ENV, "chat").unwrap().unwrap().flag;
    assert!(!chat.enabled, "the kill stands");
    assert_eq!(chat.default, rollout("chat", 25.0).default, "the rest of the file is applied");
    assert!(!store.flag(ENV, "search").unwrap().unwrap().flag.enabled, "a file can kill");
    // Applying the same file again: nothing to change, and chat is still reported.
    let again = apply(&store, batch(vec![rollout("chat", 25.0)], vec![])).unwrap();
    assert!(again.changes.is_empty() && again.kept_killed == ["chat"], "{again:?}");
}

#[test]
fn an_applys_delta_is_what_a_stream_would_read_back_from_the_store() {
    let (_dir, store) = new_store();
    put(&store, rollout("old", 1.0));
    put(&store, rollout("kept", 2.0));
    write(&store, WriteOp::PutSegment { segment: segment("gone", &["bo"]) }).unwrap();
    let from = store.revision(ENV).unwrap();
    // Creates, an update, a pruned flag and a pruned segment, in one apply.
    let file = Batch {
        prune: true,
        ..batch(
            vec![staff_only_chat(), rollout("kept", 20.0), rollout("search", 50.0)],
            vec![segment("staff", &["ana"])],
        )
    };
    let applied = apply(&store, file).unwrap();
    let delta = applied.delta.expect("a committed apply has its delta");
    let read_back = store.changes_since(ENV, from).unwrap().into_batch().unwrap();
    assert_eq!(delta, read_back);
    assert_eq!((delta.from_revision, delta.revision), (from, from + 6));
    assert_eq!(delta.deleted_flags, ["old"]);
    assert_eq!(delta.deleted_segments, ["gone"]);
    assert_eq!(delta.upserted_flags.len(), 3);

    let again = apply(&store, Batch { dry_run: true, ..batch(vec![rollout("new", 1.0)], vec![]) }).unwrap();
    assert_eq!(again.delta, None, "a dry run publishes nothing");
}

/// An apply commits its version rows first and the rest second. One whose client goes in
/// between leaves versions beyond the environment's revision: no read shows them, the
/// check accepts them, and the writes after it (of either kind, at those revisions) and the
/// next apply leave a store that reads exactly as if that apply had never been.
#[test]
fn an_apply_abandoned_after_its_versions_were_staged_leaves_nothing_a_read_sees() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let before = store.revision(ENV).unwrap();
    let asked = AtomicUsize::new(0);
    // Wanted when its turn comes, gone once its versions are written.
    let wanted = || asked.fetch_add(1, Ordering::SeqCst) == 0;
    let file = batch(
        vec![rollout("chat", 50.0), rollout("search", 10.0), rollout("ads", 1.0)],
        vec![segment("staff", &["ana"])],
    );
    let abandoned = store.apply_if(ENV, file, &meta("abandoned"), &wanted).unwrap();
    assert!(abandoned.is_none(), "{abandoned:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 2, "asked at its turn and after staging");
    assert_eq!(store.abandoned_writes(), 1);
    assert_eq!(store.revision(ENV).unwrap(), before);
    assert_eq!(store.list_flags(ENV, "", None).unwrap().len(), 1);
    assert_consistent(&store);

    // The staged rows are at revisions 2..=5, the segment's first: a kill takes revision 2
    // over the staged segment version, a segment write revision 3 over a staged flag's.
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    write(&store, WriteOp::PutSegment { segment: segment("beta", &["bo"]) }).unwrap();
    assert_consistent(&store);
    let history = store.flag_history(ENV, "chat", None, usize::MAX).unwrap();
    assert_eq!(history.iter().map(|entry| entry.revision).collect::<Vec<_>>(), [2, 1]);
    let changes = store.changes_since(ENV, before).unwrap().into_batch().unwrap();
    assert_eq!(changes.upserted_segments.len(), 1);
    assert_eq!(changes.upserted_flags.len(), 1);
    assert!(!changes.upserted_flags[0].enabled);

    // The next apply stages over what is left and commits.
    let applied = apply(&store, batch(vec![rollout("search", 10.0)], vec![])).unwrap();
    assert_eq!(applied.revision, 4);
    assert_consistent(&store);
    let search = store.flag_history(ENV, "search", None, usize::MAX).unwrap();
    assert_eq!((search.len(), search[0].revision), (1, 4));
}
