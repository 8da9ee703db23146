//! The dark-launch helper: cohorts get the right path, shadow panics and errors are
//! contained and counted, a slow candidate never holds a response past its budget, and a
//! kill stops shadow runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flag_core::{Context, LaunchStage};
use flag_sdk::{DarkLaunchStats, TestFlags};

/// A budget no healthy candidate reaches, even with the shadow threads shared by parallel
/// tests: the response waits only as long as the candidate takes.
const PATIENT: Duration = Duration::from_secs(5);

fn stats_of(flags: &TestFlags, key: &str) -> DarkLaunchStats {
    flags.client().dark_launch_stats(key)
}

#[test]
fn each_cohort_gets_its_path_and_only_dark_users_shadow_run() {
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
    // The on user's candidate and the dark user's shadow; not the off user's.
    assert_eq!(candidate_runs.load(Ordering::SeqCst), 2);
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.shadow_runs, stats.mismatches), (1, 1));
    assert_eq!(stats.mismatch_rate(), 1.0);
}

#[test]
fn shadow_panics_and_errors_are_contained_and_counted() {
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

    let stats = stats_of(&flags, "chat");
    assert_eq!(stats.shadow_runs, 3);
    assert_eq!(stats.candidate_panics, 1);
    assert_eq!(stats.candidate_errors, 1);
    // A panic or an error is not a mismatch: the comparison never ran.
    assert_eq!(stats.mismatches, 0);
}

#[test]
fn a_custom_comparison_decides_what_a_mismatch_is() {
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
    let stats = client.dark_launch_stats("search");
    assert_eq!((stats.shadow_runs, stats.mismatches), (2, 1));
}

#[test]
fn a_slow_candidate_is_dropped_after_the_budget() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let started = Instant::now();
    let answer = client.dark_launch("chat", &Context::new("u")).budget(Duration::from_millis(20)).run(
        || 1,
        || {
            std::thread::sleep(Duration::from_secs(1));
            1
        },
    );
    assert_eq!(answer, 1);
    // The response did not wait for the candidate's second.
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    let stats = client.dark_launch_stats("chat");
    assert_eq!((stats.over_budget, stats.shadow_runs), (1, 0));
}

#[test]
fn killing_the_flag_stops_shadow_runs_at_once() {
    let flags = TestFlags::new();
    flags.variant("chat", "dark");
    let client = flags.client();
    let user = Context::new("u");
    client.dark_launch("chat", &user).budget(PATIENT).run(|| 1, || 1);
    assert_eq!(client.dark_launch_stats("chat").shadow_runs, 1);

    flags.kill("chat");
    let launch = client.dark_launch("chat", &user);
    assert_eq!(launch.stage(), LaunchStage::Off);
    let answer = launch.run(|| 1, || -> i32 { unreachable!("no shadow run after a kill") });
    assert_eq!(answer, 1);
    assert_eq!(client.dark_launch_stats("chat").shadow_runs, 1);
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
    let panicking = async {
        tokio::task::yield_now().await;
        if user.key() == "u" {
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
}
