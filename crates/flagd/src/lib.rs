//! flagd — the flag server.
//!
//! Stores flags per environment in one redb file, keeps every version with who, when and
//! why, and streams every committed change to connected SDKs over gRPC.
//!
//! # Layout
//!
//! - `store` — the durable store: one redb write transaction per change (flag row, history
//!   row, change-log row, revision bump), validated by flag-core before it touches the file.
//! - `admin` — the `flags.v1.Admin` service. It destructures the requests tonic hands it and
//!   answers through flag-proto's builders from domain values; it builds no message itself.
//! - `status` — `RequestError`: every way a request or stream fails,
//!   and the one mapping of errors to a gRPC status (code, message, metadata).
//! - `write_client` — what a write knows of its client (its deadline, whether it is still
//!   there), so a write whose client has gone is not committed; shared by the writing calls.
//! - `point_in_time` — `Admin.PointInTimeRestore`, through the store's restore. `points` —
//!   a revision, time or bookmark made the revision it names. `bookmarks` — `Admin`'s
//!   bookmark calls.
//! - `environment_diff` — `Admin.Diff`: two sides from one read, compared by flag-core.
//! - `environment_promote` — `Admin.Promote`, through the store's promote.
//! - `audit_log` — `Admin.QueryLog`: the audit log, filtered and paged, from the store's query.
//! - `evaluate` — `Admin.Evaluate` on a compiled snapshot of the stored set.
//! - `fanout` — per-environment `watch` channels holding the latest change, encoded once.
//! - `sync`, `watch_stream` — the `flags.v1.Sync.Watch` stream: one task per stream,
//!   catch-up from the store, heartbeats, slow-client handling; frames come from flag-proto.
//!
//! - `openfeature` — OpenFeature flagd's contracts for its unmodified providers: the
//!   evaluation services v1/v2 with `EventStream` (RPC resolver), the sync service
//!   (in-process resolver, flagd flag JSON from `openfeature-json`) and OFREP; each
//!   environment's flags compiled once per revision by a follower of `fanout`.
//! - `intercept` — the interceptor in front of every gRPC service: the caller on the request.
//! - `health` — SDK health reports aggregated per environment, flag, variant and window;
//!   the figures the rollout guard reads, and their bounded `/metrics` text.
//! - `acks` — connected SDKs and the revisions they acknowledged (the kill switch's report).
//!   `fleet` — the same across the flagds of one PostgreSQL store: each reports its SDKs,
//!   and a kill counts them all.
//! - `relay` — `flagd relay`: Sync served from a mirror of an upstream flagd, acknowledgements
//!   forwarded upstream, Admin reads proxied, a cache file; `sync_source` is what `sync`'s
//!   streams read from (a store, or a relay's mirror).
//! - `replica` — on a store several flagds share, streams the others' commits to this one's
//!   SDKs through `fanout`.
//! - `principal` — named tokens (role, environments) and the one access decision, pure.
//!   `tokens_file` — reading the tokens file, naming the path and line of each problem.
//! - `auth` — a request's bearer token made its principal (SHA-256 digests compared in
//!   constant time); the principals in force, reloaded on SIGHUP (`reload`), and an open
//!   stream's watch over its own access.
//! - `admin_access` — the Admin service behind its access check: each call checked against
//!   its caller before `admin` runs it.
//! - `management` — `/healthz`, `/readyz` (503 with the cause while the store cannot commit),
//!   `/metrics`, and the web console.
//! - `console` — the web console under `/ui/`: server-rendered pages over the Admin service,
//!   signed in with a token, following the change feed.
//! - `store_check` — [`check_store`]: the start-up check of a store file, for `flagd check`.
//! - `tls` — the certificate and key checked at start, and the management port's TLS listener.
//! - `webhooks` — change notifications: per webhook, a task POSTing every committed change
//!   after its cursor in the store's outbox, signed, retried with backoff, woken by `fanout`.
//! - `rollout` — guarded rollouts: `guard`, the pure decision rule comparing a new path's
//!   cohort with its control over the same window; `decide`, its verdict made a plan's
//!   move; `engine`, the task that holds, judges and moves every running plan through the
//!   store; `calls`, the Admin API's rollout calls.
//! - `server` — wiring and the start-up checks; [`serve`] is what the tests run, and
//!   [`serve_reporting`] tells the binary when everything is bound and open.
//!
//! The store answers in flag-core's records (history entries, applied changes, change
//! batches), which flag-proto puts on the wire as they are. Outside `store`, imports run one
//! way: `server` → `admin_access` → the services (`admin`, `sync`) → `fanout`, `acks`,
//! `evaluate`, `auth`, `status`, `state`; `server` → `openfeature` (whose services read
//! `state`, `auth`, `acks` and the store like ours); none of those imports a service; `status` imports
//! nothing of the crate but the store and `principal`, `evaluate` and `acks` nothing but the
//! store, and `principal` nothing at all. `server` also starts `webhooks`, which reads
//! `state` and the store, and the rollout engine, which reads `state` (the store, the health
//! figures, `fanout` to wake and publish, `acks`); `admin` calls `rollout`'s calls, which
//! import what a service does. `config` names only webhooks' leaf `config`.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), flagd::ServeError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = flagd::Config::new("./flagd-data/flags.redb");
//! flagd::serve(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

#![forbid(unsafe_code)]
// The store's tests are compiled twice, once per backend (see `store::tests`); the lint
// sees each file loaded twice, which is the point.
#![cfg_attr(test, allow(clippy::duplicate_mod))]

mod acks;
mod admin;
mod admin_access;
mod audit_log;
mod auth;
mod bookmarks;
mod ca_file;
mod coalescing_io;
mod config;
mod console;
mod environment_diff;
mod environment_promote;
mod environments;
mod evaluate;
mod fanout;
#[cfg(test)]
mod fanout_writes_tests;
mod fleet;
mod health;
mod intercept;
mod management;
mod openfeature;
mod point_in_time;
mod points;
mod principal;
#[cfg(test)]
mod queued_deadline_tests;
mod relay;
mod reload;
mod replica;
mod rollout;
mod server;
mod state;
mod status;
mod store;
mod store_check;
mod sync;
mod sync_source;
mod tls;
mod tokens_file;
mod watch_stream;
mod webhooks;
mod write_client;

pub use ca_file::{CaFile, CaFileError};
pub use config::{Config, DEFAULT_DATA, PostgresStore, TlsIdentity};
pub use relay::{RelayConfig, serve_relay};
pub use rollout::{Breach, Cohort, GuardKind, GuardSettings, Shortfall, Verdict, judge};
pub use server::{
    Listeners, Ready, ServeError, serve, serve_listeners, serve_reporting, serve_with_management,
};
pub use store_check::{CheckError, StoreReport, check_store};
pub use tls::TlsError;
pub use webhooks::{Webhook, WebhookFormat, WebhookSpecError};
