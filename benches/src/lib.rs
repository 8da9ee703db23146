//! Shared fixtures for the benches: peers' engines set up the way their users set them up.
//!
//! Other engines' dependencies live in this `publish = false` crate so that no library
//! of ours ever links them.

mod launchdarkly_peer;
mod yggdrasil_peer;

pub use launchdarkly_peer::LaunchDarklyRollout;
pub use yggdrasil_peer::YggdrasilRollout;
