//! The webhook outbox: where a webhook starts, cursors that only move forward, the changes
//! after a cursor with what they replaced, and the check and backup of the tables.

use super::*;

fn cursors(store: &Store, id: &str, filter: Option<&[&str]>) -> Vec<(String, u64)> {
    let filter: Option<Vec<String>> =
        filter.map(|names| names.iter().map(|name| (*name).to_owned()).collect());
    store.register_webhook(id, filter.as_deref()).unwrap().into_iter().collect()
}

fn put_in(store: &Store, environment: &str, percent: f64) -> u64 {
    let flag = rollout("chat", percent);
    store
        .write(environment, WriteOp::PutFlag { flag, expected_version: None }, &meta("ramp"))
        .unwrap()
        .revision
}

#[test]
fn a_new_webhook_starts_from_now_and_a_later_environment_from_its_first_change() {
    let (_dir, store) = new_store();
    put_in(&store, ENV, 1.0);
    put_in(&store, ENV, 2.0);
    put_in(&store, "staging", 1.0);
    assert_eq!(cursors(&store, "ops", None), [(ENV.to_owned(), 2), ("staging".to_owned(), 1)]);
    // Registering again (a restart) keeps the cursors where deliveries left them.
    store.advance_webhook_cursor("ops", ENV, 1).unwrap();
    assert_eq!(cursors(&store, "ops", None)[0], (ENV.to_owned(), 2), "a cursor never moves back");

    // "dev" appears after the registration; flagd stops before the deliverer writes its cursor.
    store.create_environment("dev", None, &meta("new"), &|| true).unwrap();
    put_in(&store, "dev", 1.0);
    put_in(&store, "dev", 2.0);
    let after_restart = cursors(&store, "ops", None);
    assert!(after_restart.contains(&("dev".to_owned(), 0)), "every change of dev is owed: {after_restart:?}");
}

#[test]
fn a_filter_that_grows_starts_the_new_environment_from_now_and_one_that_shrinks_drops_its_cursor() {
    let (_dir, store) = new_store();
    put_in(&store, ENV, 1.0);
    put_in(&store, "staging", 1.0);
    assert_eq!(cursors(&store, "ops", Some(&["staging"])), [("staging".to_owned(), 1)]);
    put_in(&store, ENV, 2.0);
    put_in(&store, "staging", 2.0);
    // Production was there all along but not covered: covering it now starts from now.
    assert_eq!(cursors(&store, "ops", None), [(ENV.to_owned(), 2), ("staging".to_owned(), 1)]);
    // Created while the webhook did not cover it, then covered: from now too.
    assert_eq!(cursors(&store, "ops", Some(&[ENV])), [(ENV.to_owned(), 2)]);
    store.create_environment("dev", None, &meta("new"), &|| true).unwrap();
    put_in(&store, "dev", 1.0);
    put_in(&store, "staging", 3.0);
    assert_eq!(
        cursors(&store, "ops", None),
        [("dev".to_owned(), 1), (ENV.to_owned(), 2), ("staging".to_owned(), 3)],
        "dropped and uncovered cursors start afresh"
    );
    assert_consistent(&store);
}

#[test]
fn the_outbox_lists_the_changes_after_a_cursor_with_the_versions_they_replaced() {
    let (_dir, store) = new_store();
    put_in(&store, ENV, 1.0);
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    write(&store, WriteOp::DeleteFlag { key: "chat".into(), expected_version: None }).unwrap();
    put_in(&store, ENV, 3.0);

    let outbox = store.webhook_outbox(ENV, 0, 10).unwrap();
    assert_eq!(outbox.revision, 4);
    let seen: Vec<_> = outbox
        .entries
        .iter()
        .map(|change| {
            let before =
                change.before.as_ref().map(|entry| (entry.version, entry.flag.as_ref().map(|f| f.enabled)));
            (
                change.entry.revision,
                change.entry.version,
                change.entry.flag.as_ref().map(|f| f.enabled),
                before,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, 1, Some(true), None),
            (2, 2, Some(false), Some((1, Some(true)))),
            (3, 3, None, Some((2, Some(false)))),
            (4, 4, Some(true), Some((3, None))),
        ]
    );
    let page = store.webhook_outbox(ENV, 1, 2).unwrap();
    assert_eq!(page.entries.iter().map(|c| c.entry.revision).collect::<Vec<_>>(), [2, 3]);
    assert!(store.webhook_outbox(ENV, 4, 10).unwrap().entries.is_empty());
    assert!(store.webhook_outbox("nowhere", 0, 10).unwrap().entries.is_empty());
}

#[test]
fn cursor_moves_survive_a_clean_reopen_and_a_backup() {
    let (dir, store) = new_store();
    for percent in [1.0, 2.0, 3.0] {
        put_in(&store, ENV, percent);
    }
    cursors(&store, "ops", None);
    store.advance_webhook_cursor("ops", ENV, 3).unwrap();
    store.flush_webhook_cursors().unwrap();
    let copy = dir.path().join("copy.redb");
    store.backup_to(&copy).unwrap();
    drop(store);
    let reopened = open_in(&dir, StoreOptions::default());
    // Staging exists, unwritten: its cursor is at its revision, 0.
    let expected = [(ENV.to_owned(), 3), (OTHER_ENV.to_owned(), 0)];
    assert_eq!(cursors(&reopened, "ops", None), expected);
    let restored = Store::open(&copy, StoreOptions::default()).unwrap();
    assert_eq!(cursors(&restored, "ops", None), expected);
}

#[test]
fn a_cursor_past_its_environments_revision_or_of_no_webhook_is_refused_at_open() {
    for (id, revision, expected) in [
        ("ops", 9, "webhook \"ops\" has delivered up to revision 9, past its revision 2"),
        ("ghost", 1, "webhook cursor (\"ghost\", \"production\") belongs to no registered webhook"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.redb");
        {
            let store = Store::open(&path, StoreOptions::default()).unwrap();
            put_in(&store, ENV, 1.0);
            put_in(&store, ENV, 2.0);
            cursors(&store, "ops", None);
        }
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(WEBHOOK_CURSORS.redb()).unwrap().insert((id, ENV), revision).unwrap();
            txn.commit().unwrap();
        }
        let error = Store::open(&path, StoreOptions::default()).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn a_deleted_environments_last_changes_stay_in_the_outbox() {
    let (_dir, store) = new_store();
    put_in(&store, "staging", 1.0);
    assert_eq!(cursors(&store, "ops", Some(&["staging"])), [("staging".to_owned(), 1)]);
    store.delete_environment("staging", &meta("environment deleted"), &|| true).unwrap();
    assert_eq!(store.environments_with_history().unwrap(), [ENV, "staging"]);
    let outbox = store.webhook_outbox("staging", 1, 10).unwrap();
    assert_eq!(outbox.revision, 2);
    let deletions: Vec<(u64, flag_core::Operation)> =
        outbox.entries.iter().map(|change| (change.entry.revision, change.entry.operation)).collect();
    assert_eq!(deletions, [(2, flag_core::Operation::Delete)], "the deletion of chat is owed");
}
