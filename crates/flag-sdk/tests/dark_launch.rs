//! The dark-launch helper: cohorts get the right path, shadow panics and errors are
//! contained and counted, the response never waits for a candidate past its budget (`run`
//! not at all), and neither a kill nor a caller that gave up leaves shadow work to run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flag_core::{Context, LaunchStage};
use flag_sdk::{Client, DarkLaunchStats, TestFlags};

/// How long a test waits for something that should happen at once before failing.
const HANG: Duration = Duration::from_secs(30);
/// A budget no candidate reaches however loaded the machine: ten times longer than any
/// test waits for anything, so a shadow run given it is never dropped as over budget.
const PATIENT: Duration = Duration::from_secs(300);

/// The shadow threads are the process's, shared by every test here: tests that run closures
/// in the shadow take turns, so one that occupies the threads never starves another.
fn shadow_threads() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The figures once every shadow run of `key` has finished or been dropped.
fn settled(client: &Client, key: &str) -> DarkLaunchStats {
    let deadline = Instant::now() + HANG;
    loop {
        let stats = client.dark_launch_stats(key);
        if stats.pending == 0 {
            return stats;
        }
        assert!(Instant::now() < deadline, "shadow runs of {key} never settled: {stats:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Both shadow threads (the pool has two) held by `blocker` candidates until this is dropped.
struct Occupied {
    _releases: Vec<Sender<()>>,
}

fn occupy_shadow_threads(flags: &TestFlags) -> Occupied {
    flags.variant("blocker", "dark");
    let client = flags.client();
    let (started, has_started) = channel();
    let mut releases = Vec::new();
    for _ in 0..2 {
        let (release, released) = channel::<()>();
        let started = started.clone();
        client.dark_launch("blocker", &Context::new("u")).budget(PATIENT).run(
            || 0,
            move || {
                started.send(()).unwrap();
                // Until the `Occupied` is dropped (which disconnects the channel).
                let _ = released.recv_timeout(HANG);
                0
            },
        );
        releases.push(release);
    }
    for _ in 0..2 {
        has_started.recv_timeout(HANG).expect("a shadow thread took the blocker");
    }
    Occupied { _releases: releases }
}

#[test]
fn each_cohort_gets_its_path_and_only_dark_users_shadow_run() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "off").variant_for("chat", "on-user", "on").variant_for(
        "chat",
        "dark-user",
        "dark",
    );
    let client = flags.client();
    let candidate_runs = Arc::new(AtomicUsize::new(0));
    let run = |user: &str| {
        let runs = Arc::clone(&candidate_runs);
        client.dark_launch("chat", &Context::new(user)).budget(PATIENT).run(
            || "old",
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                "new"
            },
        )
    };
    assert_eq!(run("on-user"), "new");
    assert_eq!(run("off-user"), "old");
    assert_eq!(run("dark-user"), "old");
    let stats = settled(&client, "chat");
    // The on user's candidate and the dark user's shadow; not the off user's.
    assert_eq!(candidate_runs.load(Ordering::SeqCst), 2);
    assert_eq!((stats.shadow_runs, stats.mismatches), (1, 1));
    assert_eq!(stats.mismatch_rate(), 1.0);
}

#[test]
fn shadow_panics_and_errors_are_contained_and_counted() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let user = Context::new("user-1");

    let answer = client
        .dark_launch("chat", &user)
        .budget(PATIENT)
        .run(|| 7, || -> i32 { panic!("the new path is broken") });
    assert_eq!(answer, 7);
    let answer: Result<i32, String> =
        client.dark_launch("chat", &user).budget(PATIENT).try_run(|| Ok(7), || Err("timeout".into()));
    assert_eq!(answer, Ok(7));
    let answer = client.dark_launch("chat", &user).budget(PATIENT).run(|| 7, || 7);
    assert_eq!(answer, 7);

    let stats = settled(&client, "chat");
    assert_eq!(stats.shadow_runs, 3);
    assert_eq!(stats.candidate_panics, 1);
    assert_eq!(stats.candidate_errors, 1);
    // A panic or an error is not a mismatch: the comparison never ran.
    assert_eq!(stats.mismatches, 0);
}

#[test]
fn a_custom_comparison_decides_what_a_mismatch_is() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("search", "dark");
    let client = flags.client();
    let user = Context::new("user-1");
    let same_ignoring_case = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
    let answer = client.dark_launch("search", &user).budget(PATIENT).run_with(
        || "Result".to_owned(),
        || "RESULT".to_owned(),
        same_ignoring_case,
    );
    assert_eq!(answer, "Result");
    client.dark_launch("search", &user).budget(PATIENT).run_with(
        || "a".to_owned(),
        || "b".to_owned(),
        same_ignoring_case,
    );
    let stats = settled(&client, "search");
    assert_eq!((stats.shadow_runs, stats.mismatches), (2, 1));
}

#[test]
fn run_answers_with_the_control_without_waiting_for_the_candidate() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let (release, released) = channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let candidate_finished = Arc::clone(&finished);
    // The candidate cannot finish before the test releases it, after `run` returned (or,
    // were `run` to wait for it, after `HANG`).
    let answer = client.dark_launch("chat", &Context::new("u")).budget(PATIENT).run(
        || 1,
        move || {
            let _ = released.recv_timeout(HANG);
            candidate_finished.store(true, Ordering::SeqCst);
            2
        },
    );
    assert_eq!(answer, 1);
    // No clock involved: `run` answered while its candidate could not have finished.
    assert!(!finished.load(Ordering::SeqCst), "run waited for the candidate");
    release.send(()).unwrap();
    // The candidate still ran to the end and was compared, on the shadow thread.
    let stats = settled(&client, "chat");
    assert_eq!((stats.shadow_runs, stats.mismatches, stats.over_budget), (1, 1, 0));
}

#[test]
fn a_shadow_run_not_started_within_the_budget_is_abandoned() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let occupied = occupy_shadow_threads(&flags);

    let candidate_runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let runs = Arc::clone(&candidate_runs);
        let answer = client.dark_launch("chat", &Context::new("u")).budget(Duration::from_millis(20)).run(
            || 1,
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                1
            },
        );
        assert_eq!(answer, 1);
    }
    // Past every queued job's budget for sure (a sleep is at least this long).
    std::thread::sleep(Duration::from_millis(200));
    drop(occupied);

    let stats = settled(&client, "chat");
    assert_eq!(candidate_runs.load(Ordering::SeqCst), 0, "a candidate ran for a request long answered");
    assert_eq!((stats.over_budget, stats.shadow_runs), (5, 0));
    settled(&client, "blocker");
}

#[test]
fn killing_the_flag_stops_shadow_runs_at_once() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let user = Context::new("u");
    client.dark_launch("chat", &user).budget(PATIENT).run(|| 1, || 1);
    assert_eq!(settled(&client, "chat").shadow_runs, 1);

    flags.kill("chat");
    let launch = client.dark_launch("chat", &user);
    assert_eq!(launch.stage(), LaunchStage::Off);
    let answer = launch.run(|| 1, || -> i32 { unreachable!("no shadow run after a kill") });
    assert_eq!(answer, 1);
    assert_eq!(settled(&client, "chat").shadow_runs, 1);
}

#[test]
fn killing_the_flag_drops_the_shadow_runs_still_queued() {
    let _turn = shadow_threads();
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let occupied = occupy_shadow_threads(&flags);

    let candidate_runs = Arc::new(AtomicUsize::new(0));
    for n in 0..5 {
        let runs = Arc::clone(&candidate_runs);
        let user = format!("user-{n}");
        let answer = client.dark_launch("chat", &Context::new(&user)).budget(PATIENT).run(
            || 1,
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
                1
            },
        );
        assert_eq!(answer, 1);
    }
    assert_eq!(client.dark_launch_stats("chat").pending, 5, "queued behind the blockers");
    flags.kill("chat");
    drop(occupied);

    let stats = settled(&client, "chat");
    assert_eq!(candidate_runs.load(Ordering::SeqCst), 0, "a candidate ran after the kill");
    assert_eq!((stats.flag_changed, stats.shadow_runs, stats.over_budget), (5, 0, 0));
    settled(&client, "blocker");
}

#[tokio::test(start_paused = true)]
async fn async_candidates_run_beside_the_control_within_the_budget() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let user = Context::new("u");
    let budget = Duration::from_millis(50);

    // Both take 30 ms side by side: the answer comes after 30 ms, not 60.
    let started = tokio::time::Instant::now();
    let control = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        "old"
    };
    let candidate = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        "new"
    };
    assert_eq!(client.dark_launch("chat", &user).budget(budget).run_async(control, candidate).await, "old");
    assert_eq!(started.elapsed(), Duration::from_millis(30));

    // A candidate still running after the budget is dropped: the answer waits the budget only.
    let started = tokio::time::Instant::now();
    let slow = async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        "old"
    };
    assert_eq!(
        client.dark_launch("chat", &user).budget(budget).run_async(async { "old" }, slow).await,
        "old"
    );
    assert_eq!(started.elapsed(), budget);

    // A panicking candidate future is contained.
    let key = user.key().to_owned();
    let panicking = async move {
        tokio::task::yield_now().await;
        if key == "u" {
            panic!("the new path is broken");
        }
        Ok("new")
    };
    let answer: Result<&str, ()> =
        client.dark_launch("chat", &user).try_run_async(async { Ok("old") }, panicking).await;
    assert_eq!(answer, Ok("old"));

    let stats = client.dark_launch_stats("chat");
    assert_eq!(stats.shadow_runs, 2);
    assert_eq!(stats.mismatches, 1);
    assert_eq!(stats.over_budget, 1);
    assert_eq!(stats.candidate_panics, 1);
    assert_eq!(stats.pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_blocking_its_thread_does_not_hold_the_async_response() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let control = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        "old"
    };
    // Blocking work inside a poll: nothing can interrupt it, only keep it off the response's
    // path. It blocks until the test releases it, after the answer (or, were the answer to
    // wait for it, after `HANG`).
    let (release, released) = channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let candidate_finished = Arc::clone(&finished);
    let candidate = async move {
        let _ = released.recv_timeout(HANG);
        candidate_finished.store(true, Ordering::SeqCst);
        "new"
    };
    let answer = client
        .dark_launch("chat", &Context::new("u"))
        .budget(Duration::from_millis(20))
        .run_async(control, candidate)
        .await;
    assert_eq!(answer, "old");
    // No clock involved: the answer came while the candidate could not have finished.
    assert!(!finished.load(Ordering::SeqCst), "the answer waited for the blocked candidate");
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.over_budget, stats.shadow_runs), (1, 0));
    // Frees the blocked worker thread, which the runtime waits for when it shuts down.
    drop(release);
}

/// Sends when dropped: shows that a candidate future was dropped (aborted), not left running.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(signal) = self.0.take() {
            let _ = signal.send(());
        }
    }
}

/// A candidate that would take a minute, counting if it ever finishes.
fn minute_candidate(
    finished: &Arc<AtomicUsize>,
) -> (impl Future<Output = u8> + Send + 'static, tokio::sync::oneshot::Receiver<()>) {
    let (signal, dropped) = tokio::sync::oneshot::channel();
    let finished = Arc::clone(finished);
    let candidate = async move {
        let _signal = DropSignal(Some(signal));
        tokio::time::sleep(Duration::from_secs(60)).await;
        finished.fetch_add(1, Ordering::SeqCst);
        2
    };
    (candidate, dropped)
}

#[tokio::test(start_paused = true)]
async fn an_async_candidate_is_aborted_when_the_caller_stops_waiting() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let user = Context::new("u");
    let finished = Arc::new(AtomicUsize::new(0));

    // At the budget.
    let (candidate, dropped) = minute_candidate(&finished);
    let answer = client
        .dark_launch("chat", &user)
        .budget(Duration::from_millis(20))
        .run_async(async { 1 }, candidate)
        .await;
    assert_eq!(answer, 1);
    // Were it still running, paused time would run it to its end while this waits.
    dropped.await.unwrap();

    // When the caller's own future is dropped mid-control (e.g. a request timeout).
    let (candidate, dropped) = minute_candidate(&finished);
    let slow_control = async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        1
    };
    let given_up = tokio::time::timeout(
        Duration::from_millis(10),
        client.dark_launch("chat", &user).budget(PATIENT).run_async(slow_control, candidate),
    )
    .await;
    assert!(given_up.is_err());
    dropped.await.unwrap();

    assert_eq!(finished.load(Ordering::SeqCst), 0, "an abandoned candidate ran to its end");
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.over_budget, stats.shadow_runs, stats.pending), (1, 0, 0));
}

#[tokio::test]
async fn an_async_candidate_does_not_start_once_its_flag_changed() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let started = Arc::new(AtomicUsize::new(0));
    let candidate = {
        let started = Arc::clone(&started);
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            2
        }
    };
    // On this current-thread runtime the spawned candidate cannot start before the control
    // yields, and this control kills the flag without yielding.
    let control = async {
        flags.kill("chat");
        1
    };
    let answer =
        client.dark_launch("chat", &Context::new("u")).budget(PATIENT).run_async(control, candidate).await;
    assert_eq!(answer, 1);
    assert_eq!(started.load(Ordering::SeqCst), 0, "a candidate started after the kill");
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.flag_changed, stats.shadow_runs), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn an_in_task_candidate_may_borrow_and_need_not_be_send() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let request = std::rc::Rc::new("old".to_owned());
    let candidate = async {
        tokio::task::yield_now().await;
        request.to_uppercase()
    };
    let answer = client
        .dark_launch("chat", &Context::new("u"))
        .budget(PATIENT)
        .run_async_in_task_with(async { request.to_string() }, candidate, |a, b| a.eq_ignore_ascii_case(b))
        .await;
    assert_eq!(answer, "old");
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.shadow_runs, stats.mismatches), (1, 0));
}
