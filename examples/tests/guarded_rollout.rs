//! The guarded-rollout example's scenario, as `cargo run --example guarded_rollout` runs it:
//! flagd advances the plan on healthy reports and kills the flag by itself once the bad
//! build ships (`run` fails otherwise).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagd_advances_a_healthy_rollout_and_kills_the_bad_build_by_itself() {
    let hold = std::time::Duration::from_secs(2);
    if let Err(error) = flag_examples::guarded_rollout::run(hold).await {
        panic!("{error:#}");
    }
}
