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
mod format;
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

use super::backend::ReadableTable;
use flag_core::{Flag, Segment, SubjectKind};
use tempfile::TempDir;

use super::cache::Cache;
use super::check;
use super::tables::{
    BOOKMARKS, CHANGES, ENVIRONMENTS, FLAG_HEADS, FLAG_VERSIONS, FLAGS, META, ROLLOUTS, SEGMENT_HEADS,
    SEGMENT_VERSIONS, SEGMENTS, WEBHOOK_CURSORS, WEBHOOKS,
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
        return Store::open_postgres(&url, 4, None, options).unwrap().0;
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
    rows_of!(FLAG_VERSIONS, "flag_versions", bytes);
    rows_of!(FLAG_HEADS, "flag_heads", bytes);
    rows_of!(SEGMENT_VERSIONS, "segment_versions", bytes);
    rows_of!(SEGMENT_HEADS, "segment_heads", bytes);
    rows_of!(CHANGES, "changes", bytes);
    rows_of!(BOOKMARKS, "bookmarks", bytes);
    rows_of!(ROLLOUTS, "rollouts", bytes);
    rows_of!(WEBHOOKS, "webhooks", bytes);
    rows_of!(WEBHOOK_CURSORS, "webhook_cursors", number);
    rows
}

/// The tables agree with each other (the check every open runs: one change row and one
/// version row per revision, versions 1..=n chained with no gap, heads on the newest, live
/// rows the newest versions) and with the writer's cache.
pub(super) fn assert_consistent(store: &Store) {
    let db = &*store.inner.handle.current();
    if let Err(error) = check::invariants(db, &store.inner.path) {
        panic!("the store is inconsistent: {error}");
    }
    let from_file = Cache::load(db).unwrap();
    if let Some(cached) = store.inner.writer.cached().as_ref() {
        assert_eq!(*cached, from_file, "the writer's cache is the file's state");
    }
}
