//! Put, get, list, delete, history and reopening.

use flag_core::{ChangeBatch, FlagKind, Operation};

use super::*;
use crate::store::{StoreError, StoreOptions};

fn versions(entries: &[flag_core::HistoryEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.version).collect()
}

#[test]
fn a_put_flag_reads_back_with_the_store_owned_fields_set() {
    let (_dir, store) = new_store();
    let mut chat = rollout("chat", 5.0);
    chat.version = 99;
    chat.metadata.created_at = Some("2001-01-01T00:00:00.000Z".into());
    chat.metadata.owner = "growth".into();
    let committed = store
        .write(ENV, WriteOp::PutFlag { flag: chat.clone(), expected_version: None }, &meta("launch"))
        .unwrap();
    assert_eq!(
        (committed.revision, committed.entry.version, committed.entry.operation),
        (1, 1, Operation::Create)
    );

    let record = store.flag(ENV, "chat").unwrap().unwrap();
    assert_eq!(record.flag.version, 1, "the store numbers versions, whatever was sent");
    let created = record.flag.metadata.created_at.clone().unwrap();
    assert_ne!(created, "2001-01-01T00:00:00.000Z", "the store decides when a flag was created");
    assert!(created.ends_with('Z') && created.len() == "2024-01-01T00:00:00.000Z".len(), "{created}");
    assert_eq!(record.flag.metadata.updated_at.as_deref(), Some(created.as_str()));
    assert_eq!(content(&record.flag), content(&chat));
    let change = &record.last_change;
    assert_eq!((change.actor.as_str(), change.reason.as_str()), ("ana@example.com", "launch"));
    assert_eq!((change.environment.as_str(), change.key.as_str(), change.revision), (ENV, "chat", 1));
    assert_eq!(change.flag.as_ref(), Some(&record.flag));
    assert_eq!(committed.entry, record.last_change);
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now_ms - change.timestamp_ms).abs() < 60_000, "wall-clock milliseconds");

    assert_eq!(store.revision(ENV).unwrap(), 1);
    assert!(store.flag(ENV, "other").unwrap().is_none());
    assert!(store.flag("staging", "chat").unwrap().is_none(), "environments are separate");
    assert_consistent(&store);
}

#[test]
fn an_update_keeps_created_at_and_bumps_version_and_revision() {
    let (_dir, store) = new_store();
    let first = put(&store, rollout("chat", 5.0));
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = put(&store, rollout("chat", 10.0));
    assert_eq!((second.revision, second.entry.version, second.entry.operation), (2, 2, Operation::Update));
    let (first, second) = (first.entry.flag.unwrap(), second.entry.flag.unwrap());
    assert_eq!(second.metadata.created_at, first.metadata.created_at);
    assert!(second.metadata.updated_at > first.metadata.updated_at);
    assert_eq!(store.flag(ENV, "chat").unwrap().unwrap().flag, second);
    assert_consistent(&store);
}

#[test]
fn list_filters_by_prefix_and_tag_and_sorts_by_key() {
    let (_dir, store) = new_store();
    for (key, tags) in
        [("pay.b", &["beta"][..]), ("chat", &["beta"]), ("pay.a", &[]), ("pay", &["beta"]), ("payz", &[])]
    {
        let mut flag = rollout(key, 1.0);
        flag.metadata.tags = tags.iter().map(|t| t.to_string()).collect();
        flag.metadata.kind = FlagKind::Experiment;
        put(&store, flag);
    }
    store
        .write(
            "staging",
            WriteOp::PutFlag { flag: rollout("pay.c", 1.0), expected_version: None },
            &meta("x"),
        )
        .unwrap();
    let keys = |prefix: &str, tag: Option<&str>| -> Vec<String> {
        store.list_flags(ENV, prefix, tag).unwrap().into_iter().map(|f| f.key).collect()
    };
    assert_eq!(keys("", None), ["chat", "pay", "pay.a", "pay.b", "payz"]);
    assert_eq!(keys("pay.", None), ["pay.a", "pay.b"]);
    assert_eq!(keys("pay", Some("beta")), ["pay", "pay.b"]);
    assert_eq!(keys("", Some("nope")), Vec::<String>::new());
    assert_eq!(keys("zzz", None), Vec::<String>::new());
    assert_eq!(store.list_flags("staging", "", None).unwrap().len(), 1);
    assert!(matches!(store.list_flags("nowhere", "", None), Err(StoreError::UnknownEnvironment { .. })));
}

#[test]
fn delete_keeps_history_and_a_recreated_flag_continues_its_versions() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("chat", 10.0));
    let deleted =
        write(&store, WriteOp::DeleteFlag { key: "chat".into(), expected_version: Some(2) }).unwrap();
    assert_eq!(
        (deleted.entry.version, deleted.entry.operation, deleted.entry.flag),
        (3, Operation::Delete, None)
    );
    assert!(store.flag(ENV, "chat").unwrap().is_none());
    assert!(store.list_flags(ENV, "", None).unwrap().is_empty());

    let history = store.flag_history(ENV, "chat", None, 10).unwrap();
    assert_eq!(versions(&history), [3, 2, 1], "a deleted flag's history is still there");
    let error =
        write(&store, WriteOp::DeleteFlag { key: "chat".into(), expected_version: None }).unwrap_err();
    assert!(
        matches!(error, WriteError::NotFound { kind: SubjectKind::Flag, ref key } if key == "chat"),
        "{error:?}"
    );

    let again = put(&store, rollout("chat", 1.0));
    assert_eq!((again.entry.version, again.entry.operation), (4, Operation::Create));
    assert_eq!(store.flag(ENV, "chat").unwrap().unwrap().flag.version, 4);
    assert_consistent(&store);
}

#[test]
fn flag_history_pages_newest_first() {
    let (_dir, store) = new_store();
    for percent in 1..=7 {
        put(&store, rollout("chat", f64::from(percent)));
        put(&store, rollout("other", 1.0));
    }
    let page = store.flag_history(ENV, "chat", None, 3).unwrap();
    assert_eq!(versions(&page), [7, 6, 5]);
    assert!(page.iter().all(|e| e.key == "chat" && e.kind == SubjectKind::Flag));
    let page = store.flag_history(ENV, "chat", Some(5), 3).unwrap();
    assert_eq!(versions(&page), [4, 3, 2]);
    let page = store.flag_history(ENV, "chat", Some(2), 3).unwrap();
    assert_eq!(versions(&page), [1]);
    assert_eq!(page[0].operation, Operation::Create);
    assert_eq!(store.flag_history(ENV, "chat", Some(1), 3).unwrap(), vec![]);
    assert_eq!(store.flag_history(ENV, "chat", None, 0).unwrap(), vec![]);
    assert_eq!(store.flag_history(ENV, "nope", None, 3).unwrap(), vec![]);
    // Each version holds that version's content.
    let split = |v: &flag_core::HistoryEntry| v.flag.as_ref().unwrap().default.clone();
    assert_eq!(split(&store.flag_history(ENV, "chat", Some(4), 1).unwrap()[0]), rollout("chat", 3.0).default);
}

#[test]
fn environment_history_pages_across_flags_and_segments_newest_first() {
    let (_dir, store) = new_store();
    put(&store, rollout("a", 1.0));
    write(&store, WriteOp::PutSegment { segment: segment("staff", &["u1"]) }).unwrap();
    put(&store, rollout("b", 1.0));
    write(&store, WriteOp::Kill { key: "a".into() }).unwrap();
    write(&store, WriteOp::DeleteSegment { key: "staff".into() }).unwrap();
    store
        .write("staging", WriteOp::PutFlag { flag: rollout("z", 1.0), expected_version: None }, &meta("x"))
        .unwrap();

    let summary = |entries: Vec<flag_core::HistoryEntry>| -> Vec<(u64, SubjectKind, String, Operation)> {
        entries.into_iter().map(|e| (e.revision, e.kind, e.key, e.operation)).collect()
    };
    let all = store.environment_history(ENV, None, 10).unwrap();
    assert_eq!(
        summary(all.clone()),
        [
            (5, SubjectKind::Segment, "staff".into(), Operation::Delete),
            (4, SubjectKind::Flag, "a".into(), Operation::Kill),
            (3, SubjectKind::Flag, "b".into(), Operation::Create),
            (2, SubjectKind::Segment, "staff".into(), Operation::Create),
            (1, SubjectKind::Flag, "a".into(), Operation::Create),
        ]
    );
    assert_eq!(all[3].segment, Some(segment("staff", &["u1"])), "entries carry their content");
    assert_eq!(all[1].flag.as_ref().map(|f| f.enabled), Some(false));
    assert_eq!(store.environment_history(ENV, Some(4), 2).unwrap(), all[2..4], "revisions 3 and 2");
    assert_eq!(store.environment_history(ENV, Some(2), 2).unwrap(), all[4..], "revision 1");
    assert_eq!(store.environment_history(ENV, Some(1), 10).unwrap(), vec![]);
    assert_eq!(store.environment_history("staging", None, 10).unwrap().len(), 1);
    assert_eq!(store.environments().unwrap(), ["production", "staging"]);
}

#[test]
fn unknown_environments_are_refused_with_the_nearest_name_and_nothing_is_created() {
    let (_dir, store) = new_store();
    let unknown = |result: Result<(), StoreError>| match result {
        Err(error @ StoreError::UnknownEnvironment { .. }) => error.to_string(),
        other => panic!("expected an unknown environment, got {other:?}"),
    };
    assert_eq!(
        unknown(store.revision("prodution").map(drop)),
        r#"no environment "prodution"; did you mean "production"?"#
    );
    assert_eq!(
        unknown(store.snapshot("eu-west").map(drop)),
        r#"no environment "eu-west"; the environments are "production", "staging""#
    );
    unknown(store.segments("eu-west").map(drop));
    unknown(store.flag_history("eu-west", "chat", None, 10).map(drop));
    unknown(store.environment_history("eu-west", None, 10).map(drop));
    unknown(store.changes_since("eu-west", 1).map(drop));
    let op = WriteOp::PutFlag { flag: rollout("chat", 1.0), expected_version: None };
    match store.write("prodution", op, &meta("typo")) {
        Err(WriteError::Store(StoreError::UnknownEnvironment { environment, .. })) => {
            assert_eq!(environment, "prodution");
        }
        other => panic!("expected an unknown environment, got {other:?}"),
    }
    let batch = crate::store::Batch { flags: vec![rollout("chat", 1.0)], ..Default::default() };
    assert!(matches!(
        store.apply("prodution", batch, &meta("typo")),
        Err(WriteError::Store(StoreError::UnknownEnvironment { .. }))
    ));
    for bad in ["", "prod uction", "a/b", &"x".repeat(65)] {
        let op = WriteOp::PutFlag { flag: rollout("chat", 1.0), expected_version: None };
        let error = store.write(bad, op, &meta("x")).unwrap_err();
        assert!(
            matches!(&error, WriteError::InvalidEnvironment { environment } if environment == bad),
            "{error:?}"
        );
    }
    assert_eq!(store.environments().unwrap(), ["production", "staging"], "nothing was created");
    assert_eq!(store.revision(ENV).unwrap(), 0, "nothing was written");
    assert_consistent(&store);
}

#[test]
fn snapshot_is_every_live_flag_and_segment_with_the_revision() {
    let (_dir, store) = new_store();
    put(&store, rollout("b", 1.0));
    put(&store, rollout("a", 1.0));
    write(&store, WriteOp::PutSegment { segment: segment("staff", &["u1"]) }).unwrap();
    write(&store, WriteOp::DeleteFlag { key: "b".into(), expected_version: None }).unwrap();
    let (revision, set) = store.snapshot(ENV).unwrap();
    assert_eq!(revision, 4);
    assert_eq!(set.flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(set.segments, vec![segment("staff", &["u1"])]);
    assert_eq!(store.segments(ENV).unwrap(), set.segments);
    set.compile().expect("a stored set is always valid");
}

#[test]
fn everything_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.redb");
    let options = StoreOptions { resume_window: 50, ..StoreOptions::default() };
    let before = {
        let store = Store::open(&path, options).unwrap();
        store.declare(&["staging".to_owned()], &meta("a second environment")).unwrap();
        put(&store, rollout("chat", 5.0));
        write(&store, WriteOp::PutSegment { segment: segment("staff", &["u1"]) }).unwrap();
        write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
        put(&store, rollout("gone", 1.0));
        write(&store, WriteOp::DeleteFlag { key: "gone".into(), expected_version: None }).unwrap();
        store
            .write(
                "staging",
                WriteOp::PutFlag { flag: rollout("x", 1.0), expected_version: None },
                &meta("x"),
            )
            .unwrap();
        let clone = store.clone();
        drop(store);
        let before =
            (dump(&clone), clone.snapshot(ENV).unwrap(), clone.environment_history(ENV, None, 100).unwrap());
        drop(clone); // the last handle closes the file
        before
    };
    let store = Store::open(&path, options).unwrap();
    assert_eq!(dump(&store), before.0, "every row, byte for byte");
    assert_eq!(store.snapshot(ENV).unwrap(), before.1);
    assert_eq!(store.environment_history(ENV, None, 100).unwrap(), before.2);
    assert_eq!(versions(&store.flag_history(ENV, "gone", None, 10).unwrap()), [2, 1]);
    assert_eq!(store.environments().unwrap(), ["production", "staging"]);
    assert!(matches!(
        store.changes_since(ENV, 2).unwrap(),
        crate::store::ChangesSince::Delta(ChangeBatch { revision: 5, .. })
    ));
    // The reopened writer continues where the file left off.
    let next = write(&store, WriteOp::Revive { key: "chat".into(), expected_version: Some(2) }).unwrap();
    assert_eq!((next.revision, next.entry.version), (6, 3));
    assert_consistent(&store);
}

#[test]
fn a_file_from_another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META.redb()).unwrap().insert("schema_version", 3).unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(error, crate::store::StoreError::Schema { found: 3, supported: 2 }), "{error:?}");
}
