//! Throwaway PostgreSQL clusters for tests: each one is initdb'd into its own temp dir, listens
//! on its own free loopback port with trust auth, and is stopped and deleted on drop.
//!
//! A crate of its own so every crate testing against PostgreSQL (the store, its outage and
//! durability tests, benches) starts the server the same way, with the same settings. It
//! drives Debian's server tools (`initdb`, `pg_ctl`) rather than a container, so a test needs
//! nothing but the `postgresql-15` package. Missing server tools skip with one clear line,
//! unless `CI_REQUIRES_POSTGRES=1` (CI sets it, see `.ci/postgres`) makes that a failure.
//!
//! # Layout
//! - `tools` — finding the server tools (`pg_config --bindir`) and running them, as the
//!   `postgres` user when we are root, since PostgreSQL refuses to run as root.
//! - `cluster` — [`Cluster`]: initdb, start on a free port, restarts and outages, drop.
//! - `shared` — [`shared`]: one cluster per test process, stopped by a watchdog at exit;
//!   [`fresh_schema`]: a schema of its own on it for each test.
//! - `error` — [`Error`], which carries the failed command's stderr and the server log's tail.
//!
//! ```
//! # fn main() -> Result<(), pg_test::Error> {
//! let Some(cluster) = pg_test::Cluster::start()? else { return Ok(()) };
//! let url = cluster.create_database("flags")?;
//! assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/flags", cluster.port()));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod cluster;
mod error;
mod shared;
mod tools;

pub use cluster::Cluster;
pub use error::Error;
pub use shared::{fresh_schema, shared};
pub use tools::skip_reason_line;
