//! The in-process flag client: what applications link to evaluate flags.
//!
//! A [`Client`] holds an immutable, compiled [`flag_core::Snapshot`] behind an `ArcSwap`.
//! Evaluation is synchronous and costs nanoseconds: one lock-free load, flag-core's
//! allocation-free evaluator, and a per-thread count for metrics — it never waits on the
//! network. A background task follows flagd's `Sync.Watch` stream and swaps in a new
//! snapshot on every change; when flagd is away the client keeps serving the last flags it
//! had (or its cache file's) and reports [`Status::Stale`] while it reconnects.
//!
//! # Layout
//!
//! - `builder` — [`ClientBuilder`]: endpoint, environment, token, timeouts, cache and offline
//!   files; `connect` waits for the first snapshot or applies [`OnTimeout`].
//! - `client` — [`Client`]: evaluation, status, subscriptions. `evaluate` — the hot path
//!   ([`Current`] for several evaluations on one snapshot, [`CachedClient`] for hot loops).
//! - `counters` — per-thread evaluation counts per flag and variant; `metrics` flushes them
//!   and the client's gauges to the `metrics` crate in the background.
//! - `shared` — the state a client's clones and tasks share; `model` — the flag set as data,
//!   to which changes apply.
//! - `follower` — the `Sync.Watch` follower: resume by revision, acknowledgements, heartbeat
//!   timeout, reconnection with `backoff`. `status` — [`Status`]. `subscribe` — [`Changes`],
//!   [`FlagChanges`].
//! - `files` — the cache file (atomic writes; a corrupt one is ignored) and offline flags files.
//! - `dark_launch` — [`DarkLaunch`]: old and new paths by cohort, compared in the shadow;
//!   `shadow` — where shadow candidates run, panics caught, stale or late jobs dropped;
//!   `dark_launch_figures` — the per-flag counts and timings behind [`DarkLaunchStats`].
//! - `test_flags` — [`TestFlags`], forced flags without a server; `test_server` — with the
//!   `test-server` feature, [`TestServer`], a real flagd in the test process.
//!
//! # Why the test server is a feature
//!
//! Applications' integration tests want a real flagd on a random port, driven the way
//! production drives it. Depending on the `flagd` library only under `test-server` (enabled
//! from `[dev-dependencies]`) keeps the server and its store out of every application
//! binary, which is the direction the architecture wants dependencies to point, without a
//! separate crate that would have to mirror this one's builder.
//!
//! # Example
//!
//! ```
//! use flag_core::{Context, LaunchStage};
//! use flag_sdk::TestFlags;
//!
//! // In production: `Client::builder("http://127.0.0.1:8013").cache_file(…).connect().await?`.
//! let flags = TestFlags::new();
//! flags.enable("new-search").variant("chat", "dark");
//! let client = flags.client();
//!
//! let user = Context::new("user-42");
//! if client.is_enabled("new-search", &user) {
//!     // the new path
//! }
//! // Hot loops pre-resolve the flag.
//! let search = client.handle("new-search");
//! let mut cached = client.cached();
//! assert!(cached.is_enabled(&search, &user));
//!
//! // A dark launch: `dark` users get the old answer while the new one runs in the shadow.
//! let answer = client.dark_launch("chat", &user).run(|| 2 + 2, || 4);
//! assert_eq!(answer, 4);
//! assert_eq!(client.launch_stage("chat", &user), LaunchStage::Dark);
//! assert_eq!(client.dark_launch_stats("chat").mismatches, 0);
//! ```

#![forbid(unsafe_code)]

mod backoff;
mod builder;
mod client;
mod counters;
mod dark_launch;
mod dark_launch_figures;
mod error;
mod evaluate;
mod files;
mod follower;
mod metrics;
mod model;
mod shadow;
mod shared;
mod status;
mod subscribe;
mod test_flags;
#[cfg(feature = "test-server")]
mod test_server;

pub use builder::{ClientBuilder, OnTimeout};
pub use client::Client;
pub use dark_launch::{DEFAULT_SHADOW_BUDGET, DarkLaunch, DarkLaunchStats};
pub use error::{ConnectError, FileError};
pub use evaluate::{CachedClient, Current, FlagKey};
pub use status::{Status, SyncStats};
pub use subscribe::{Changes, FlagChanges};
pub use test_flags::TestFlags;
#[cfg(feature = "test-server")]
pub use test_server::{AdminToken, TestServer, TestServerError};
