//! [`shared`]: one cluster for a whole test process.
//!
//! A test binary with many PostgreSQL tests starts one server and gives each test a
//! database of its own, instead of a server each. Statics are never dropped, so the
//! cluster cannot stop itself: a watchdog shell, started with it, waits for the test
//! process to exit and then stops the server and deletes its dir.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Cluster, Error};

/// The process's cluster, started on first use: `Ok(None)` (after the skip line) when
/// PostgreSQL is not installed, as [`Cluster::start`].
pub fn shared() -> Result<Option<&'static Cluster>, Error> {
    static SHARED: OnceLock<Result<Option<Cluster>, String>> = OnceLock::new();
    let started = SHARED.get_or_init(|| {
        let cluster = Cluster::start().map_err(|error| error.to_string())?;
        if let Some(cluster) = &cluster {
            cluster.watch_process().map_err(|error| error.to_string())?;
        }
        Ok(cluster)
    });
    match started {
        Ok(cluster) => Ok(cluster.as_ref()),
        Err(error) => Err(Error::Shared { error: error.clone() }),
    }
}

/// A schema of its own on the process's cluster, named `prefix` and a counter, as a URL
/// (see [`Cluster::create_schema`]): `Ok(None)` when PostgreSQL is not installed.
pub fn fresh_schema(prefix: &str) -> Result<Option<String>, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(cluster) = shared()? else { return Ok(None) };
    cluster.create_schema(&format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::Relaxed))).map(Some)
}

impl Cluster {
    /// Starts the watchdog that stops this cluster once the current process has exited.
    fn watch_process(&self) -> Result<(), Error> {
        let stop = self.stop_command();
        let mut words = vec![stop.get_program().to_string_lossy().into_owned()];
        words.extend(stop.get_args().map(|arg| arg.to_string_lossy().into_owned()));
        // `$1` is our pid, `$2` the dir to delete, the rest the stop command.
        let script = "pid=$1; dir=$2; shift 2; while kill -0 \"$pid\" 2>/dev/null; do sleep 1; done; \
                      \"$@\" >/dev/null 2>&1; rm -rf \"$dir\"";
        Command::new("sh")
            .args(["-c", script, "pg-test-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.dir_path())
            .args(words)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|source| Error::Spawn { command: "sh (the cluster's watchdog)".into(), source })
    }
}
