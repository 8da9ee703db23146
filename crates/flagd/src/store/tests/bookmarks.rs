//! Bookmarks: a named revision, written once, that diffs and restores can name.

use super::*;
use crate::store::BookmarkError;

#[test]
fn a_bookmark_names_the_revision_it_was_made_at_and_is_never_moved() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let made = store.bookmark(ENV, "pre-deploy-4711", &meta("before the deploy")).unwrap();
    assert_eq!(
        (made.revision, made.actor.as_str(), made.reason.as_str()),
        (1, "ana@example.com", "before the deploy")
    );
    put(&store, rollout("chat", 50.0));
    store.bookmark(ENV, "after", &meta("")).unwrap();
    store.bookmark("staging", "empty", &meta("")).unwrap();

    assert_eq!(store.bookmarked(ENV, "pre-deploy-4711").unwrap(), 1);
    let names: Vec<(String, u64)> =
        store.bookmarks(ENV).unwrap().into_iter().map(|b| (b.name, b.revision)).collect();
    assert_eq!(names, [("after".to_owned(), 2), ("pre-deploy-4711".to_owned(), 1)]);
    assert_eq!(store.bookmarked("staging", "empty").unwrap(), 0, "an environment never written is at 0");

    let untouched = dump(&store);
    let taken = store.bookmark(ENV, "pre-deploy-4711", &meta("again")).unwrap_err();
    assert!(matches!(taken, BookmarkError::Exists { revision: 1, .. }), "{taken:?}");
    let bad = store.bookmark(ENV, "pre deploy", &meta("")).unwrap_err();
    assert!(bad.to_string().contains("expected 1 to 128 of A-Z"), "{bad}");
    let missing = store.bookmarked(ENV, "nope").unwrap_err();
    assert!(missing.to_string().contains("no bookmark \"nope\""), "{missing}");
    assert_eq!(dump(&store), untouched);
}

#[test]
fn bookmarks_survive_a_reopen_and_are_in_a_backup() {
    let (dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    store.bookmark(ENV, "kept", &meta("")).unwrap();
    let copy = dir.path().join("copy.redb");
    store.backup_to(&copy).unwrap();
    drop(store);
    let reopened = open_in(&dir, StoreOptions::default());
    assert_eq!(reopened.bookmarked(ENV, "kept").unwrap(), 1);
    let restored = Store::open(&copy, StoreOptions::default()).unwrap();
    assert_eq!(restored.bookmarked(ENV, "kept").unwrap(), 1);
}
