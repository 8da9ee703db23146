//! Opening a store of format 1: its versions move to format 2's tables (on redb see
//! `store::format`, on PostgreSQL migration 5), and every read of history answers as before.

use super::*;
use crate::store::format::{FLAG_HISTORY_1, SEGMENT_HISTORY_1};
use crate::store::records::{ChangeRecord, decode};
use crate::store::{AuditQuery, AuditStart};
use redb::ReadableTable as _;

/// Rewrites the test's store as format 1 wrote it: versions keyed by (environment, key,
/// version), with no `previous` and no heads; on PostgreSQL, the schema before migration 5.
fn as_format_1(dir: &TempDir) {
    match std::fs::read_to_string(dir.path().join("postgres-url")) {
        Ok(url) => schema_as_format_1(&url),
        Err(_) => file_as_format_1(&dir.path().join("data/flags.redb")),
    }
}

fn schema_as_format_1(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut downgrade = String::new();
    for kind in ["flag", "segment"] {
        downgrade += &format!(
            r#"CREATE TABLE flagd_{kind}_history (
                environment text COLLATE "C", key text COLLATE "C", version bigint, record json NOT NULL,
                PRIMARY KEY (environment, key, version));
            INSERT INTO flagd_{kind}_history
                SELECT v.environment, c.record->>'key', (c.record->>'version')::bigint,
                    (v.record::jsonb - 'previous')::json
                FROM flagd_{kind}_versions v JOIN flagd_changes c USING (environment, revision);
            DROP TABLE flagd_{kind}_versions;
            DROP TABLE flagd_{kind}_heads;"#
        );
    }
    downgrade += "DELETE FROM flagd_migrations WHERE version = 5;
        UPDATE flagd_meta SET value = 1 WHERE name = 'schema_version';";
    client.batch_execute(&downgrade).unwrap();
}

fn file_as_format_1(path: &std::path::Path) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    for (kind, versions, heads, old) in [
        (SubjectKind::Flag, FLAG_VERSIONS, FLAG_HEADS, FLAG_HISTORY_1),
        (SubjectKind::Segment, SEGMENT_VERSIONS, SEGMENT_HEADS, SEGMENT_HISTORY_1),
    ] {
        {
            let changes = txn.open_table(CHANGES.redb()).unwrap();
            let versions = txn.open_table(versions.redb()).unwrap();
            let mut old = txn.open_table(old.redb()).unwrap();
            for row in changes.iter().unwrap() {
                let (key, value) = row.unwrap();
                let (environment, revision) = key.value();
                let change: ChangeRecord = decode(value.value(), "changes", "").unwrap();
                if change.kind != kind {
                    continue;
                }
                let row = versions.get((environment, revision)).unwrap().unwrap();
                let mut stored: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(row.value()).unwrap();
                stored.remove("previous");
                let bytes = serde_json::to_vec(&stored).unwrap();
                old.insert((environment, change.key.as_str(), change.version), bytes.as_slice()).unwrap();
            }
        }
        txn.delete_table(versions.redb()).unwrap();
        txn.delete_table(heads.redb()).unwrap();
    }
    txn.open_table(META.redb()).unwrap().insert("schema_version", 1).unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_file_of_format_1_is_upgraded_on_open_and_its_history_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(&dir, StoreOptions::default());
    put(&store, rollout("chat", 5.0));
    write(&store, WriteOp::PutSegment { segment: segment("staff", &["u1"]) }).unwrap();
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    put(&store, rollout("search", 10.0));
    write(&store, WriteOp::DeleteFlag { key: "search".into(), expected_version: None }).unwrap();
    put(&store, rollout("search", 20.0));
    write(&store, WriteOp::Revive { key: "chat".into(), expected_version: None }).unwrap();
    let histories = |store: &Store| {
        let flags = ["chat", "search"].map(|key| store.flag_history(ENV, key, None, 100).unwrap());
        let log = store.environment_history(ENV, None, 100).unwrap();
        let everything = super::audit::everything(AuditStart::Newest(ENV.into()));
        let chat = AuditQuery { flags: vec!["chat".into()], ..everything.clone() };
        (flags, log, store.audit(&everything).unwrap(), store.audit(&chat).unwrap())
    };
    let before = histories(&store);
    assert_eq!(before.0[0].len(), 3, "chat: created, killed, revived");
    assert_eq!(before.0[1].len(), 3, "search: created, deleted, created again");
    drop(store);

    as_format_1(&dir);
    let store = open_in(&dir, StoreOptions::default());
    assert_eq!(histories(&store), before, "every version, its who/when/why and content, as before");
    assert_consistent(&store);

    // Writes continue the numbering, and a rollback reaches back through the chain.
    let rolled = write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: Some(1),
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap();
    assert_eq!((rolled.revision, rolled.entry.version), (8, 4));
    assert_eq!(rolled.entry.flag.map(|flag| content(&flag)), Some(content(&rollout("chat", 5.0))));
    assert_consistent(&store);
    drop(store);
    let reopened = open_in(&dir, StoreOptions::default());
    assert_eq!(reopened.flag_history(ENV, "chat", None, 100).unwrap().len(), 4);
}
