//! Shared fixtures for the benches: our flag sets and user keys, and peers' engines set up
//! the way their users set them up.
//!
//! Other engines' dependencies live in this `publish = false` crate so that no library
//! of ours ever links them.

mod answers;
mod fixtures;
mod launchdarkly_peer;
mod server;
pub mod watchers;
mod yggdrasil_peer;

pub use answers::FirstAnswers;
pub use fixtures::{FLAG_COUNT, ROLLOUT_FLAG, TARGETED_FLAG, flag_set, simple_flags, snapshot, user_keys};
pub use launchdarkly_peer::LaunchDarklyRollout;
pub use server::{BenchServer, bench_flag, percentile_us};
pub use yggdrasil_peer::YggdrasilRollout;
