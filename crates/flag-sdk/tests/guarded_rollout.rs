//! A guarded rollout against a real flagd, driven by what a real client reports: the plan
//! advances while the new path's outcomes look like the old path's, and is killed by flagd
//! itself once the new path fails — the client then serves the old path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_core::{Context, Flag, OnBreach, RolloutPlan, RolloutState};
use flag_proto::{Authorship, Requests, RolloutInfo};
use flag_sdk::{Client, Evaluate, Outcome, TestServer};

/// Generous: the waits end as soon as flagd has decided; only a failure waits this long.
const WAIT: Duration = Duration::from_secs(30);

/// One unit of work per user in `users`: the new path fails one time in `fail_every` (never
/// with 0), the old path never.
fn serve(client: &Client, users: std::ops::Range<u32>, fail_every: u32) {
    for user in users {
        let key = format!("user-{user}");
        let ctx = Context::new(&key);
        let outcome = if client.is_enabled("chat", &ctx) && fail_every > 0 && user % fail_every == 0 {
            Outcome::Error
        } else {
            Outcome::Success
        };
        client.record_outcome("chat", &ctx, outcome);
    }
}

async fn status(server: &TestServer) -> RolloutInfo {
    let request = Requests::new("production").get_rollout("chat");
    let status = server.admin().await.unwrap().get_rollout(request).await.unwrap().into_inner();
    RolloutInfo::try_from(status).unwrap()
}

/// Serves traffic (`fail_every` as in [`serve`]) until `done` holds of the plan.
async fn serve_until(
    server: &TestServer,
    client: &Client,
    fail_every: u32,
    what: &str,
    done: impl Fn(&RolloutInfo) -> bool,
) -> RolloutInfo {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut next_user = 0;
    loop {
        let info = status(server).await;
        if done(&info) {
            return info;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting until {what}: {info:?}");
        serve(client, next_user..next_user + 500, fail_every);
        next_user += 500;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_advances_on_healthy_reports_and_flagd_kills_it_when_the_new_path_fails() {
    let server = TestServer::start().await.unwrap();
    server.put_flag(&Flag::rollout("chat", 0.0).unwrap()).await.unwrap();
    let client = server.client_builder().report_interval(Duration::from_millis(50)).connect().await.unwrap();
    let plan = RolloutPlan {
        steps: vec![20.0, 50.0, 100.0],
        hold_ms: 1_000,
        max_hold_ms: 20_000,
        dark_percent: None,
        min_samples: 200,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 2.0,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    };
    let by = Authorship { actor: "ana".into(), reason: "ship chat".into() };
    let request = Requests::new("production").start_rollout("chat", &plan, by);
    server.admin().await.unwrap().start_rollout(request).await.unwrap();

    let advanced = serve_until(&server, &client, 0, "the plan advances", |info| info.rollout.step == 1).await;
    assert_eq!(advanced.rollout.state, RolloutState::Running);
    // The status shows the cohorts of the window being judged, as the client reported them.
    let judged = serve_until(&server, &client, 0, "the status shows both cohorts", |info| {
        info.cohorts.iter().filter(|cohort| cohort.evaluations > 0 && cohort.successes > 0).count() == 2
    })
    .await;
    assert!(judged.window_since_ms > 0, "{judged:?}");
    let variants: Vec<&str> = judged.cohorts.iter().map(|cohort| cohort.variant.as_str()).collect();
    assert_eq!(variants, ["off", "on"]);
    let at_half =
        (0..1_000).filter(|user| client.is_enabled("chat", &Context::new(&format!("user-{user}")))).count();
    assert!((400..600).contains(&at_half), "the client serves the second step: {at_half} of 1,000 on");

    // The new path now fails one time in four.
    let stopped = serve_until(&server, &client, 4, "the guard trips", |info| {
        info.rollout.state != RolloutState::Running
    })
    .await;
    let RolloutState::RolledBack { why } = &stopped.rollout.state else {
        panic!("{:?}", stopped.rollout.state)
    };
    assert!(why.starts_with("rollout breach at step 2/3 (50 %), killed: error rate of on"), "{why}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while (0..100).any(|user| client.is_enabled("chat", &Context::new(&format!("user-{user}")))) {
        assert!(tokio::time::Instant::now() < deadline, "the client never saw the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
