//! The in-process flag client: what applications link to evaluate flags.
//!
//! A [`Client`] holds an immutable, compiled [`flag_core::Snapshot`] behind an `ArcSwap`.
//! Evaluation is synchronous and costs nanoseconds: one lock-free load, flag-core's
//! allocation-free evaluator, and a per-thread count for metrics — it never waits on the
//! network. A background task follows flagd's `Sync.Watch` stream and swaps in a new
//! snapshot on every change; when flagd is away the client keeps serving the last flags it
//! had (or its cache file's) and reports [`Status::Stale`] while it reconnects.
//!
//! Several flagd replicas of one store can serve a client: given their endpoints
//! (`Client::builder("http://flagd-a:8013,http://flagd-b:8013")`), it follows the first that
//! answers and, when that one goes away, moves to the next at once and resumes from its
//! revision there, without a full snapshot ([`ClientBuilder::fallback_endpoints`]).
//!
//! # Layout
//!
//! Read bottom-up: each module uses only those above it in this list (and flag-core).
//!
//! - `status` — [`Status`], [`SyncStats`]; `backoff` — reconnection delays; `error` —
//!   [`ConnectError`], [`FileError`].
//! - `model` — the flag set as data, to which changes apply; `counters` — per-thread
//!   evaluation counts per flag and variant; `health_counters` — outcomes and latency
//!   buckets per flag and variant, counted the same way.
//! - `shared` — the state a client's clones and tasks share: the live snapshot, the status,
//!   the change notifications.
//! - `evaluate` — the hot path: flag-core's evaluation plus the count, and the holders that
//!   lend a snapshot to the typed getters of [`Evaluate`] ([`Current`] for several
//!   evaluations on one snapshot, [`CachedClient`] for hot loops). `metrics` flushes the
//!   counts and the client's gauges to the `metrics` crate; `subscribe` — [`Changes`],
//!   [`FlagChanges`]; `observe` — [`Observation`], a unit of work recorded when it ends.
//! - `files` — the cache file (atomic writes; a corrupt one is ignored) and offline flags
//!   files. `reporter` — health reports: numbered deltas of the counters, one in flight
//!   until flagd acknowledges it. `failover` — which endpoint to try next: another
//!   replica at once, `backoff` after a whole round failed. `follower` — the `Sync.Watch`
//!   follower: resume by revision, acknowledgements, health reports, heartbeat timeout,
//!   reconnection.
//! - `shadow` — where dark-launch candidates run, panics caught, stale or late jobs dropped;
//!   `dark_launch_figures` — the per-flag counts and timings behind [`DarkLaunchStats`];
//!   `dark_launch` — [`DarkLaunch`]: old and new paths by cohort, compared in the shadow.
//! - `settings` — [`ClientBuilder`]'s settings (endpoints, environment, token, timeouts, cache
//!   and offline files) and [`OnTimeout`].
//! - `client` — [`Client`]: evaluation (through [`Evaluate`], answers copied), status,
//!   subscriptions, dark launches and their figures.
//! - `start` — [`ClientBuilder::connect`]: follows flagd (from the cache file until it
//!   answers) and waits for the first snapshot or applies [`OnTimeout`], or serves and
//!   reloads an offline file.
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
//! use flag_sdk::{Evaluate, TestFlags};
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
mod client;
mod counters;
mod dark_launch;
mod dark_launch_figures;
mod error;
mod evaluate;
mod failover;
mod files;
mod follower;
mod health_counters;
mod metrics;
mod model;
mod observe;
mod reporter;
mod settings;
mod shadow;
mod shared;
mod start;
mod status;
mod subscribe;
mod test_flags;
#[cfg(feature = "test-server")]
mod test_server;

pub use client::Client;
pub use dark_launch::{DEFAULT_SHADOW_BUDGET, DarkLaunch, DarkLaunchStats};
pub use error::{ConnectError, FileError};
pub use evaluate::{CachedClient, Current};
/// flag-core's typed getters and what names a flag, re-exported: the client and its
/// holders implement [`Evaluate`].
pub use flag_core::{Evaluate, FlagRef, Outcome};
pub use observe::Observation;
pub use settings::{ClientBuilder, OnTimeout};
pub use status::{Status, SyncStats};
pub use subscribe::{Changes, FlagChanges};
pub use test_flags::TestFlags;
#[cfg(feature = "test-server")]
pub use test_server::{AdminToken, TestServer, TestServerError};
