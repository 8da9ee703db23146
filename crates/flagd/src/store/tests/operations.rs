//! The operations beyond put and delete: rollout, serve variant, kill, revive, rollback,
//! segments.

use flag_core::{Operation, RolloutError, Serve, Split, Value, Variant};

use super::*;

use crate::store::error::Precondition;

fn set_rollout(key: &str, percent: f64, dark_percent: Option<f64>, create_if_missing: bool) -> WriteOp {
    WriteOp::SetRollout { key: key.into(), percent, dark_percent, expected_version: None, create_if_missing }
}

fn live(store: &Store, key: &str) -> Flag {
    store.flag(ENV, key).unwrap().unwrap().flag
}

fn percentages(flag: &Flag) -> Option<(f64, f64)> {
    match &flag.default {
        Serve::Split(split) => split.dark_launch_percentages(),
        Serve::Variant(_) | Serve::CallerDefault => None,
    }
}

#[test]
fn set_rollout_creates_a_dark_launch_flag_only_when_asked() {
    let (_dir, store) = new_store();
    let error = write(&store, set_rollout("chat", 5.0, Some(50.0), false)).unwrap_err();
    assert!(matches!(error, WriteError::NotFound { kind: SubjectKind::Flag, .. }), "{error:?}");
    let created = write(&store, set_rollout("chat", 5.0, Some(50.0), true)).unwrap();
    assert_eq!((created.entry.version, created.entry.operation), (1, Operation::Create));
    assert_eq!(content(&live(&store, "chat")), Flag::dark_launch("chat", 5.0, 50.0).unwrap());
    write(&store, set_rollout("plain", 5.0, None, true)).unwrap();
    assert_eq!(percentages(&live(&store, "plain")), Some((5.0, 5.0)), "no dark cohort unless asked");
}

#[test]
fn changing_the_percentage_keeps_the_dark_reach_and_the_bucketing() {
    let (_dir, store) = new_store();
    let mut chat = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
    let Serve::Split(split) = &mut chat.default else { unreachable!() };
    (split.by, split.salt) = (Some("org".into()), Some("chat-2024".into()));
    split.bucketing = flag_core::Bucketing::FlagdV3;
    put(&store, chat);

    let ramped = write(&store, set_rollout("chat", 25.0, None, false)).unwrap();
    assert_eq!(ramped.entry.operation, Operation::SetRollout);
    let flag = live(&store, "chat");
    assert_eq!(percentages(&flag), Some((25.0, 50.0)), "dark reach kept");
    let Serve::Split(Split { by, salt, bucketing, .. }) = &flag.default else { unreachable!() };
    assert_eq!((by.as_deref(), salt.as_deref()), (Some("org"), Some("chat-2024")), "nobody changes bucket");
    assert_eq!(*bucketing, flag_core::Bucketing::FlagdV3, "nor is hashed differently");

    write(&store, set_rollout("chat", 75.0, None, false)).unwrap();
    assert_eq!(percentages(&live(&store, "chat")), Some((75.0, 75.0)), "reach raised to the percentage");
    write(&store, set_rollout("chat", 10.0, Some(20.0), false)).unwrap();
    assert_eq!(percentages(&live(&store, "chat")), Some((10.0, 20.0)));

    // A default that is not a dark-launch split gets a reach equal to the percentage.
    write(&store, WriteOp::ServeVariant { key: "chat".into(), variant: "on".into(), expected_version: None })
        .unwrap();
    write(&store, set_rollout("chat", 30.0, None, false)).unwrap();
    assert_eq!(percentages(&live(&store, "chat")), Some((30.0, 30.0)));
    assert_consistent(&store);
}

#[test]
fn set_rollout_refuses_a_dark_reach_below_the_percentage_and_flags_without_the_variants() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let error = write(&store, set_rollout("chat", 10.0, Some(5.0), false)).unwrap_err();
    assert!(matches!(error, WriteError::Rollout(RolloutError::DarkBelowPercent { .. })), "{error:?}");
    let error = write(&store, set_rollout("chat", 120.0, None, false)).unwrap_err();
    assert!(matches!(error, WriteError::Rollout(RolloutError::OutOfRange(p)) if p == 120.0), "{error:?}");
    let error = write(&store, set_rollout("new", 10.0, Some(5.0), true)).unwrap_err();
    assert!(matches!(error, WriteError::Rollout(_)), "{error:?}");
    assert!(store.flag(ENV, "new").unwrap().is_none());

    let mut colour = rollout("colour", 1.0);
    colour.variants = vec![
        Variant { name: "on".into(), value: Value::String("red".into()) },
        Variant { name: "blue".into(), value: Value::String("blue".into()) },
    ];
    colour.off_variant = Some("blue".into());
    colour.default = Serve::Variant("blue".into());
    put(&store, colour);
    let error = write(&store, set_rollout("colour", 10.0, None, false)).unwrap_err();
    assert!(
        matches!(&error, WriteError::Precondition(Precondition::MissingRolloutVariants { missing, .. }) if *missing == ["off"]),
        "{error:?}"
    );
    assert!(error.to_string().contains("[\"off\"]"), "{error}");
    let error = write(&store, set_rollout("colour", 10.0, Some(50.0), false)).unwrap_err();
    assert!(error.to_string().contains("[\"dark\", \"off\"]"), "{error}");
    assert_eq!(store.revision(ENV).unwrap(), 2);
}

#[test]
fn a_plain_on_off_flag_gets_an_on_off_split() {
    let (_dir, store) = new_store();
    let mut chat = rollout("chat", 1.0);
    chat.variants.retain(|v| v.name != "dark");
    chat.default = Serve::Variant("off".into());
    put(&store, chat);
    write(&store, set_rollout("chat", 12.5, None, false)).unwrap();
    let Serve::Split(split) = live(&store, "chat").default else { panic!("expected a split") };
    let weights: Vec<(&str, i64)> = split.weights.iter().map(|w| (w.variant.as_str(), w.weight)).collect();
    assert_eq!(weights, [("on", 12_500), ("off", 87_500)]);
    // A dark cohort needs the dark variant.
    let error = write(&store, set_rollout("chat", 10.0, Some(50.0), false)).unwrap_err();
    assert!(error.to_string().contains("[\"dark\"]"), "{error}");
    assert_consistent(&store);
}

#[test]
fn serve_variant_serves_one_variant_to_everyone() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let done = write(
        &store,
        WriteOp::ServeVariant { key: "chat".into(), variant: "on".into(), expected_version: Some(1) },
    );
    assert_eq!(done.unwrap().entry.operation, Operation::ServeVariant);
    assert_eq!(live(&store, "chat").default, Serve::Variant("on".into()));
    let error = write(
        &store,
        WriteOp::ServeVariant { key: "chat".into(), variant: "nope".into(), expected_version: None },
    )
    .unwrap_err();
    let WriteError::Invalid(invalid) = error else { panic!("{error:?}") };
    assert_eq!(invalid.problems[0].path, "flag.default.variant");
}

#[test]
fn a_second_kill_writes_nothing_and_revive_restores_the_pre_kill_flag() {
    let (_dir, store) = new_store();
    let mut chat = Flag::dark_launch("chat", 5.0, 50.0).unwrap();
    chat.description = "the new chat".into();
    put(&store, chat.clone());
    let error = write(&store, WriteOp::Revive { key: "chat".into(), expected_version: None }).unwrap_err();
    assert!(matches!(error, WriteError::Precondition(Precondition::NotKilled { .. })), "{error:?}");

    let killed = write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    assert_eq!((killed.entry.version, killed.entry.operation, killed.unchanged), (2, Operation::Kill, false));
    // A ramp prepared while killed is not a revive; the kill in force is still version 2's.
    write(&store, set_rollout("chat", 1.0, None, false)).unwrap();
    let rows = dump(&store);
    let again = store.write(ENV, WriteOp::Kill { key: "chat".into() }, &meta("again")).unwrap();
    assert!(again.unchanged, "{again:?}");
    assert_eq!((again.entry.version, again.revision, again.entry.reason.as_str()), (2, 2, "test"));
    assert_eq!(dump(&store), rows, "a kill of a killed flag wrote something");
    assert_eq!(store.revision(ENV).unwrap(), 3);

    let revived = write(&store, WriteOp::Revive { key: "chat".into(), expected_version: Some(3) }).unwrap();
    assert_eq!((revived.entry.version, revived.entry.operation), (4, Operation::Revive));
    chat.default = live(&store, "chat").default;
    assert_eq!(content(&live(&store, "chat")), chat, "the content from before the kill");
    assert_eq!(store.flag(ENV, "chat").unwrap().unwrap().last_change.operation, Operation::Revive);
    assert!(matches!(write(&store, WriteOp::Kill { key: "nope".into() }), Err(WriteError::NotFound { .. })));
}

#[test]
fn a_rollout_prepared_while_killed_waits_for_the_revive() {
    let (_dir, store) = new_store();
    put(&store, Flag::dark_launch("chat", 50.0, 50.0).unwrap());
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    write(&store, set_rollout("chat", 1.0, None, false)).unwrap();
    let flag = live(&store, "chat");
    assert!(!flag.enabled, "a rollout change never revives a killed flag");
    assert_eq!(percentages(&flag), Some((1.0, 1.0)), "no dark cohort was asked for");
    write(&store, WriteOp::Revive { key: "chat".into(), expected_version: None }).unwrap();
    let flag = live(&store, "chat");
    assert!(flag.enabled);
    assert_eq!(
        percentages(&flag),
        Some((1.0, 1.0)),
        "the careful ramp is kept, not the 50 % from before the kill"
    );
}

#[test]
fn rollback_restores_a_version_as_a_new_version() {
    let (_dir, store) = new_store();
    for percent in [1.0, 2.0, 3.0] {
        put(&store, rollout("chat", percent));
    }
    let created_at = live(&store, "chat").metadata.created_at;
    let rolled = write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: Some(1),
            expected_version: Some(3),
            allow_revive: false,
        },
    );
    let rolled = rolled.unwrap();
    assert_eq!((rolled.entry.version, rolled.entry.operation), (4, Operation::Rollback));
    assert_eq!(content(&live(&store, "chat")), rollout("chat", 1.0));
    assert_eq!(live(&store, "chat").metadata.created_at, created_at);

    // None: the version before the newest (3, content 3 %).
    write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: None,
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap();
    assert_eq!(content(&live(&store, "chat")), rollout("chat", 3.0));

    // A killed version restores killed.
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    put(&store, rollout("chat", 9.0));
    write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: Some(6),
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap();
    assert!(!live(&store, "chat").enabled);

    for (to_version, latest) in [(Some(0), 8), (Some(9), 8)] {
        let error = write(
            &store,
            WriteOp::Rollback { key: "chat".into(), to_version, expected_version: None, allow_revive: false },
        )
        .unwrap_err();
        assert!(matches!(error, WriteError::VersionNotFound { latest: l, .. } if l == latest), "{error:?}");
    }
    let error = write(
        &store,
        WriteOp::Rollback {
            key: "nope".into(),
            to_version: None,
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap_err();
    assert!(matches!(error, WriteError::NotFound { .. }), "{error:?}");
    assert_consistent(&store);
}

#[test]
fn rollback_brings_back_a_deleted_flag_but_not_to_its_deletion() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    let created_at = live(&store, "chat").metadata.created_at;
    write(&store, WriteOp::DeleteFlag { key: "chat".into(), expected_version: None }).unwrap();
    let back = write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: None,
            expected_version: Some(0),
            allow_revive: false,
        },
    );
    assert_eq!(back.unwrap().entry.version, 3);
    let flag = live(&store, "chat");
    assert_eq!(content(&flag), rollout("chat", 5.0));
    assert_eq!(flag.metadata.created_at, created_at, "its identity comes back with it");

    let error = write(
        &store,
        WriteOp::Rollback {
            key: "chat".into(),
            to_version: Some(2),
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap_err();
    assert!(
        matches!(error, WriteError::Precondition(Precondition::RollbackToDeletion { version: 2, .. })),
        "{error:?}"
    );

    put(&store, rollout("single", 1.0));
    let error = write(
        &store,
        WriteOp::Rollback {
            key: "single".into(),
            to_version: None,
            expected_version: None,
            allow_revive: false,
        },
    )
    .unwrap_err();
    assert!(matches!(error, WriteError::Precondition(Precondition::NoPreviousVersion { .. })), "{error:?}");
}

#[test]
fn segments_are_versioned_like_flags() {
    let (_dir, store) = new_store();
    let put_segment = |included: &[&str]| {
        write(&store, WriteOp::PutSegment { segment: segment("staff", included) }).unwrap()
    };
    assert_eq!(
        (put_segment(&["u1"]).entry.version, put_segment(&["u1", "u2"]).entry.operation),
        (1, Operation::Update)
    );
    let deleted = write(&store, WriteOp::DeleteSegment { key: "staff".into() }).unwrap();
    assert_eq!(
        (deleted.entry.version, deleted.entry.kind, deleted.entry.segment),
        (3, SubjectKind::Segment, None)
    );
    let again = put_segment(&["u3"]);
    assert_eq!((again.entry.version, again.entry.operation), (4, Operation::Create));
    assert_eq!(store.segments(ENV).unwrap(), vec![segment("staff", &["u3"])]);
    assert_eq!(again.entry.segment, Some(segment("staff", &["u3"])));
    assert_consistent(&store);
}

#[test]
fn rollback_keeps_a_kill_unless_allowed_to_revive() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 5.0));
    put(&store, rollout("chat", 50.0));
    write(&store, WriteOp::Kill { key: "chat".into() }).unwrap();
    let rollback = |allow_revive| WriteOp::Rollback {
        key: "chat".into(),
        to_version: Some(1),
        expected_version: None,
        allow_revive,
    };
    write(&store, rollback(false)).unwrap();
    let flag = live(&store, "chat");
    assert!(!flag.enabled, "a rollback of a killed flag revived it");
    assert_eq!(percentages(&flag), Some((5.0, 5.0)), "the content is restored");
    write(&store, rollback(true)).unwrap();
    assert!(live(&store, "chat").enabled, "--allow-revive restores `enabled` too");
    assert_consistent(&store);
}

#[test]
fn only_an_explicit_dark_percentage_makes_anyone_dark() {
    let (_dir, store) = new_store();
    let ramp = |percent, dark| write(&store, set_rollout("ramp", percent, dark, true)).unwrap();
    let now = || percentages(&live(&store, "ramp"));
    // Ramping down moves users out of `on` to `off`, not into the shadow.
    ramp(50.0, None);
    ramp(5.0, None);
    assert_eq!(now(), Some((5.0, 5.0)));
    // --on, then --percent 10: nobody dark.
    ramp(100.0, Some(100.0));
    ramp(10.0, None);
    assert_eq!(now(), Some((10.0, 10.0)));
    // An explicit dark cohort is kept while ramping below it…
    ramp(25.0, Some(50.0));
    ramp(5.0, None);
    assert_eq!(now(), Some((5.0, 50.0)));
    // …and used up by a percentage at or above it: ramping down again darkens nobody.
    ramp(75.0, None);
    ramp(10.0, None);
    assert_eq!(now(), Some((10.0, 10.0)));
    // --off: nobody runs the new path.
    ramp(20.0, Some(60.0));
    ramp(0.0, Some(0.0));
    assert_eq!(now(), Some((0.0, 0.0)));
    ramp(5.0, None);
    assert_eq!(now(), Some((5.0, 5.0)));
}

#[test]
fn a_percentage_below_one_step_is_refused() {
    let (_dir, store) = new_store();
    let error = write(&store, set_rollout("chat", 0.0001, None, true)).unwrap_err();
    assert!(matches!(error, WriteError::Rollout(RolloutError::RoundsToZero(_))), "{error:?}");
    assert!(store.flag(ENV, "chat").unwrap().is_none());
    put(&store, rollout("chat", 5.0));
    let error = write(&store, set_rollout("chat", 5.0, Some(5.0004), false)).unwrap_err();
    assert!(matches!(error, WriteError::Rollout(RolloutError::DarkRoundsToZero { .. })), "{error:?}");
    assert_eq!(store.revision(ENV).unwrap(), 1);
}
