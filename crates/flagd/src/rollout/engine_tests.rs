//! The engine over a real redb file with SDK health reports fed in (`HealthFigures::apply`),
//! on tokio's paused clock: a healthy step advances, too few evaluations extend the hold
//! and then pause, each guard trips its breach action, a manual change pauses the plan,
//! a restart holds the step afresh, and a flood of reports does not hold up writes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flag_core::{
    CohortFigures, CohortReport, Flag, HealthReport, LatencyHistogram, OnBreach, Operation, Rollout,
    RolloutPlan, RolloutState,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::engine::{self, ACTOR};
use crate::config::Config;
use crate::health::Catalog;
use crate::state::State;
use crate::store::{Store, StoreOptions, WriteMeta, WriteOp};

const ENV: &str = "production";
const HOLD: Duration = Duration::from_secs(60);

fn plan() -> RolloutPlan {
    RolloutPlan {
        steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
        hold_ms: 60_000,
        max_hold_ms: 180_000,
        dark_percent: None,
        min_samples: 1_000,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 2.0,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    }
}

fn meta() -> WriteMeta {
    WriteMeta { actor: "ana".into(), on_behalf_of: None, reason: "ramp".into() }
}

/// A server's state over the store at `path`, without a network.
fn state(path: &Path) -> Arc<State> {
    let store = Store::open(path, StoreOptions::default()).unwrap();
    Arc::new(State::new(Config::default(), store, crate::auth::Access::new(None, None, None).unwrap()))
}

/// The engine of `state`, stopped when the returned sender is dropped or set.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(state: &Arc<State>) -> Running {
        let (stop, stopped) = watch::channel(false);
        let task = engine::start(state, stopped);
        Running { stop, task }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

/// A flag at 0 % with a plan started on it.
fn started(state: &State, key: &str, plan: RolloutPlan) {
    state
        .store
        .write(
            ENV,
            WriteOp::PutFlag { flag: Flag::rollout(key, 0.0).unwrap(), expected_version: None },
            &meta(),
        )
        .unwrap();
    state.store.start_rollout(ENV, key, plan, &meta()).unwrap();
}

fn rollout(state: &State, key: &str) -> Rollout {
    state.store.rollout(ENV, key).unwrap().unwrap()
}

/// Waits (on the paused clock, a millisecond at a time) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let real = std::time::Instant::now();
    while !done() {
        assert!(real.elapsed() < Duration::from_secs(20), "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until the engine judges `key`'s current step in a window of its own.
async fn window_open(state: &State, key: &str) {
    until("the engine opens a window", || state.rollout_windows.of(ENV, key).is_some()).await;
}

fn figures(evaluations: u64, errors: u64, latency_us: u64) -> CohortFigures {
    let mut latency = LatencyHistogram::default();
    for _ in 0..evaluations {
        latency.record(latency_us);
    }
    CohortFigures { evaluations, successes: evaluations - errors, errors, latency }
}

/// One SDK instance's report of `key`'s `on` and `off` cohorts.
fn report(state: &State, instance: &str, sequence: u64, key: &str, on: CohortFigures, off: CohortFigures) {
    let (revision, set) = state.store.snapshot(ENV).unwrap();
    report_to(state, &Catalog::of(revision, &set), instance, sequence, key, (on, off));
}

/// [`report`] against a catalog read once.
fn report_to(
    state: &State,
    catalog: &Catalog,
    instance: &str,
    sequence: u64,
    key: &str,
    (on, off): (CohortFigures, CohortFigures),
) {
    let revision = catalog.revision;
    let cohort = |variant: &str, figures| CohortReport {
        flag: key.into(),
        variant: variant.into(),
        revision,
        figures,
    };
    let report = HealthReport {
        instance: instance.into(),
        sequence,
        cohorts: vec![cohort("on", on), cohort("off", off)],
    };
    state.health.apply(ENV, report, catalog);
}

fn on_percent(state: &State, key: &str) -> f64 {
    let flag = state.store.flag(ENV, key).unwrap().unwrap().flag;
    let flag_core::Serve::Split(split) = &flag.default else { return -1.0 };
    split.weights.iter().find(|w| w.variant == "on").map_or(0.0, |w| w.weight as f64 / 1000.0)
}

#[tokio::test(start_paused = true)]
async fn a_healthy_step_advances_after_its_hold_naming_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir.path().join("flags.redb"));
    started(&state, "chat", plan());
    let engine = Running::start(&state);
    window_open(&state, "chat").await;
    report(&state, "sdk-1", 1, "chat", figures(12_400, 99, 900), figures(40_100, 281, 900));

    tokio::time::sleep(HOLD / 2).await;
    assert_eq!(rollout(&state, "chat").step, 0, "not before the hold ends");
    until("the step advances", || rollout(&state, "chat").step == 1).await;
    assert_eq!(on_percent(&state, "chat"), 5.0);
    let entry = state.store.flag(ENV, "chat").unwrap().unwrap().last_change;
    assert_eq!(entry.actor, ACTOR);
    assert_eq!(
        entry.reason,
        "step 2/5: 5 %; on: 0.8 % errors over 12,400 evaluations, off: 0.7 % over 40,100"
    );
    engine.stop().await;
}

#[tokio::test(start_paused = true)]
async fn too_few_evaluations_extend_the_hold_up_to_the_max_then_pause_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir.path().join("flags.redb"));
    started(&state, "chat", plan());
    let engine = Running::start(&state);
    window_open(&state, "chat").await;
    report(&state, "sdk-1", 1, "chat", figures(420, 0, 900), figures(40_000, 0, 900));

    tokio::time::sleep(HOLD * 2).await;
    let held = rollout(&state, "chat");
    assert_eq!((held.step, &held.state), (0, &RolloutState::Running), "never advanced on too little data");
    until("the plan pauses", || rollout(&state, "chat").state != RolloutState::Running).await;
    let RolloutState::Paused { why } = rollout(&state, "chat").state else { panic!("not paused") };
    assert!(why.starts_with("inconclusive after 180 s: on had 420 evaluations"), "{why}");
    assert_eq!(on_percent(&state, "chat"), 1.0, "the flag is left at its step");
    engine.stop().await;
}

#[tokio::test(start_paused = true)]
async fn each_guard_trips_its_plans_breach_action_in_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir.path().join("flags.redb"));
    // (flag, plan, on, off, what the breach says)
    let cases = [
        (
            "errors",
            plan(),
            figures(4_000, 120, 900),
            figures(16_000, 80, 900),
            "error rate of on 3 % vs 0.5 % on off",
        ),
        (
            "latency",
            RolloutPlan { on_breach: OnBreach::Rollback, ..plan() },
            figures(4_000, 0, 40_000),
            figures(16_000, 0, 9_000),
            "p99 latency of on ≤ 50 ms vs ≤ 10 ms on off",
        ),
        (
            "ceiling",
            RolloutPlan { max_error_rate: Some(0.01), on_breach: OnBreach::Pause, ..plan() },
            figures(4_000, 80, 900),
            figures(16_000, 320, 900),
            "error rate of on 2 % above the ceiling of 1 %",
        ),
        (
            "slow",
            RolloutPlan { max_latency_p99_us: Some(20_000), ..plan() },
            figures(4_000, 0, 40_000),
            figures(16_000, 0, 40_000),
            "p99 latency of on ≤ 50 ms above the ceiling of 20 ms",
        ),
    ];
    for (key, plan, ..) in &cases {
        started(&state, key, plan.clone());
    }
    let engine = Running::start(&state);
    for (sequence, (key, _, on, off, _)) in (1..).zip(&cases) {
        window_open(&state, key).await;
        report(&state, "sdk-1", sequence, key, *on, *off);
    }
    for (key, plan, _, _, says) in &cases {
        until("the breach is acted on", || rollout(&state, key).state != RolloutState::Running).await;
        let after = rollout(&state, key);
        let flag = state.store.flag(ENV, key).unwrap().unwrap();
        let why = match (&after.state, plan.on_breach) {
            (RolloutState::RolledBack { why }, OnBreach::Kill) => {
                assert!(!flag.flag.enabled, "{key} is killed");
                assert_eq!(flag.last_change.operation, Operation::Kill);
                assert_eq!(&flag.last_change.reason, why, "the history says why");
                why.clone()
            }
            (RolloutState::RolledBack { why }, OnBreach::Rollback) => {
                assert_eq!(on_percent(&state, key), 0.0, "{key}: back before the first step");
                why.clone()
            }
            (RolloutState::Paused { why }, OnBreach::Pause) => {
                assert_eq!(on_percent(&state, key), 1.0, "{key}: a pause leaves the flag");
                why.clone()
            }
            (state, _) => panic!("{key}: {state:?}"),
        };
        assert!(why.starts_with("rollout breach at step 1/5 (1 %)"), "{why}");
        assert!(why.contains(says), "{key}: {why}");
        assert_eq!(flag.last_change.actor, if plan.on_breach == OnBreach::Pause { "ana" } else { ACTOR });
    }
    engine.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_manual_change_pauses_the_plan_and_the_engine_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir.path().join("flags.redb"));
    started(&state, "chat", plan());
    let engine = Running::start(&state);
    window_open(&state, "chat").await;
    report(&state, "sdk-1", 1, "chat", figures(12_400, 99, 900), figures(40_100, 281, 900));
    let op = WriteOp::SetRollout {
        key: "chat".into(),
        percent: 40.0,
        dark_percent: None,
        expected_version: None,
        create_if_missing: false,
    };
    state.store.write(ENV, op, &meta()).unwrap();

    tokio::time::sleep(HOLD * 2).await;
    let paused = rollout(&state, "chat");
    assert_eq!(paused.step, 0);
    let RolloutState::Paused { why } = paused.state else { panic!("{:?}", paused.state) };
    assert!(why.starts_with("the flag was changed outside the plan by ana"), "{why}");
    assert_eq!(on_percent(&state, "chat"), 40.0, "the operator's change stands");
    engine.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_the_step_is_held_afresh_and_judged_on_new_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.redb");
    let before = {
        let state = state(&path);
        started(&state, "chat", plan());
        rollout(&state, "chat")
    };
    // The hold elapsed while flagd was down: real time passes, the figures are gone.
    std::thread::sleep(Duration::from_millis(20));
    let state = state(&path);
    let engine = Running::start(&state);
    until("the hold starts again", || rollout(&state, "chat").holding_since_ms > before.holding_since_ms)
        .await;
    window_open(&state, "chat").await;
    report(&state, "sdk-1", 1, "chat", figures(12_400, 99, 900), figures(40_100, 281, 900));
    tokio::time::sleep(HOLD / 2).await;
    assert_eq!(rollout(&state, "chat").step, 0, "a whole hold of fresh figures first");
    until("the step advances", || rollout(&state, "chat").step == 1).await;
    engine.stop().await;
}

/// Ten writes of another flag, in real time.
async fn ten_writes(state: &State) -> Duration {
    let started = std::time::Instant::now();
    for round in 0..10 {
        let op = WriteOp::PutFlag {
            flag: Flag::rollout("other", f64::from(round)).unwrap(),
            expected_version: None,
        };
        let store = state.store.clone();
        tokio::task::spawn_blocking(move || store.write(ENV, op, &meta())).await.unwrap().unwrap();
    }
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_reports_from_a_thousand_clients_does_not_hold_up_writes() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir.path().join("flags.redb"));
    started(&state, "chat", plan());
    let engine = Running::start(&state);
    window_open(&state, "chat").await;
    let quiet = ten_writes(&state).await;
    let flooding = Arc::new(AtomicBool::new(true));
    let applied = Arc::new(AtomicU64::new(0));
    let flood = {
        let (state, flooding, applied) = (Arc::clone(&state), Arc::clone(&flooding), Arc::clone(&applied));
        let (revision, set) = state.store.snapshot(ENV).unwrap();
        let catalog = Catalog::of(revision, &set);
        std::thread::spawn(move || {
            let mut sequence = 0;
            while flooding.load(Ordering::Relaxed) {
                sequence += 1;
                for client in 0..1_000 {
                    let cohorts = (figures(20, 0, 900), figures(80, 0, 900));
                    report_to(&state, &catalog, &format!("sdk-{client}"), sequence, "chat", cohorts);
                    applied.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    until("the flood is under way", || applied.load(Ordering::Relaxed) >= 1_000).await;
    let during = applied.load(Ordering::Relaxed);
    let flooded = ten_writes(&state).await;
    let after = applied.load(Ordering::Relaxed);
    assert!(after > during, "reports kept coming while the writes committed");
    // A write waits for no report: the bound is loose, for a shared machine, and a write
    // queued behind the reports would take their whole time.
    assert!(
        flooded < quiet * 10 + Duration::from_millis(500),
        "writes took {flooded:?} flooded, {quiet:?} quiet"
    );
    let figures = state.health.figures(ENV, "chat", 0, Instant::now(), Instant::now());
    assert_eq!(figures.clients, 1_000);
    // And the engine judges the flood's figures like any others.
    until("the step advances", || rollout(&state, "chat").step == 1).await;
    flooding.store(false, Ordering::Relaxed);
    flood.join().unwrap();
    engine.stop().await;
}
