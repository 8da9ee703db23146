//! Promote: chosen parts of chosen flags from one environment to another, in one apply on
//! the target, never touching the target's kill state.

use flag_core::{Operation, Prerequisite};

use super::validation::in_segment;
use super::*;
use crate::store::promote::Parts;
use crate::store::{Promote, Promoted};

const STAGING: &str = "staging";

fn promote(store: &Store, promote: Promote) -> Result<Promoted, WriteError> {
    Ok(store.promote_if(ENV, &promote, &meta("release 42"), &|| true)?.unwrap())
}

fn from_staging(keys: &[&str]) -> Promote {
    Promote {
        from: STAGING.into(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..Promote::default()
    }
}

fn put_in(store: &Store, environment: &str, flag: Flag) {
    store.write(environment, WriteOp::PutFlag { flag, expected_version: None }, &meta("setup")).unwrap();
}

fn live(store: &Store, environment: &str, key: &str) -> Flag {
    store.flag(environment, key).unwrap().unwrap().flag
}

#[test]
fn promoted_flags_bring_their_segments_and_keep_the_targets_kill_state() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    put(&store, rollout("search", 50.0));
    store
        .write(STAGING, WriteOp::PutSegment { segment: segment("staff", &["ana"]) }, &meta("setup"))
        .unwrap();
    let mut chat = rollout("chat", 25.0);
    chat.rules.push(in_segment("staff"));
    chat.description = "the new chat".into();
    put_in(&store, STAGING, chat.clone());
    put_in(&store, STAGING, rollout("search", 1.0));
    put_in(&store, STAGING, rollout("beta", 10.0));
    let staging_revision = store.revision(STAGING).unwrap();

    let promoted = promote(&store, from_staging(&["chat", "beta"])).unwrap();

    assert_eq!(promoted.from_revision, staging_revision);
    assert_eq!(promoted.segments, ["staff"]);
    assert_eq!(promoted.kill_state_kept, ["chat"]);
    let operations: Vec<(String, Operation)> =
        promoted.applied.changes.iter().map(|c| (c.key.clone(), c.operation)).collect();
    assert_eq!(
        operations,
        [
            ("staff".into(), Operation::Create),
            ("beta".into(), Operation::Create),
            ("chat".into(), Operation::Update)
        ]
    );
    let promoted_chat = live(&store, ENV, "chat");
    assert!(!promoted_chat.enabled, "a promote never revives");
    let mut expected = content(&chat);
    expected.enabled = false;
    assert_eq!(content(&promoted_chat), expected);
    assert_eq!(content(&live(&store, ENV, "search")), rollout("search", 50.0), "not asked for");
    let entry = store.flag_history(ENV, "chat", None, 1).unwrap().remove(0);
    assert_eq!(entry.reason, format!("promote from staging@r{staging_revision}: release 42"));
    assert_consistent(&store);
}

#[test]
fn only_the_chosen_parts_are_taken() {
    let (_dir, store) = new_store();
    let mut production = rollout("chat", 5.0);
    production.description = "production's words".into();
    put(&store, production);
    let mut staging = rollout("chat", 40.0);
    staging.description = "staging's words".into();
    put_in(&store, STAGING, staging);

    let parts = Parts { metadata: false, ..Parts::default() };
    promote(&store, Promote { parts, ..from_staging(&["chat"]) }).unwrap();
    let chat = live(&store, ENV, "chat");
    assert_eq!(chat.description, "production's words");
    assert_eq!(chat.default, rollout("chat", 40.0).default);
}

#[test]
fn all_flags_except_some_and_a_dry_run_that_changes_nothing() {
    let (_dir, store) = new_store();
    for key in ["a", "b", "c"] {
        put_in(&store, STAGING, rollout(key, 30.0));
    }
    let untouched = dump(&store);
    let plan =
        promote(&store, Promote { except: vec!["b".into()], dry_run: true, ..from_staging(&[]) }).unwrap();
    let keys: Vec<&str> = plan.applied.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);
    assert_eq!(dump(&store), untouched);
    promote(&store, Promote { except: vec!["b".into()], ..from_staging(&[]) }).unwrap();
    assert!(store.flag(ENV, "b").unwrap().is_none());
    assert_eq!(store.revision(ENV).unwrap(), 2);
}

#[test]
fn refusals_name_what_is_missing_and_change_nothing() {
    let (_dir, store) = new_store();
    put(&store, rollout("search", 5.0));
    let mut chat = rollout("chat", 25.0);
    chat.prerequisites.push(Prerequisite { flag: "login".into(), variant: "on".into() });
    put_in(&store, STAGING, rollout("login", 100.0));
    put_in(&store, STAGING, chat);
    let untouched = dump(&store);

    let missing = promote(&store, from_staging(&["chat", "nope", "gone"])).unwrap_err();
    assert!(
        matches!(&missing, WriteError::UnknownKeys { keys, .. } if keys == &["nope", "gone"]),
        "{missing:?}"
    );
    assert_eq!(missing.to_string(), r#"no flag "nope", "gone" in environment "staging""#);

    let WriteError::Invalid(invalid) = promote(&store, from_staging(&["chat"])).unwrap_err() else {
        panic!("the prerequisite is missing in production")
    };
    assert!(invalid.problems.iter().any(|p| p.path.contains("prerequisites[0]")), "{invalid}");

    let stale =
        promote(&store, Promote { expected_revision: Some(0), ..from_staging(&["login"]) }).unwrap_err();
    assert!(matches!(stale, WriteError::RevisionConflict { expected: 0, current: 1 }), "{stale:?}");
    let itself = store.promote_if(STAGING, &from_staging(&["login"]), &meta("x"), &|| true).unwrap_err();
    assert!(matches!(itself, WriteError::PromoteToItself { .. }), "{itself:?}");
    assert_eq!(dump(&store), untouched);
}
