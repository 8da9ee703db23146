//! `cargo run -p flag-examples --example guarded_rollout [-- --hold 2s]`: a guarded rollout
//! judged by flagd on the health reports of real SDK clients (see
//! `flag_examples::guarded_rollout`). It prints each step and the decision, and exits 0
//! when flagd advanced the plan while the new path was healthy and killed it by itself once
//! a bad build shipped, 1 otherwise.

use std::time::Duration;

use anyhow::{Context as _, bail};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flag_examples::init_logging();
    flag_examples::guarded_rollout::run(hold_argument()?).await
}

/// `--hold DURATION` (default 2 s): each step's hold.
fn hold_argument() -> anyhow::Result<Duration> {
    let mut args = std::env::args().skip(1);
    let mut hold = Duration::from_secs(2);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--hold" => {
                let text = args.next().context("--hold: expected a duration, e.g. 2s")?;
                hold = parse_seconds(&text)
                    .with_context(|| format!("--hold: expected a duration like 2s, found {text:?}"))?;
            }
            _ => bail!("unexpected argument {arg:?}; usage: guarded_rollout [--hold 2s]"),
        }
    }
    Ok(hold)
}

fn parse_seconds(text: &str) -> Option<Duration> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    (seconds > 0.0 && seconds.is_finite()).then(|| Duration::from_secs_f64(seconds))
}
