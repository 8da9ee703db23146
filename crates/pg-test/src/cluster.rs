//! [`Cluster`]: one PostgreSQL server in its own temp dir on its own loopback port.
//!
//! The settings live in `pg-test.conf`, included from the data dir's `postgresql.conf`, rather
//! than in `pg_ctl -o`: pg_ctl hands `-o` to `/bin/sh`, which a temp path need not be safe in,
//! and a file makes every later `pg_ctl start` and `restart` use the same settings unrepeated.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::Error;
use crate::tools::{Tools, run, skip_reason_line};

/// Another process may take the free port between our probe and the server's bind; a new
/// port then almost always works, so a few attempts suffice.
const START_ATTEMPTS: u32 = 5;
/// Seconds pg_ctl waits for a start, restart or stop (crash recovery included).
const PG_CTL_WAIT: &str = "30";
/// Server log lines an error shows.
const LOG_TAIL_LINES: usize = 20;

/// A PostgreSQL cluster in a temp dir on a free loopback port, with trust auth for the
/// `postgres` superuser; stopped (`pg_ctl stop -m immediate`) and deleted on drop.
///
/// Each cluster has its own dir, sockets and port, so parallel tests can each run one.
#[derive(Debug)]
pub struct Cluster {
    tools: Tools,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    /// Held for its `Drop`, which deletes everything once our `Drop` has stopped the server.
    dir: TempDir,
}

impl Cluster {
    /// Runs initdb into a new temp dir and starts the server; returns once it accepts
    /// connections.
    ///
    /// `Ok(None)`, after [`skip_reason_line`], when PostgreSQL's server binaries are not
    /// installed (no `pg_config --bindir` or `initdb` with `pg_ctl` and `postgres` beside it);
    /// an [`Error::Required`] instead when `CI_REQUIRES_POSTGRES=1`. Any other failure is an
    /// error carrying the failed command's stderr and the server log's last lines.
    ///
    /// As root, the server runs as the `postgres` user, which must be able to reach the temp
    /// dir (`TMPDIR`, else /tmp): a `TMPDIR` under /root fails initdb with "Permission denied".
    pub fn start() -> Result<Option<Cluster>, Error> {
        Self::start_with(free_port)
    }

    /// [`Cluster::start`], trying the ports `next_port` gives (tests give taken ones).
    fn start_with(mut next_port: impl FnMut() -> Result<u16, Error>) -> Result<Option<Cluster>, Error> {
        let tools = match Tools::find()? {
            Ok(tools) => tools,
            Err(reason) if std::env::var("CI_REQUIRES_POSTGRES").is_ok_and(|v| v == "1") => {
                return Err(Error::Required { reason });
            }
            Err(reason) => {
                skip_reason_line(&reason);
                return Ok(None);
            }
        };
        let temp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir_in(&temp)
            .map_err(|source| Error::Io { what: "creating a temp dir in", path: temp, source })?;
        if tools.as_postgres() {
            // tempfile makes the dir 0700 and ours; the server (the `postgres` user) writes its
            // data dir, log and sockets in it. /tmp, its parent, lets everyone through.
            run(std::process::Command::new("chown").arg("postgres:postgres").arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let log = dir.path().join("log");
        let mut cluster = Cluster { tools, port: 0, data, log, dir };
        cluster.initdb()?;
        append(&cluster.data.join("postgresql.conf"), "\ninclude 'pg-test.conf'\n")?;
        let mut attempt = 1;
        loop {
            cluster.port = next_port()?;
            cluster.write_settings()?;
            match cluster.pg_ctl(&["start"]) {
                Ok(()) => return Ok(Some(cluster)),
                Err(Error::Failed { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("could not bind") =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser, trusted on loopback.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The loopback port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data dir (`PGDATA`), e.g. to look at its files after a crash.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Creates database `name` (`createdb`) and returns its URL. `name` must be ASCII letters,
    /// digits and `_`, not starting with a digit, so that neither SQL nor the URL need quoting.
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        check_name(name)?;
        let mut createdb = self.tools.client("createdb");
        createdb.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name]);
        run(&mut createdb)?;
        Ok(self.url_for(name))
    }

    /// Creates schema `name` in the `postgres` database and returns a URL whose connections
    /// use it (`search_path`): a store of its own in milliseconds, where a database takes a
    /// copy of the template. `name` as for [`Cluster::create_database`].
    pub fn create_schema(&self, name: &str) -> Result<String, Error> {
        check_name(name)?;
        let mut psql = self.tools.client("psql");
        psql.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"]);
        psql.args(["-v", "ON_ERROR_STOP=1", "-qc", &format!("CREATE SCHEMA {name}")]);
        run(&mut psql)?;
        Ok(format!("{}?options=-csearch_path%3D{name}", self.url()))
    }

    /// Crashes and restarts the server (`pg_ctl restart -m immediate`): nothing is flushed at
    /// shutdown, so the restart runs crash recovery from the WAL. Returns once it accepts
    /// connections again, on the same port.
    pub fn restart_immediate(&self) -> Result<(), Error> {
        self.pg_ctl(&["-m", "immediate", "restart"])
    }

    /// Crashes the server (`pg_ctl stop -m immediate`) and leaves it down, for outage tests;
    /// [`Cluster::start_again`] brings it back.
    pub fn stop_immediate(&self) -> Result<(), Error> {
        self.pg_ctl(&["-m", "immediate", "stop"])
    }

    /// Starts the stopped server again on the same port (`pg_ctl start -w`), returning once
    /// it accepts connections. An error if something else took the port meanwhile.
    pub fn start_again(&self) -> Result<(), Error> {
        self.pg_ctl(&["start"])
    }

    fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn initdb(&self) -> Result<(), Error> {
        let initdb = |locale: &str| {
            let mut initdb = self.tools.server("initdb");
            initdb.arg("-D").arg(&self.data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", locale]);
            // A throwaway cluster need not survive a power cut during initdb; the server
            // itself runs with fsync on.
            initdb.arg("--no-sync").current_dir(self.dir.path());
            run(&mut initdb)
        };
        match initdb("--locale=C.UTF-8") {
            Err(Error::Failed { stderr, .. }) if stderr.contains("locale") => {
                // initdb removes what it made on failure; make sure, as it needs an empty dir.
                match std::fs::remove_dir_all(&self.data) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::Io { what: "removing", path: self.data.clone(), source: e });
                    }
                    _ => {}
                }
                initdb("--no-locale").map(drop)
            }
            result => result.map(drop),
        }
    }

    /// Turns TLS on with this certificate and key (PEM), without a restart (`pg_ctl
    /// reload`). Clients may still connect in plaintext; `sslmode=require` makes them use TLS.
    pub fn enable_tls(&self, certificate_pem: &str, key_pem: &str) -> Result<(), Error> {
        for (name, text) in [("server.crt", certificate_pem), ("server.key", key_pem)] {
            let path = self.data.join(name);
            std::fs::write(&path, text).map_err(|source| Error::Io {
                what: "writing",
                path: path.clone(),
                source,
            })?;
            // The server refuses a key that others may read.
            run(std::process::Command::new("chmod").arg("0600").arg(&path))?;
            if self.tools.as_postgres() {
                run(std::process::Command::new("chown").arg("postgres:postgres").arg(&path))?;
            }
        }
        let settings = "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
        append(&self.data.join("pg-test.conf"), settings)?;
        self.pg_ctl(&["reload"])?;
        // The reload is signalled, not awaited: wait until the server has read it.
        for _ in 0..100 {
            let mut psql = self.tools.client("psql");
            psql.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"]);
            psql.args(["-tAc", "SHOW ssl"]);
            if run(&mut psql).is_ok_and(|shown| shown.trim() == "on") {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(Error::Io {
            what: "waiting for the server to turn TLS on, per",
            path: self.data.join("pg-test.conf"),
            source: std::io::Error::other("`SHOW ssl` still says off"),
        })
    }

    /// (Re)writes `pg-test.conf` for the current port.
    fn write_settings(&self) -> Result<(), Error> {
        let sockets = quote(&self.dir.path().display().to_string());
        let settings = format!(
            "# Rewritten for each start attempt, each on a new port.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             # Not /var/run/postgresql, which may not exist and is shared with other clusters.\n\
             unix_socket_directories = {sockets}\n\
             # Tests measure durability: commits must really reach the disk.\n\
             fsync = on\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n",
            self.port
        );
        let path = self.data.join("pg-test.conf");
        std::fs::write(&path, settings).map_err(|source| Error::Io { what: "writing", path, source })
    }

    /// The command that stops the server at once (`pg_ctl stop -m immediate`).
    pub(crate) fn stop_command(&self) -> std::process::Command {
        let mut pg_ctl = self.tools.server("pg_ctl");
        pg_ctl.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        pg_ctl
    }

    /// The temp dir holding the data dir, the log and the sockets.
    pub(crate) fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `pg_ctl -D data -l log -w -t 30 <action>`; a failure carries the lines the server
    /// logged meanwhile, which is where the server's own reasons go.
    fn pg_ctl(&self, action: &[&str]) -> Result<(), Error> {
        let logged_before = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let mut pg_ctl = self.tools.server("pg_ctl");
        pg_ctl.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-w", "-t", PG_CTL_WAIT]);
        pg_ctl.args(action).current_dir(self.dir.path());
        match run(&mut pg_ctl) {
            Ok(_) => Ok(()),
            Err(Error::Failed { command, status, stderr, .. }) => {
                Err(Error::Failed { command, status, stderr, log_tail: self.log_since(logged_before) })
            }
            Err(e) => Err(e),
        }
    }

    /// The last lines of the server log past byte `offset`.
    fn log_since(&self, offset: u64) -> String {
        let Ok(log) = std::fs::read(&self.log) else { return String::new() };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
        let new = String::from_utf8_lossy(&log[start..]);
        let lines: Vec<&str> = new.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Best effort: an error here (already stopped) leaves nothing to clean up but files.
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::Port)?;
    Ok(listener.local_addr().map_err(Error::Port)?.port())
}

/// A postgresql.conf string literal.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn append(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    let io = |source| Error::Io { what: "appending to", path: path.to_path_buf(), source };
    let mut file = std::fs::OpenOptions::new().append(true).open(path).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)
}

fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    // 63 bytes: PostgreSQL's identifier limit (NAMEDATALEN - 1); longer names are truncated.
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(Error::InvalidName { name: name.to_string() })
    }
}

#[cfg(test)]
mod tests;
