//! Store tests, against real redb files in temporary directories — and, compiled a second
//! time as `tests_on_postgres`, against schemas of a throwaway PostgreSQL cluster
//! (`pg_test`): every test that opens its store through `new_store` or `open_in` runs on
//! both backends. Tests of the file itself (integrity, crash recovery) open files by path
//! and run on redb in both copies.
//!
//! `assert_consistent` is the model check most tests end with: the tables agree with each
//! other (every revision has its change row and history row, the live rows are the newest
//! versions) and the writer's cache agrees with the file.

mod apply;
mod audit;
mod basics;
mod bookmarks;
mod changes;
mod concurrency;
mod crash;
mod environments;
mod integrity;
mod model;
mod operations;
mod past;
mod promote;
mod restore;
mod rollouts;
mod size;
mod validation;
mod webhooks;

use std::collections::BTreeMap;

use super::backend::ReadableTable;
use flag_core::{Flag, Segment, SubjectKind};
use tempfile::TempDir;

use super::cache::Cache;
use super::records::{ChangeRecord, StoredVersion, decode};
use super::tables::{
    BOOKMARKS, CHANGES, ENVIRONMENTS, FLAG_HISTORY, FLAGS, META, ROLLOUTS, SEGMENT_HISTORY, SEGMENTS,
    WEBHOOK_CURSORS, WEBHOOKS,
};
use super::{Committed, Store, StoreOptions, WriteError, WriteMeta, WriteOp};

pub(super) const ENV: &str = "production";
/// The second environment of a test store (see `new_store_with`).
pub(super) const OTHER_ENV: &str = "staging";

/// A store in a fresh temporary directory (kept alive by the returned `TempDir`).
pub(super) fn new_store() -> (TempDir, Store) {
    new_store_with(StoreOptions::default())
}

pub(super) fn new_store_with(options: StoreOptions) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir, options);
    // A new file has production; tests of two environments use staging too.
    store.declare(&[OTHER_ENV.to_owned()], &meta("a second environment")).unwrap();
    (dir, store)
}

/// Whether this copy of the tests runs on PostgreSQL (see the module docs).
pub(super) fn on_postgres() -> bool {
    module_path!().ends_with("tests_on_postgres")
}

/// The test's store, new or as left: the file `data/flags.redb` in `dir`, or, in the
/// PostgreSQL copy, the schema whose URL `dir` keeps (made on the first call). Where
/// PostgreSQL is not installed, the copy says so once and runs on redb (CI requires it).
pub(super) fn open_in(dir: &TempDir, options: StoreOptions) -> Store {
    if let Some(url) = on_postgres().then(|| postgres_schema(dir)).flatten() {
        return Store::open_postgres(&url, 4, options).unwrap().0;
    }
    Store::open(&dir.path().join("data/flags.redb"), options).unwrap()
}

/// The URL of the test's PostgreSQL schema, kept in `dir`.
fn postgres_schema(dir: &TempDir) -> Option<String> {
    let file = dir.path().join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = pg_test::fresh_schema("store").unwrap()?;
    std::fs::write(&file, &url).unwrap();
    Some(url)
}

pub(super) fn meta(reason: &str) -> WriteMeta {
    WriteMeta { actor: "ana@example.com".into(), on_behalf_of: None, reason: reason.into() }
}

/// A dark-launch flag at `percent` %.
pub(super) fn rollout(key: &str, percent: f64) -> Flag {
    Flag::rollout(key, percent).unwrap()
}

pub(super) fn segment(key: &str, included: &[&str]) -> Segment {
    Segment {
        key: key.into(),
        description: String::new(),
        included: included.iter().map(|k| k.to_string()).collect(),
        excluded: vec![],
        rules: vec![],
    }
}

pub(super) fn write(store: &Store, op: WriteOp) -> Result<Committed, WriteError> {
    store.write(ENV, op, &meta("test"))
}

pub(super) fn put(store: &Store, flag: Flag) -> Committed {
    write(store, WriteOp::PutFlag { flag, expected_version: None }).unwrap()
}

/// `flag` with the fields the store owns cleared, to compare content.
pub(super) fn content(flag: &Flag) -> Flag {
    let mut flag = flag.clone();
    flag.version = 0;
    flag.metadata.created_at = None;
    flag.metadata.updated_at = None;
    flag
}

/// Every row of every table, as (table, key, value bytes): to show a refused write changed
/// nothing, byte for byte.
pub(super) fn dump(store: &Store) -> Vec<(&'static str, String, Vec<u8>)> {
    let db = store.inner.handle.current();
    let txn = db.begin_read().unwrap();
    let mut rows = Vec::new();
    macro_rules! rows_of {
        ($table:expr, $name:literal, $value:expr) => {
            for row in txn.open_table($table).unwrap().iter().unwrap() {
                let (key, value) = row.unwrap();
                rows.push(($name, format!("{:?}", key.value()), $value(value.value())));
            }
        };
    }
    let bytes = |v: &[u8]| v.to_vec();
    let number = |v: u64| v.to_le_bytes().to_vec();
    rows_of!(META, "meta", number);
    rows_of!(ENVIRONMENTS, "environments", number);
    rows_of!(FLAGS, "flags", bytes);
    rows_of!(SEGMENTS, "segments", bytes);
    rows_of!(FLAG_HISTORY, "flag_history", bytes);
    rows_of!(SEGMENT_HISTORY, "segment_history", bytes);
    rows_of!(CHANGES, "changes", bytes);
    rows_of!(BOOKMARKS, "bookmarks", bytes);
    rows_of!(ROLLOUTS, "rollouts", bytes);
    rows_of!(WEBHOOKS, "webhooks", bytes);
    rows_of!(WEBHOOK_CURSORS, "webhook_cursors", number);
    rows
}

/// The tables agree with each other and with the writer's cache.
pub(super) fn assert_consistent(store: &Store) {
    let db = &*store.inner.handle.current();
    let txn = db.begin_read().unwrap();
    let environments = txn.open_table(ENVIRONMENTS).unwrap();
    let changes = txn.open_table(CHANGES).unwrap();
    let flag_history = txn.open_table(FLAG_HISTORY).unwrap();
    let segment_history = txn.open_table(SEGMENT_HISTORY).unwrap();

    // Revisions 1..=n each have one change row, pointing at a history row of that revision.
    let mut newest: BTreeMap<(String, SubjectKind, String), u64> = BTreeMap::new();
    for row in environments.iter().unwrap() {
        let (environment, revision) = row.unwrap();
        let (environment, revision) = (environment.value(), revision.value());
        let rows: Vec<_> = changes.range((environment, 0)..=(environment, u64::MAX)).unwrap().collect();
        assert_eq!(rows.len() as u64, revision, "one change row per revision of {environment}");
        for (expected, row) in (1..).zip(rows) {
            let (key, value) = row.unwrap();
            assert_eq!(key.value().1, expected);
            let change: ChangeRecord = decode(value.value(), "changes", "").unwrap();
            let history = match change.kind {
                SubjectKind::Flag => &flag_history,
                SubjectKind::Segment => &segment_history,
            };
            let stored = history.get((environment, change.key.as_str(), change.version)).unwrap().unwrap();
            let stored: StoredVersion<serde_json::Value> = decode(stored.value(), "history", "").unwrap();
            assert_eq!(stored.revision, expected, "history row of revision {expected}");
            newest.insert((environment.to_owned(), change.kind, change.key), change.version);
        }
    }
    // Versions are 1..=n with no gap, and the live row is the newest version's content.
    let live_flags = txn.open_table(FLAGS).unwrap();
    let live_segments = txn.open_table(SEGMENTS).unwrap();
    for ((environment, kind, key), latest) in &newest {
        let (history, live) = match kind {
            SubjectKind::Flag => (&flag_history, &live_flags),
            SubjectKind::Segment => (&segment_history, &live_segments),
        };
        let versions: Vec<u64> = history
            .range((environment.as_str(), key.as_str(), 0)..=(environment.as_str(), key.as_str(), u64::MAX))
            .unwrap()
            .map(|row| row.unwrap().0.value().2)
            .collect();
        assert_eq!(versions, (1..=*latest).collect::<Vec<_>>(), "versions of {key}");
        let stored = history.get((environment.as_str(), key.as_str(), *latest)).unwrap().unwrap();
        let stored: StoredVersion<serde_json::Value> = decode(stored.value(), "history", "").unwrap();
        let live = live.get((environment.as_str(), key.as_str())).unwrap();
        let live: Option<serde_json::Value> = live.map(|row| serde_json::from_slice(row.value()).unwrap());
        assert_eq!(live, stored.content, "live row of {key} is its newest version");
    }
    // And no live row lacks a history.
    for (kind, live) in [(SubjectKind::Flag, &live_flags), (SubjectKind::Segment, &live_segments)] {
        for row in live.iter().unwrap() {
            let row = row.unwrap();
            let (environment, key) = row.0.value();
            assert!(
                newest.contains_key(&(environment.to_owned(), kind, key.to_owned())),
                "orphan live row {key}"
            );
        }
    }

    let from_file = Cache::load(db).unwrap();
    if let Some(cached) = store.inner.writer.cached().as_ref() {
        assert_eq!(*cached, from_file, "the writer's cache is the file's state");
    }
}
