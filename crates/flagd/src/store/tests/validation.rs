//! Validation of the whole environment: invalid content never lands, and a refused write
//! leaves the file exactly as it was.

use flag_core::{Clause, Operator, Prerequisite, Rule, Serve};

use super::*;

fn paths(error: &WriteError) -> Vec<String> {
    match error {
        WriteError::Invalid(invalid) => invalid.problems.iter().map(|p| p.path.clone()).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Runs `op`, which must be refused, and checks that nothing changed.
fn refused(store: &Store, op: WriteOp) -> WriteError {
    let before =
        (dump(store), store.revision(ENV).unwrap(), store.environment_history(ENV, None, 100).unwrap());
    let error = write(store, op).unwrap_err();
    let after =
        (dump(store), store.revision(ENV).unwrap(), store.environment_history(ENV, None, 100).unwrap());
    assert!(before == after, "a refused write changed the store: {error:?}");
    assert_consistent(store);
    error
}

fn requires(flag: &mut Flag, key: &str) {
    flag.prerequisites.push(Prerequisite { flag: key.into(), variant: "on".into() });
}

pub(super) fn in_segment(segment: &str) -> Rule {
    Rule {
        description: String::new(),
        clauses: vec![Clause {
            attribute: "key".into(),
            op: Operator::InSegment,
            values: vec![segment.into()],
            negate: false,
        }],
        serve: Serve::Variant("on".into()),
    }
}

#[test]
fn an_invalid_flag_is_refused_with_paths_under_flag_and_nothing_changes() {
    let (_dir, store) = new_store();
    put(&store, rollout("a", 1.0));
    put(&store, rollout("chat", 5.0));
    let mut bad = rollout("chat", 5.0);
    bad.off_variant = Some("nope".into());
    bad.rules.push(Rule {
        description: String::new(),
        clauses: vec![],
        serve: Serve::Variant("missing".into()),
    });
    let error = refused(&store, WriteOp::PutFlag { flag: bad, expected_version: None });
    assert_eq!(paths(&error), ["flag.off_variant", "flag.rules[0].serve.variant"]);
    assert!(error.to_string().contains("flag.off_variant: expected one of the flag's variants"), "{error}");
    assert_eq!(store.flag(ENV, "chat").unwrap().unwrap().flag.version, 1);

    // A brand-new invalid flag does not land either.
    let mut bad_key = rollout("bad key", 5.0);
    bad_key.description = "x".into();
    let error = refused(&store, WriteOp::PutFlag { flag: bad_key, expected_version: None });
    assert_eq!(paths(&error), ["flag.key"]);
    assert!(store.flag(ENV, "bad key").unwrap().is_none());
    assert_eq!(store.flag_history(ENV, "bad key", None, 10).unwrap(), vec![]);
}

#[test]
fn a_prerequisite_must_exist_and_cycles_are_refused() {
    let (_dir, store) = new_store();
    let mut b = rollout("b", 1.0);
    requires(&mut b, "a");
    let error = refused(&store, WriteOp::PutFlag { flag: b.clone(), expected_version: None });
    assert_eq!(paths(&error), ["flag.prerequisites[0].flag"]);

    put(&store, rollout("a", 1.0));
    put(&store, b);
    let mut a = rollout("a", 1.0);
    requires(&mut a, "b");
    let error = refused(&store, WriteOp::PutFlag { flag: a, expected_version: None });
    let message = error.to_string();
    assert!(message.contains("prerequisite cycle"), "{message}");
    assert!(
        paths(&error)[0].starts_with("flag.prerequisites[0]") || paths(&error)[0].starts_with("flags[\"b\"]")
    );
}

#[test]
fn deleting_a_flag_another_requires_is_refused_naming_the_dependent() {
    let (_dir, store) = new_store();
    put(&store, rollout("checkout", 1.0));
    let mut payments = rollout("payments", 1.0);
    requires(&mut payments, "checkout");
    put(&store, payments);
    let error = refused(&store, WriteOp::DeleteFlag { key: "checkout".into(), expected_version: None });
    assert_eq!(paths(&error), ["flags[\"payments\"].prerequisites[0].flag"]);
    assert!(store.flag(ENV, "checkout").unwrap().is_some());
}

#[test]
fn segments_are_validated_and_one_in_use_cannot_be_deleted() {
    let (_dir, store) = new_store();
    let mut chat = rollout("chat", 1.0);
    chat.rules.push(in_segment("staff"));
    let error = refused(&store, WriteOp::PutFlag { flag: chat.clone(), expected_version: None });
    assert_eq!(paths(&error), ["flag.rules[0].clauses[0].values[0]"], "the segment must exist first");

    write(&store, WriteOp::PutSegment { segment: segment("staff", &["u1"]) }).unwrap();
    put(&store, chat);
    let error = refused(&store, WriteOp::DeleteSegment { key: "staff".into() });
    assert_eq!(paths(&error), ["flags[\"chat\"].rules[0].clauses[0].values[0]"]);

    let mut bad = segment("staff", &[]);
    bad.rules.push(flag_core::SegmentRule {
        clauses: vec![Clause {
            attribute: "age".into(),
            op: Operator::NumberGt,
            values: vec!["old".into()],
            negate: false,
        }],
    });
    let error = refused(&store, WriteOp::PutSegment { segment: bad });
    assert_eq!(paths(&error), ["segment.rules[0].clauses[0].values[0]"]);
    let error = refused(&store, WriteOp::DeleteSegment { key: "nope".into() });
    assert!(matches!(error, WriteError::NotFound { kind: SubjectKind::Segment, .. }), "{error:?}");
}

#[test]
fn refusals_of_every_kind_leave_the_store_unchanged() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let key = || "chat".to_string();
    refused(&store, WriteOp::Kill { key: "nope".into() });
    refused(&store, WriteOp::Revive { key: key(), expected_version: None });
    refused(&store, WriteOp::ServeVariant { key: key(), variant: "nope".into(), expected_version: None });
    refused(&store, WriteOp::ServeVariant { key: key(), variant: "on".into(), expected_version: Some(7) });
    refused(
        &store,
        WriteOp::Rollback { key: key(), to_version: None, expected_version: None, allow_revive: false },
    );
    let rollout = |percent, dark_percent| WriteOp::SetRollout {
        key: key(),
        percent,
        dark_percent,
        expected_version: None,
        create_if_missing: false,
    };
    refused(&store, rollout(10.0, Some(5.0)));
    refused(&store, rollout(101.0, None));
    refused(&store, rollout(f64::NAN, None));
    // And the writer carries on.
    assert_eq!(put(&store, super::rollout("chat", 6.0)).revision, 2);
    assert_consistent(&store);
}
