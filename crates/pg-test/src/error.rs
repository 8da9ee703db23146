//! What can go wrong starting or driving a cluster. Every variant carries what a person needs
//! to fix it without rerunning: the command line, its stderr, the server log's last lines.

use std::path::PathBuf;
use std::process::ExitStatus;

/// A cluster could not be started or driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process's shared cluster failed to start (see `shared`); each later call says so.
    #[error("the shared test cluster did not start: {error}")]
    Shared {
        /// The first start's error.
        error: String,
    },
    /// The server tools are missing and `CI_REQUIRES_POSTGRES=1` says the tests must run.
    #[error("CI_REQUIRES_POSTGRES=1 but PostgreSQL's server binaries are missing ({reason})")]
    Required {
        /// Why the tools were not found.
        reason: String,
    },
    /// A command could not be run at all (not found, not executable).
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not be run.
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {}{}", stderr.trim_end(), log_section(log_tail))]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// Its stderr.
        stderr: String,
        /// The server log's last lines, for `pg_ctl` (the server's own errors go there); else
        /// empty.
        log_tail: String,
    },
    /// A file or directory of the cluster could not be made, written or read.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "creating".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A free loopback port could not be found.
    #[error("finding a free loopback port: {0}")]
    Port(#[source] std::io::Error),
    /// A database name that would need quoting in SQL or escaping in a URL.
    #[error("database name {name:?}: expected 1-63 ASCII letters, digits or `_`, not starting with a digit")]
    InvalidName {
        /// The name asked for.
        name: String,
    },
}

fn log_section(tail: &str) -> String {
    if tail.is_empty() { String::new() } else { format!("\nlast lines of the server log:\n{tail}") }
}
