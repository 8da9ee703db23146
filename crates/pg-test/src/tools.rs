//! Finding PostgreSQL's server tools and running them.
//!
//! `pg_config --bindir` names the directory of `initdb`, `pg_ctl` and `postgres` (Debian:
//! /usr/lib/postgresql/15/bin, which is not in `PATH`). PostgreSQL refuses to run as root, so
//! as root the server tools run as the `postgres` system user through `runuser`; client tools
//! (`psql`, `createdb`) connect over TCP with trust auth and run as whoever we are.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::Error;

/// The server tools a cluster needs; a directory without them is no server install
/// (`libpq-dev` alone ships a `pg_config` naming a bindir that has none of them).
const SERVER_TOOLS: &[&str] = &["initdb", "pg_ctl", "postgres"];

/// Prints to stderr, past libtest's capture (it captures only the print macros), why the
/// PostgreSQL tests are skipped: one line starting `skipped: PostgreSQL tests need`, once per
/// test binary so that a suite of skipped tests says it once.
pub fn skip_reason_line(reason: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let need = "PostgreSQL's server binaries, e.g. Debian's postgresql-15";
        drop(writeln!(std::io::stderr(), "skipped: PostgreSQL tests need {need} ({reason})"));
    });
}

/// Where the tools are and whom the server tools run as.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    bindir: PathBuf,
    /// True when we are root: server tools then run through `runuser -u postgres`.
    as_postgres: bool,
}

impl Tools {
    /// The tools, `Ok(Err(reason))` when they are not installed, or `Err` when we cannot even
    /// tell whom we run as.
    pub(crate) fn find() -> Result<Result<Tools, String>, Error> {
        let bindir = match bindir() {
            Ok(bindir) => bindir,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(Ok(Tools { bindir, as_postgres: is_root()? }))
    }

    /// Whether the server tools run as the `postgres` user (we are root).
    pub(crate) fn as_postgres(&self) -> bool {
        self.as_postgres
    }

    /// A server tool (`initdb`, `pg_ctl`), as the `postgres` user when we are root.
    pub(crate) fn server(&self, tool: &str) -> Command {
        let path = self.bindir.join(tool);
        if !self.as_postgres {
            return Command::new(path);
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    }

    /// A client tool (`psql`, `createdb`) from the same install as the server.
    pub(crate) fn client(&self, tool: &str) -> Command {
        Command::new(self.bindir.join(tool))
    }
}

/// Runs `command` to completion; its stdout, or `Failed` with its stderr.
pub(crate) fn run(command: &mut Command) -> Result<String, Error> {
    let Output { status, stdout, stderr } = output(command)?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        return Err(Error::Failed { command: describe(command), status, stderr, log_tail: String::new() });
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Runs `command` to completion, whatever its exit status.
pub(crate) fn output(command: &mut Command) -> Result<Output, Error> {
    command.stdin(std::process::Stdio::null());
    command.output().map_err(|source| Error::Spawn { command: describe(command), source })
}

/// The command line, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    let args = command.get_args().map(|arg| arg.to_string_lossy());
    std::iter::once(command.get_program().to_string_lossy()).chain(args).collect::<Vec<_>>().join(" ")
}

/// `pg_config --bindir` if it names the server tools, else the directory of an `initdb` in
/// `PATH` (through its symlinks: /usr/local/bin/initdb may point into the bindir).
fn bindir() -> Result<PathBuf, String> {
    let from_pg_config = match Command::new("pg_config").arg("--bindir").output() {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            match missing_tool(&dir) {
                None => return Ok(dir),
                Some(tool) => format!("`pg_config --bindir` names {} but it has no {tool}", dir.display()),
            }
        }
        Ok(out) => format!("`pg_config --bindir` failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("no pg_config in PATH: {e}"),
    };
    let initdb = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("initdb")).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|initdb| initdb.is_file());
    let Some(dir) = initdb.and_then(|initdb| Some(initdb.canonicalize().ok()?.parent()?.to_path_buf()))
    else {
        return Err(format!("{from_pg_config}; no initdb in PATH"));
    };
    match missing_tool(&dir) {
        None => Ok(dir),
        Some(tool) => Err(format!("{from_pg_config}; initdb's directory {} has no {tool}", dir.display())),
    }
}

fn missing_tool(dir: &Path) -> Option<&'static str> {
    SERVER_TOOLS.iter().copied().find(|tool| !dir.join(tool).is_file())
}

/// `id -u` is 0: POSIX, and no libc binding (this crate has no unsafe code).
fn is_root() -> Result<bool, Error> {
    Ok(run(Command::new("id").arg("-u"))?.trim() == "0")
}
