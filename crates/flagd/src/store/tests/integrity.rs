//! The check on open (`check`), the reopening handle (`handle`) and the backup copy.

use std::io::{Seek, SeekFrom, Write};

use std::sync::Arc;

use super::*;
use crate::store::StoreError;
use crate::store::tables::{BOOKMARKS, ENVIRONMENTS, FLAG_HEADS, FLAG_VERSIONS};

/// A store file with `n` flags, closed; returns its directory and path.
fn store_file(n: usize) -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.redb");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    for i in 0..n {
        put(&store, rollout(&format!("flag-{i:04}"), 5.0));
    }
    drop(store);
    (dir, path)
}

fn damaged(error: StoreError, path: &std::path::Path) -> String {
    let text = error.to_string();
    assert!(matches!(error, StoreError::Damaged { .. }), "{error:?}");
    assert!(text.contains(&path.display().to_string()), "the path is named: {text}");
    text
}

#[test]
fn a_missing_file_is_created_but_an_empty_or_foreign_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/flags.redb");
    let (_, report) = Store::open_checked(&path, StoreOptions::default()).unwrap();
    assert!(report.created);

    let empty = dir.path().join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let error = Store::open(&empty, StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Empty { .. }), "{error:?}");
    assert!(error.to_string().contains("empty (0 bytes)"), "{error}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "the empty file is left as it was");

    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, b"hello, this is not a database\n").unwrap();
    let error = Store::open(&foreign, StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert!(error.to_string().contains("68 65 6c 6c 6f"), "{error}");
}

#[test]
fn random_bytes_inside_the_file_are_found_at_open() {
    let mut refused = 0;
    for fraction in [0.1, 0.2, 0.3, 0.5] {
        let (_dir, path) = store_file(300);
        let len = std::fs::metadata(&path).unwrap().len();
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start((len as f64 * fraction) as u64)).unwrap();
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        file.write_all(&garbage).unwrap();
        drop(file);
        match Store::open(&path, StoreOptions::default()) {
            Err(error) => {
                damaged(error, &path);
                refused += 1;
            }
            // The bytes landed on a page no committed tree uses: then every row must still read.
            Ok(store) => {
                assert_eq!(store.list_flags(ENV, "", None).unwrap().len(), 300, "at {fraction}");
                assert_consistent(&store);
            }
        }
    }
    assert!(refused >= 3, "garbage over the tables' pages is found: {refused} of 4 refused");
}

#[test]
fn a_missing_history_row_or_a_wrong_revision_is_refused_naming_it() {
    let (_dir, path) = store_file(3);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(FLAG_VERSIONS.redb()).unwrap().remove((ENV, 2)).unwrap();
        txn.commit().unwrap();
    }
    let text = damaged(Store::open(&path, StoreOptions::default()).unwrap_err(), &path);
    assert!(
        text.contains("revision 2 wrote flag \"flag-0001\" version 1, which has no version row"),
        "{text}"
    );

    let (_dir, path) = store_file(3);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let wrong = br#"{"version":1,"revision":3}"#.as_slice();
        txn.open_table(FLAG_HEADS.redb()).unwrap().insert((ENV, "flag-0001"), wrong).unwrap();
        txn.commit().unwrap();
    }
    let text = damaged(Store::open(&path, StoreOptions::default()).unwrap_err(), &path);
    assert!(
        text.contains("the head of flag \"flag-0001\" is Some(Head { version: 1, revision: 3 })"),
        "{text}"
    );

    let (_dir, path) = store_file(3);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ENVIRONMENTS.redb()).unwrap().insert(ENV, 7).unwrap();
        txn.commit().unwrap();
    }
    let text = damaged(Store::open(&path, StoreOptions::default()).unwrap_err(), &path);
    assert!(text.contains("is at revision 7, but its change log ends at 3"), "{text}");
}

#[test]
fn a_live_row_that_is_not_its_newest_version_is_refused() {
    let (_dir, path) = store_file(2);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let other = serde_json::to_vec(&rollout("flag-0000", 50.0)).unwrap();
        txn.open_table(FLAGS.redb()).unwrap().insert((ENV, "flag-0000"), other.as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let text = damaged(Store::open(&path, StoreOptions::default()).unwrap_err(), &path);
    assert!(text.contains("the live flag \"flag-0000\" is not its newest version (1)"), "{text}");
}

#[test]
fn a_panic_inside_a_store_call_is_an_error_and_a_redb_file_is_reopened() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let before = Arc::as_ptr(&store.inner.handle.current()) as usize;
    let result: Result<(), StoreError> = store.inner.handle.run(|_| panic!("index out of bounds in a page"));
    let error = result.unwrap_err();
    assert!(
        matches!(&error, StoreError::Panicked { message } if message.contains("index out of bounds")),
        "{error:?}"
    );
    let after = Arc::as_ptr(&store.inner.handle.current()) as usize;
    // PostgreSQL is not reopened: its pool replaces a broken connection by itself.
    assert_eq!(before != after, !store.is_postgres(), "the redb file was opened again");
    // And the store works as before, writes included.
    assert_eq!(store.revision(ENV).unwrap(), 1);
    put(&store, rollout("chat", 10.0));
    assert_eq!(store.revision(ENV).unwrap(), 2);
    assert_eq!(store.health(), crate::store::Health::Ready);
    assert_consistent(&store);
}

#[test]
fn a_backup_is_one_committed_state_that_opens_and_passes_the_check() {
    let (dir, store) = new_store();
    for i in 0..20 {
        put(&store, rollout(&format!("flag-{i}"), 5.0));
    }
    write(&store, WriteOp::Kill { key: "flag-3".into() }).unwrap();
    let to = dir.path().join("backup.redb");
    let report = store.backup_to(&to).unwrap();
    assert_eq!((report.environments, report.changes, report.flags), (2, 21, 20), "production and staging");
    assert!(store.backup_to(&to).is_err(), "an existing file is not overwritten");
    let copy = Store::open(&to, StoreOptions::default()).unwrap();
    assert_eq!(copy.id(), store.id(), "a restored store is the same store");
    assert_eq!(copy.snapshot(ENV).unwrap(), store.snapshot(ENV).unwrap());
    assert_eq!(
        copy.environment_history(ENV, None, 100).unwrap(),
        store.environment_history(ENV, None, 100).unwrap()
    );
    let _ = copy.inner.handle.current().begin_read().unwrap();
}

#[test]
fn a_bookmark_past_its_environments_revision_is_refused_and_an_older_file_without_bookmarks_opens() {
    let (_dir, path) = store_file(2);
    {
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        store.bookmark(ENV, "good", &meta("")).unwrap();
    }
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let row = br#"{"revision":9,"actor":"mallory","reason":"","created_ms":0}"#;
        txn.open_table(BOOKMARKS.redb()).unwrap().insert((ENV, "ahead"), row.as_slice()).unwrap();
        txn.commit().unwrap();
    }
    let text = damaged(Store::open(&path, StoreOptions::default()).unwrap_err(), &path);
    assert!(text.contains("bookmark \"ahead\" names revision 9, past its revision 2"), "{text}");

    // A file from before bookmarks: the table is missing, the check passes, and opening adds it.
    let (_dir, path) = store_file(1);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(BOOKMARKS.redb()).unwrap());
        txn.commit().unwrap();
    }
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    store.bookmark(ENV, "later", &meta("")).unwrap();
    assert_eq!(store.bookmarked(ENV, "later").unwrap(), 1);
}
