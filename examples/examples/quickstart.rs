//! `cargo run -p flag-examples --example quickstart`: evaluate a flag in a loop and watch
//! `flagctl set quickstart --percent 50` change the answers live.

use std::time::Duration;

use anyhow::Context as _;
use flag_core::Context;
use flag_sdk::{Client, Evaluate, OnTimeout};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flag_examples::init_logging();
    let address = flag_examples::flagd_address();
    let mut builder = Client::builder(&address)
        .client_name("quickstart")
        .start_timeout(Duration::from_secs(3), OnTimeout::Serve);
    if let Ok(token) = std::env::var("FLAGD_SDK_TOKEN") {
        builder = builder.token(token);
    }
    let client = builder.connect().await.context("starting the flag client")?;
    println!(
        "following {address} ({}); try `flagctl set quickstart --percent 50` — Ctrl-C ends",
        client.status()
    );

    let users: Vec<String> = (1..=10).map(|n| format!("user-{n}")).collect();
    // A handle skips the key lookup; it stays valid as the flag changes.
    let quickstart = client.handle("quickstart");
    let mut changes = client.flag_changes("quickstart");
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            revision = changes.changed() => {
                println!("-- quickstart changed (revision {})", revision.unwrap_or_default());
            }
            _ = ticks.tick() => {}
        }
        let current = client.current();
        let row: String = users
            .iter()
            .map(|user| if current.is_enabled(&quickstart, &Context::new(user)) { '#' } else { '.' })
            .collect();
        let on = row.chars().filter(|c| *c == '#').count();
        println!(
            "revision {:>3} users 1-10: {row}  ({on} of 10 on); {}",
            current.revision(),
            client.status()
        );
    }
}
