//! Shared fixtures for the benches: our flag sets and user keys, peers' engines set up the
//! way their users set them up, the floor an evaluation is measured against, and
//! the ratios between figures (criterion's estimates read back, or two loops timed in turn).
//!
//! Other engines' dependencies live in this `publish = false` crate so that no library
//! of ours ever links them.

mod answers;
mod clients;
mod estimates;
mod fixtures;
mod floor;
mod hop;
mod interleaved;
mod launchdarkly_peer;
mod server;
mod watchers;
mod yggdrasil_peer;

pub use answers::FirstAnswers;
pub use clients::sdk_fleet;
pub use estimates::median_ns;
pub use fixtures::{FLAG_COUNT, ROLLOUT_FLAG, TARGETED_FLAG, flag_set, simple_flags, snapshot, user_keys};
pub use floor::FloorTable;
pub use hop::{HopRun, hop_latencies};
pub use interleaved::{Interleaved, interleaved};
pub use launchdarkly_peer::LaunchDarklyRollout;
pub use server::{BenchServer, bench_flag, percentile_us};
pub use watchers::{Receipts, now_ns, open_watchers};
pub use yggdrasil_peer::YggdrasilRollout;
