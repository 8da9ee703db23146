//! The guarded-rollout scenario of `examples/guarded_rollout.rs` (and its test): an
//! in-process flagd and a small service of several clients serving simulated traffic; each
//! request runs the new path (`on`) or the old one (`off`) and tells its client how it went.
//! A plan ramps `chat` through 1, 5, 25, 50 and 100 %, holding each step for `hold`.
//!
//! The first build of the new path fails as often as the old one (0.5 %): the cohorts look
//! alike and the plan advances. At 25 % a second build ships whose new path fails 3 % of the
//! time; flagd compares `on` with `off` over the same window and kills the flag by itself.
//! Time is compressed by `hold` only: flagd's own decision code runs, on the figures the
//! clients report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use flag_core::{Context, Flag, OnBreach, RolloutPlan, RolloutState};
use flag_proto::{Authorship, Requests, RolloutInfo};
use flag_sdk::{Client, Evaluate, Outcome, TestServer};

/// SDK clients in the service (one per instance of it).
const CLIENTS: usize = 4;
/// Requests each client serves per second.
const RATE: u64 = 2_000;
/// The old path's failure rate, and the first build's new path's.
const BASELINE_FAILURES: f64 = 0.005;
/// The second build's new path.
const BAD_BUILD_FAILURES: f64 = 0.03;
/// The step (an index into the plan's steps) at which the bad build ships.
const BAD_BUILD_AT_STEP: usize = 2;

/// Runs the scenario with holds of `hold`, printing each step and the decision; `Ok` only
/// when flagd advanced while the new path was healthy and then killed it by itself.
pub async fn run(hold: Duration) -> anyhow::Result<()> {
    let server = TestServer::start().await.context("starting an in-process flagd")?;
    server.put_flag(&Flag::rollout("chat", 0.0)?).await?;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let builder = server.client_builder().report_interval(hold / 8);
        clients.push(builder.connect().await.context("starting a flag client")?);
    }
    let bad_build = Arc::new(AtomicBool::new(false));
    for (index, client) in clients.iter().enumerate() {
        tokio::spawn(serve_traffic(client.clone(), index as u64, Arc::clone(&bad_build)));
    }

    let plan = RolloutPlan {
        steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
        hold_ms: millis(hold),
        max_hold_ms: millis(hold * 4),
        dark_percent: None,
        min_samples: 150,
        max_error_ratio: 1.5,
        max_latency_p99_ratio: 2.0,
        max_error_rate: None,
        max_latency_p99_us: None,
        on_breach: OnBreach::Kill,
    };
    let mut admin = server.admin().await?;
    let requests = Requests::new("");
    let by = Authorship { actor: "release-bot".into(), reason: "ship chat".into() };
    admin.start_rollout(requests.start_rollout("chat", &plan, by)).await.context("starting the plan")?;
    println!(
        "flagd at {}; {CLIENTS} clients serving {} requests/s; plan: chat through 1, 5, 25, 50, 100 %, {} s each",
        server.endpoint(),
        CLIENTS as u64 * RATE,
        hold.as_secs_f64()
    );

    let started = Instant::now();
    let mut shown = None;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = admin.get_rollout(requests.get_rollout("chat")).await?.into_inner();
        let info = RolloutInfo::try_from(status).context("a malformed plan status")?;
        let rollout = &info.rollout;
        let now = (rollout.step, rollout.state.clone());
        if shown.as_ref() != Some(&now) {
            print_status(&info, started);
            shown = Some(now);
        }
        if rollout.step >= BAD_BUILD_AT_STEP && !bad_build.swap(true, Ordering::Relaxed) {
            println!(
                "{:>5.1}s  build 2 of the new path ships: it now fails {:.1} % of requests",
                started.elapsed().as_secs_f64(),
                BAD_BUILD_FAILURES * 100.0
            );
        }
        match &rollout.state {
            RolloutState::Running => {}
            RolloutState::RolledBack { .. } => break,
            other => bail!("expected the guard to kill chat, but the plan is {other:?}"),
        }
        if started.elapsed() > hold * 40 {
            bail!("the plan did not reach a decision in {:?}", hold * 40);
        }
    }

    // The kill reached every client: nobody runs the new path any more.
    let user = Context::new("user-7");
    let on = clients.iter().filter(|client| client.is_enabled("chat", &user)).count();
    let advanced = shown.map_or(0, |(step, _)| step);
    if on > 0 || advanced < BAD_BUILD_AT_STEP {
        bail!(
            "expected chat killed everywhere after advancing to step {BAD_BUILD_AT_STEP}: {on} clients still on"
        );
    }
    println!("chat is killed on all {CLIENTS} clients: they serve the old path again");
    Ok(())
}

/// One client's traffic: `RATE` requests a second in bursts every 10 ms, each on the path
/// its user's cohort gets, failing at that path's rate, reported with `record_outcome`.
async fn serve_traffic(client: Client, seed: u64, bad_build: Arc<AtomicBool>) {
    let mut random = fastrand::Rng::with_seed(seed);
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let per_tick = RATE / 100;
    loop {
        ticks.tick().await;
        for _ in 0..per_tick {
            let key = format!("user-{}", random.u32(..1_000_000));
            let user = Context::new(&key);
            let failure_rate = if client.is_enabled("chat", &user) && bad_build.load(Ordering::Relaxed) {
                BAD_BUILD_FAILURES
            } else {
                BASELINE_FAILURES
            };
            let outcome = if random.f64() < failure_rate { Outcome::Error } else { Outcome::Success };
            client.record_outcome("chat", &user, outcome);
        }
    }
}

fn print_status(info: &RolloutInfo, started: Instant) {
    let rollout = &info.rollout;
    let at = started.elapsed().as_secs_f64();
    let steps = rollout.plan.steps.len();
    let percent = rollout.plan.steps[rollout.step];
    match &rollout.state {
        RolloutState::Running => println!("{at:>5.1}s  step {}/{steps}: {percent} % on", rollout.step + 1),
        RolloutState::RolledBack { why } => println!("{at:>5.1}s  rolled back by the guard: {why}"),
        other => println!("{at:>5.1}s  {other:?}"),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
