//! Environments created, copied and deleted.

use flag_core::{CopiedFrom, Operation};

use super::*;
use crate::store::StoreError;

fn create(store: &Store, name: &str, from: Option<&str>) -> Result<(), WriteError> {
    store.create_environment(name, from, &meta("make it"), &|| true).map(drop)
}

#[test]
fn a_new_store_starts_with_production_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir, StoreOptions::default());
    assert_eq!(store.environments().unwrap(), ["production"]);
    let production = store.environment_summary("production").unwrap();
    assert_eq!((production.revision, production.flags, production.last_change), (0, 0, None));
    assert_eq!(production.created.unwrap().actor, "flagd");
}

#[test]
fn a_created_environment_is_empty_and_a_second_create_is_refused() {
    let (_dir, store) = new_store();
    create(&store, "qa", None).unwrap();
    assert_eq!(store.snapshot("qa").unwrap(), (0, flag_core::FlagSet::default()));
    let summary = store.environment_summary("qa").unwrap();
    assert_eq!(summary.created.as_ref().map(|c| c.reason.as_str()), Some("make it"));
    assert_eq!(summary.copied_from, None);
    match create(&store, "qa", None) {
        Err(WriteError::EnvironmentExists { environment, revision: 0 }) => assert_eq!(environment, "qa"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    put(&store, rollout("chat", 5.0));
    match create(&store, "production", Some("qa")) {
        Err(WriteError::EnvironmentExists { revision: 1, .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.snapshot(ENV).unwrap().1.flags.len(), 1, "production is untouched");
    assert_consistent(&store);
}

#[test]
fn a_copy_has_the_sources_flags_and_segments_at_one_revision_and_says_so() {
    let (_dir, store) = new_store();
    write(&store, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }).unwrap();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("search", 50.0));
    write(&store, WriteOp::Kill { key: "search".into() }).unwrap();
    create(&store, "dev", Some(ENV)).unwrap();

    let (source, copy) = (store.snapshot(ENV).unwrap().1, store.snapshot("dev").unwrap().1);
    let differences = flag_core::diff(&source, &copy, &[]);
    assert!(differences.is_empty(), "{differences:?}");
    assert_eq!(differences.unchanged_flags, 2);
    let search = copy.flags.iter().find(|flag| flag.key == "search").unwrap();
    assert!(!search.enabled, "a killed flag is copied killed");
    let summary = store.environment_summary("dev").unwrap();
    assert_eq!(summary.copied_from, Some(CopiedFrom { environment: ENV.into(), revision: 4 }));
    assert_eq!((summary.revision, summary.flags, summary.segments), (3, 2, 1));
    let history = store.environment_history("dev", None, 10).unwrap();
    assert!(
        history
            .iter()
            .all(|e| e.operation == Operation::Create && e.reason == "copy of production@r4: make it")
    );
    assert!(matches!(
        create(&store, "dev2", Some("nowhere")),
        Err(WriteError::Store(StoreError::UnknownEnvironment { .. }))
    ));
    assert_eq!(
        store.environments().unwrap(),
        ["dev", "production", "staging"],
        "a refused copy creates nothing"
    );
    assert_consistent(&store);
}

#[test]
fn a_deleted_environment_keeps_its_history_refuses_use_and_numbers_on_when_created_again() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    write(&store, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }).unwrap();
    let deleted =
        store.delete_environment(ENV, &meta("environment deleted: retired"), &|| true).unwrap().unwrap();
    assert_eq!((deleted.revision, deleted.changes.len()), (4, 2));

    assert!(matches!(store.snapshot(ENV), Err(StoreError::UnknownEnvironment { .. })));
    assert!(matches!(put_result(&store), Err(WriteError::Store(StoreError::UnknownEnvironment { .. }))));
    let history = store.environment_history(ENV, None, 10).unwrap();
    assert_eq!(history.len(), 4, "its history stays readable");
    assert_eq!(history[0].reason, "environment deleted: retired");
    assert_eq!(store.environments().unwrap(), ["staging"]);
    let listed = store.environment_summaries(true).unwrap();
    let gone = listed.iter().find(|e| e.name == ENV).expect("listed with the deleted ones");
    assert_eq!((gone.revision, gone.flags), (4, 0));
    assert_eq!(gone.deleted.as_ref().map(|d| d.reason.as_str()), Some("environment deleted: retired"));
    assert_eq!(store.environment_summaries(false).unwrap().len(), 1);
    assert_consistent(&store);

    create(&store, ENV, None).unwrap();
    assert_eq!(store.revision(ENV).unwrap(), 4, "a revision never names two states");
    let committed = put(&store, rollout("chat", 1.0));
    assert_eq!((committed.revision, committed.entry.version), (5, 3), "versions go on too");
    assert_eq!(store.environment_summary(ENV).unwrap().deleted, None);
    assert_consistent(&store);
}

fn put_result(store: &Store) -> Result<Committed, WriteError> {
    write(store, WriteOp::PutFlag { flag: rollout("chat", 1.0), expected_version: None })
}

#[test]
fn environments_and_their_deletions_survive_a_reopen_and_a_backup() {
    let (dir, store) = new_store();
    create(&store, "dev", None).unwrap();
    store.delete_environment("staging", &meta("gone"), &|| true).unwrap();
    let copy = dir.path().join("copy.redb");
    store.backup_to(&copy).unwrap();
    for path in [dir.path().join("data/flags.redb"), copy] {
        let before = store.environment_summaries(true).unwrap();
        let reopened = if path.ends_with("copy.redb") {
            Store::open(&path, StoreOptions::default()).unwrap()
        } else {
            store.clone()
        };
        assert_eq!(reopened.environment_summaries(true).unwrap(), before);
        assert_eq!(reopened.environments().unwrap(), ["dev", "production"]);
    }
}
