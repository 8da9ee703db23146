//! Rollout plans: started with their first step in one transaction, moved by
//! compare-and-set with the flag writes they make, paused by anyone else's write of the
//! flag, refused by name, and kept across a reopen.

use flag_core::{OnBreach, Operation, Rollout, RolloutPlan, RolloutState, Serve, Value, Variant};

use super::*;
use crate::store::{Batch, PlanRefusal, Restore, Transition};

fn plan() -> RolloutPlan {
    RolloutPlan {
        steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
        hold_ms: 600_000,
        max_hold_ms: 1_800_000,
        dark_percent: None,
        min_samples: 1_000,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 2.0,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    }
}

fn engine() -> WriteMeta {
    WriteMeta { actor: "flagd/rollout".into(), on_behalf_of: None, reason: String::new() }
}

/// The `on` share of the live flag, in percent.
fn on_percent(store: &Store, key: &str) -> f64 {
    let flag = store.flag(ENV, key).unwrap().unwrap().flag;
    let Serve::Split(split) = &flag.default else { panic!("{key} serves no split: {:?}", flag.default) };
    split
        .weights
        .iter()
        .find(|weight| weight.variant == "on")
        .map_or(0.0, |weight| weight.weight as f64 / 1000.0)
}

fn started(store: &Store, key: &str, plan: RolloutPlan) -> Rollout {
    put(store, rollout(key, 0.0));
    store.start_rollout(ENV, key, plan, &meta("ramp chat")).unwrap().0
}

fn move_plan(store: &Store, key: &str, change: Transition) -> Result<Rollout, WriteError> {
    let current = store.rollout(ENV, key).unwrap();
    store.move_rollout(ENV, key, current.as_ref(), change, &engine()).map(|(rollout, _)| rollout)
}

#[test]
fn a_start_writes_the_first_step_the_plan_and_a_history_entry_in_one_commit_kept_across_a_reopen() {
    let (dir, store) = new_store();
    put(&store, rollout("chat", 0.0));
    let before = store.revision(ENV).unwrap();
    let (rollout, committed) = store.start_rollout(ENV, "chat", plan(), &meta("ramp chat")).unwrap();
    assert_eq!(committed.revision, before + 1, "one revision for the step and the plan");
    assert_eq!(committed.entry.operation, Operation::SetRollout);
    assert_eq!(committed.entry.reason, "step 1/5: 1 %; ramp chat");
    assert_eq!((rollout.step, &rollout.state, rollout.flag_version), (0, &RolloutState::Running, 2));
    assert_eq!(rollout.started_by, "ana@example.com");
    assert_eq!(on_percent(&store, "chat"), 1.0);
    assert_consistent(&store);
    let copy = dir.path().join("copy.redb");
    store.backup_to(&copy).unwrap();
    drop(store);
    let restored = Store::open(&copy, StoreOptions::default()).unwrap();
    assert_eq!(restored.rollout(ENV, "chat").unwrap(), Some(rollout.clone()), "a backup has the plans");

    let reopened = open_in(&dir, StoreOptions::default());
    assert_eq!(reopened.rollout(ENV, "chat").unwrap(), Some(rollout.clone()));
    let listed = reopened.rollouts(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].environment.as_str(), listed[0].key.as_str()), (ENV, "chat"));
    assert_eq!(reopened.rollouts(Some(OTHER_ENV)).unwrap(), []);
}

#[test]
fn each_bad_plan_or_flag_is_refused_by_name_and_changes_nothing() {
    let (_dir, store) = new_store();
    put(&store, rollout("chat", 0.0));
    let mut colours = rollout("colours", 0.0);
    colours.variants = vec![
        Variant { name: "red".into(), value: Value::String("red".into()) },
        Variant { name: "blue".into(), value: Value::String("blue".into()) },
    ];
    colours.off_variant = Some("red".into());
    colours.default = Serve::Variant("red".into());
    put(&store, colours);
    put(&store, rollout("killed", 0.0));
    write(&store, WriteOp::Kill { key: "killed".into() }).unwrap();
    put(&store, rollout("planned", 0.0));
    store.start_rollout(ENV, "planned", plan(), &meta("")).unwrap();
    let untouched = dump(&store);

    let cases: [(&str, RolloutPlan, &str); 7] = [
        ("chat", RolloutPlan { steps: vec![5.0, 1.0], ..plan() }, "steps[1]: expected a percentage above 5"),
        (
            "chat",
            RolloutPlan { steps: vec![50.0, 120.0], ..plan() },
            "steps[1]: expected a percentage above 50 and at most 100, found 120",
        ),
        ("chat", RolloutPlan { hold_ms: 0, ..plan() }, "hold: expected a duration above 0"),
        (
            "chat",
            RolloutPlan { max_error_ratio: 1.0, ..plan() },
            "max_error_ratio: expected a ratio above 1, found 1",
        ),
        (
            "colours",
            plan(),
            "flag \"colours\": expected a variant `off` as the control cohort; the flag has red, blue",
        ),
        ("killed", plan(), "flag \"killed\" is killed"),
        ("planned", plan(), "flag \"planned\" already has a rollout plan (running, step 1/5)"),
    ];
    for (key, plan, message) in cases {
        let error = store.start_rollout(ENV, key, plan, &meta("")).unwrap_err();
        assert!(matches!(error, WriteError::Plan(_)), "{key}: {error:?}");
        assert!(error.to_string().contains(message), "{key}: {error}");
    }
    let missing = store.start_rollout(ENV, "nope", plan(), &meta("")).unwrap_err();
    assert!(matches!(missing, WriteError::NotFound { .. }), "{missing:?}");
    assert_eq!(dump(&store), untouched, "a refused plan writes nothing");
}

#[test]
fn an_advance_writes_the_next_step_as_the_plan_and_the_last_step_finishes_it() {
    let (_dir, store) = new_store();
    started(&store, "chat", RolloutPlan { steps: vec![1.0, 25.0, 100.0], ..plan() });
    let figures = "on: 0.8 % errors over 12,400 evaluations, off: 0.7 % over 40,100";
    let current = store.rollout(ENV, "chat").unwrap();
    let (next, committed) = store
        .move_rollout(
            ENV,
            "chat",
            current.as_ref(),
            Transition::Advance,
            &WriteMeta { reason: figures.into(), ..engine() },
        )
        .unwrap();
    let entry = committed.unwrap().entry;
    assert_eq!(
        (entry.actor.as_str(), entry.reason.as_str()),
        ("flagd/rollout", &*format!("step 2/3: 25 %; {figures}"))
    );
    assert_eq!((next.step, &next.state, next.flag_version), (1, &RolloutState::Running, entry.version));
    assert_eq!(on_percent(&store, "chat"), 25.0);

    // A stale expectation loses: the plan has moved since it was read.
    let stale =
        store.move_rollout(ENV, "chat", current.as_ref(), Transition::Advance, &engine()).unwrap_err();
    assert!(matches!(stale, WriteError::Plan(PlanRefusal::Moved { step: 2, .. })), "{stale:?}");

    let done = move_plan(&store, "chat", Transition::Advance).unwrap();
    assert_eq!((done.step, done.state), (2, RolloutState::Done));
    assert_eq!(on_percent(&store, "chat"), 100.0);
    let after = move_plan(&store, "chat", Transition::Advance).unwrap_err();
    assert!(after.to_string().contains("cannot advance a rollout plan that is done"), "{after}");
    assert_consistent(&store);
}

#[test]
fn a_breach_kills_rolls_back_or_pauses_in_one_change_saying_why() {
    let (_dir, store) = new_store();
    let why = "error ratio: on 3.1 % errors over 2,000 evaluations, off 0.5 % over 8,000";
    for (key, on_breach) in
        [("kill", OnBreach::Kill), ("rollback", OnBreach::Rollback), ("pause", OnBreach::Pause)]
    {
        started(&store, key, RolloutPlan { on_breach, ..plan() });
        move_plan(&store, key, Transition::Advance).unwrap();
        let revision = store.revision(ENV).unwrap();
        let current = store.rollout(ENV, key).unwrap();
        let (after, committed) = store
            .move_rollout(ENV, key, current.as_ref(), Transition::Breach { why: why.into() }, &engine())
            .unwrap();
        let flag = store.flag(ENV, key).unwrap().unwrap();
        match on_breach {
            OnBreach::Kill => {
                assert!(!flag.flag.enabled, "killed");
                assert_eq!(flag.last_change.operation, Operation::Kill);
            }
            OnBreach::Rollback => assert_eq!(on_percent(&store, key), 1.0, "back to the previous step"),
            OnBreach::Pause => {
                assert!(committed.is_none(), "a pause leaves the flag");
                assert_eq!(store.revision(ENV).unwrap(), revision);
                assert_eq!(on_percent(&store, key), 5.0);
            }
        }
        let said = match (&after.state, on_breach) {
            (RolloutState::RolledBack { why }, OnBreach::Kill | OnBreach::Rollback) => why.clone(),
            (RolloutState::Paused { why }, OnBreach::Pause) => why.clone(),
            (state, _) => panic!("{key}: {state:?}"),
        };
        assert!(said.starts_with("rollout breach at step 2/5 (5 %)"), "{said}");
        assert!(said.ends_with(why), "{said}");
        if let Some(committed) = committed {
            assert_eq!(committed.revision, revision + 1, "one change");
            assert_eq!(committed.entry.reason, said, "the history says why with the figures");
            assert_eq!(after.flag_version, committed.entry.version);
        }
    }
    assert_consistent(&store);
}

#[test]
fn a_breach_at_the_first_step_rolls_back_to_nobody() {
    let (_dir, store) = new_store();
    started(&store, "chat", RolloutPlan { on_breach: OnBreach::Rollback, ..plan() });
    move_plan(&store, "chat", Transition::Breach { why: "p99".into() }).unwrap();
    assert_eq!(on_percent(&store, "chat"), 0.0);
}

#[test]
fn pause_resume_and_abort_move_the_plan_and_refuse_what_its_state_does_not_allow() {
    let (_dir, store) = new_store();
    started(&store, "chat", plan());
    let revision = store.revision(ENV).unwrap();
    let paused = move_plan(&store, "chat", Transition::Pause { why: "lunch".into() }).unwrap();
    assert_eq!(paused.state, RolloutState::Paused { why: "lunch".into() });
    assert_eq!(store.revision(ENV).unwrap(), revision, "a pause writes no flag change");
    let twice = move_plan(&store, "chat", Transition::Pause { why: "again".into() }).unwrap_err();
    assert!(
        twice.to_string().contains("cannot pause a rollout plan that is paused; it must be running"),
        "{twice}"
    );

    store.write(ENV, WriteOp::Kill { key: "chat".into() }, &meta("incident")).unwrap();
    let killed = move_plan(&store, "chat", Transition::Resume).unwrap_err();
    assert!(killed.to_string().contains("flag \"chat\" is killed: revive it"), "{killed}");
    store.write(ENV, WriteOp::Revive { key: "chat".into(), expected_version: None }, &meta("over")).unwrap();
    let current = store.rollout(ENV, "chat").unwrap();
    let (resumed, committed) =
        store.move_rollout(ENV, "chat", current.as_ref(), Transition::Resume, &meta("back")).unwrap();
    assert_eq!(resumed.state, RolloutState::Running);
    assert_eq!(committed.unwrap().entry.reason, "step 1/5: 1 %; resumed; back");

    let aborted = move_plan(&store, "chat", Transition::Abort { why: "wrong flag".into() }).unwrap();
    assert_eq!(aborted.state, RolloutState::Aborted { why: "wrong flag".into() });
    let resume = move_plan(&store, "chat", Transition::Resume).unwrap_err();
    assert!(resume.to_string().contains("cannot resume a rollout plan that is aborted"), "{resume}");
    let none = store.move_rollout(ENV, "nope", None, Transition::Resume, &engine()).unwrap_err();
    assert!(matches!(none, WriteError::Plan(PlanRefusal::NoPlan { .. })), "{none:?}");

    // A finished plan no longer owns its flag: a new one may start.
    let again = store.start_rollout(ENV, "chat", plan(), &meta("second try")).unwrap().0;
    assert_eq!(again.state, RolloutState::Running);
    assert_consistent(&store);
}

/// A flag's key and a write of it outside its plan.
type ManualChange<'a> = (&'a str, &'a dyn Fn(&Store));

#[test]
fn any_write_of_the_flag_outside_its_plan_pauses_the_plan_saying_who_and_why() {
    let (_dir, store) = new_store();
    let other = |store: &Store, key: &str| {
        let flag = store.flag(ENV, key).unwrap().unwrap().flag;
        let version = flag.version;
        (store.rollout(ENV, key).unwrap().unwrap(), version)
    };
    let manual: [ManualChange<'_>; 5] = [
        ("set", &|store| {
            let op = WriteOp::SetRollout {
                key: "set".into(),
                percent: 30.0,
                dark_percent: None,
                expected_version: None,
                create_if_missing: false,
            };
            store.write(ENV, op, &meta("by hand")).unwrap();
        }),
        ("kill", &|store| {
            store.write(ENV, WriteOp::Kill { key: "kill".into() }, &meta("incident")).unwrap();
        }),
        ("rollback", &|store| {
            let op = WriteOp::Rollback {
                key: "rollback".into(),
                to_version: None,
                expected_version: None,
                allow_revive: false,
            };
            store.write(ENV, op, &meta("undo")).unwrap();
        }),
        ("apply", &|store| {
            let batch = Batch { flags: vec![rollout("apply", 70.0)], ..Batch::default() };
            store.apply(ENV, batch, &meta("from git")).unwrap();
        }),
        ("restore", &|store| {
            // Back to just before the plan started.
            let to_revision = store.revision(ENV).unwrap() - 1;
            let restore =
                Restore { to_revision, allow_revive: false, dry_run: false, expected_revision: None };
            store.restore_if(ENV, restore, &meta("yesterday"), &|| true).unwrap();
        }),
    ];
    put(&store, rollout("unplanned", 0.0));
    for (key, change) in manual {
        started(&store, key, plan());
        change(&store);
        let (rollout, version) = other(&store, key);
        let RolloutState::Paused { why } = &rollout.state else { panic!("{key}: {:?}", rollout.state) };
        assert!(
            why.starts_with(&format!(
                "the flag was changed outside the plan by ana@example.com (version {version})"
            )),
            "{key}: {why}"
        );
        assert_ne!(rollout.flag_version, version, "{key}: the plan's own version is kept");
        let advance = move_plan(&store, key, Transition::Advance).unwrap_err();
        assert!(advance.to_string().contains("it must be running"), "{key}: {advance}");
    }
    assert_consistent(&store);
}

#[test]
fn a_rehold_starts_the_step_afresh_without_writing_the_flag() {
    let (_dir, store) = new_store();
    let mut running = started(&store, "chat", plan());
    running.holding_since_ms -= 60_000;
    {
        let db = store.inner.handle.current();
        let txn = db.begin_write().unwrap();
        crate::store::plan_rows::write_row(&txn, ENV, "chat", &running).unwrap();
        txn.commit().unwrap();
    }
    let revision = store.revision(ENV).unwrap();
    let reheld = move_plan(&store, "chat", Transition::Rehold).unwrap();
    assert!(reheld.holding_since_ms >= running.holding_since_ms + 60_000, "{reheld:?}");
    assert_eq!((reheld.step, reheld.state), (0, RolloutState::Running));
    assert_eq!(store.revision(ENV).unwrap(), revision);
}
