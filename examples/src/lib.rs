//! Runnable examples of the SDK, in `examples/`:
//!
//! - `quickstart` — connects to flagd, evaluates a flag for ten users every second, and
//!   shows each change (`flagctl set quickstart --percent 50`) as it lands.
//! - `kill_switch` — a small HTTP service whose `/recommendations/{user}` endpoint is
//!   guarded by a flag that `flagctl kill recommendations` turns off live.
//! - `dark_launch` — a new pricing implementation shadow-run beside the old one, printing
//!   the mismatch rate; runs its own in-process flagd.
//! - `guarded_rollout` — several clients report their requests' outcomes while flagd ramps
//!   a plan, advances it while the new path is healthy and kills it by itself once a bad
//!   build ships; runs its own in-process flagd. The scenario is [`guarded_rollout`], which
//!   the crate's test runs too.
//!
//! The commands are in the README's "The SDK (flag-sdk)" section.

pub mod guarded_rollout;

/// The flagd address: `FLAGD_ADDR` (as `flagctl` reads it), else the default.
pub fn flagd_address() -> String {
    std::env::var("FLAGD_ADDR").unwrap_or_else(|_| "http://127.0.0.1:8013".into())
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, and the SDK's info lines).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,flag_sdk=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
