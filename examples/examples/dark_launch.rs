//! `cargo run -p flag-examples --example dark_launch`: a new pricing implementation runs in
//! the shadow of the old one for the `dark` half of the users; the old answer is served,
//! the two are compared, and the mismatch rate printed. Then the flag is killed and the
//! shadow runs stop. Runs its own in-process flagd.

use std::time::Duration;

use anyhow::Context as _;
use flag_core::{Context, Flag};
use flag_sdk::TestServer;

/// The old implementation: floating-point money, rounded at the end.
fn price_old(quantity: u32, unit_cents: u32) -> u64 {
    let total = f64::from(quantity) * f64::from(unit_cents) / 100.0;
    let discounted = if quantity >= 100 { total * 0.9 } else { total };
    (discounted * 100.0).round() as u64
}

/// The new implementation: integer cents. It has a bug (the bulk discount starts one unit
/// late) and panics on an empty order — both show up in the shadow, and no user sees them.
fn price_new(quantity: u32, unit_cents: u32) -> u64 {
    assert!(quantity > 0, "empty order");
    let total = u64::from(quantity) * u64::from(unit_cents);
    if quantity > 100 { (total * 9 + 5) / 10 } else { total }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flag_examples::init_logging();
    // Shadow panics are caught and counted; keep them from printing a report each here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !std::thread::current().name().is_some_and(|name| name.starts_with("flag-sdk-shadow")) {
            default_hook(info);
        }
    }));
    let server = TestServer::start().await.context("starting an in-process flagd")?;
    // 0 % see the new path; 50 % run it in the shadow.
    server.put_flag(&Flag::dark_launch("new-pricing", 0.0, 50.0)?).await?;
    let client = server.client_builder().connect().await.context("starting the flag client")?;
    println!("flagd at {}; new-pricing: 0% on, 50% dark", server.endpoint());

    serve_requests(&client, 10_000).await;
    report(&client, "after 10,000 requests").await;

    let (revision, acknowledged) = server.kill("new-pricing", Duration::from_secs(5)).await?;
    println!("killed new-pricing (revision {revision}): {acknowledged} SDK acknowledged");
    serve_requests(&client, 10_000).await;
    report(&client, "after 10,000 more requests, killed").await;
    Ok(())
}

/// Requests as an async handler serves them. `run` is fine here: it returns the old price as
/// soon as `price_old` is done and never waits for the shadow, so it blocks this runtime
/// thread no longer than the old path alone would.
async fn serve_requests(client: &flag_sdk::Client, requests: u32) {
    for n in 0..requests {
        let user = format!("user-{n}");
        let (quantity, unit_cents) = (n % 150, 199 + n % 7);
        let price = client
            .dark_launch("new-pricing", &Context::new(&user))
            .run(move || price_old(quantity, unit_cents), move || price_new(quantity, unit_cents));
        std::hint::black_box(price);
        // Requests arrive over time, not all in one instant: in bursts of 8 (the shadow
        // queue's length), so the two shadow threads mostly keep up. A tighter loop only
        // raises the "skipped (overloaded)" figure: the shadow drops work, never the caller.
        if n % 8 == 7 {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    }
}

async fn report(client: &flag_sdk::Client, when: &str) {
    // Shadow runs finish after their requests were answered: let the last ones land.
    while client.dark_launch_stats("new-pricing").pending > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stats = client.dark_launch_stats("new-pricing");
    // Both totals cover the same shadow runs, so the means compare like for like.
    let mean =
        |micros: u64| if stats.shadow_runs == 0 { 0.0 } else { micros as f64 / stats.shadow_runs as f64 };
    println!(
        "{when}: shadow runs {}, mismatches {} (rate {:.2}%), candidate panics {}; skipped: {} overloaded, {} over budget, {} after a flag change; mean control {:.1} µs, candidate {:.1} µs",
        stats.shadow_runs,
        stats.mismatches,
        stats.mismatch_rate() * 100.0,
        stats.candidate_panics,
        stats.overloaded,
        stats.over_budget,
        stats.flag_changed,
        mean(stats.control_micros),
        mean(stats.candidate_micros),
    );
}
