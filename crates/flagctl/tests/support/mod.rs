//! The real `flagd` binary on 127.0.0.1:0 with a real redb file, and the real `flagctl`
//! binary run against it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub const FLAGCTL: &str = env!("CARGO_BIN_EXE_flagctl");

/// The flagd binary of this build: beside flagctl. `cargo test --workspace` builds it (flagd
/// has tests of its own); for `cargo test -p flagctl` it is built here when it is missing or
/// older than the sources it is built from.
pub fn flagd_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = Path::new(FLAGCTL).parent().unwrap();
        let binary = dir.join(format!("flagd{}", std::env::consts::EXE_SUFFIX));
        let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let sources = ["flagd", "flag-core", "flag-proto"].map(|name| crates.join(name));
        let newest_source = sources.iter().filter_map(|dir| newest(dir)).max();
        if built.is_none() || newest_source > built {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "flagd", "--bin", "flagd"])
                .status()
                .expect("running cargo to build flagd");
            assert!(status.success(), "building flagd failed");
        }
        binary
    })
}

/// The newest modification time of the files below `path`.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|entry| newest(&entry.ok()?.path())).max()
}

/// Starts flagd on `listen` with the store in `dir`; waits for its "listening" line.
fn spawn(dir: &tempfile::TempDir, listen: &str, args: &[&str]) -> (Child, String) {
    try_spawn(dir, listen, args).unwrap_or_else(|line| panic!("flagd did not say where it listens: {line:?}"))
}

/// Starts flagd on the address it had, in the store it had. The port was free a moment ago
/// but another test's process may hold it briefly (every test binds ports picked by the
/// OS), so a refused start is tried again for a few seconds.
fn spawn_again(dir: &tempfile::TempDir, listen: &str) -> Child {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match try_spawn(dir, listen, &[]) {
            Ok((child, address)) => {
                assert_eq!(address, listen);
                return child;
            }
            Err(line) if std::time::Instant::now() > deadline => {
                panic!("flagd did not start again on {listen}: {line:?}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

/// Starts flagd; its address, or the first line it printed when it printed no address.
fn try_spawn(dir: &tempfile::TempDir, listen: &str, args: &[&str]) -> Result<(Child, String), String> {
    let mut child = Command::new(flagd_binary())
        .arg("--data")
        .arg(dir.path().join("flags.redb"))
        .args(["--listen", listen, "--management", "127.0.0.1:0"])
        .args(["--sync-listen", "127.0.0.1:0", "--ofrep-listen", "127.0.0.1:0"])
        .args(args)
        .env("FLAGD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.split_whitespace().find_map(|word| word.strip_prefix("grpc="));
    match address {
        Some(address) => Ok((child, address.to_owned())),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(line)
        }
    }
}

/// A flagd process; killed when dropped.
pub struct Flagd {
    pub address: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Flagd {
    pub fn start() -> Flagd {
        Flagd::start_with(&[])
    }

    /// Starts flagd on a port picked by the OS, with extra arguments.
    pub fn start_with(args: &[&str]) -> Flagd {
        let dir = tempfile::tempdir().unwrap();
        let (child, address) = spawn(&dir, "127.0.0.1:0", args);
        Flagd { address, dir, child }
    }

    /// Kills flagd (as a crash would) and starts it again on the same address and store.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_again(&self.dir, &self.address);
    }

    /// A second flagd on a copy of this one's store, as a replica of one store would be: the
    /// same store id, flags and revisions as of now (a write from then on goes to one of
    /// them only). This one is killed for the copy and started again on a new port.
    pub fn replica(&mut self) -> Flagd {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(self.dir.path().join("flags.redb"), dir.path().join("flags.redb")).unwrap();
        let (child, address) = spawn(&dir, "127.0.0.1:0", &[]);
        let replica = Flagd { address, dir, child };
        (self.child, self.address) = spawn(&self.dir, "127.0.0.1:0", &[]);
        replica
    }

    /// `flagctl ARGS` against this server.
    pub fn flagctl(&self, args: &[&str]) -> Run {
        flagctl(&self.address, args, &[])
    }

    pub fn flagctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        flagctl(&self.address, args, env)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a flagctl run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "flagctl failed: {}{}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts exit code `code` and returns stderr.
    pub fn fails_with(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "expected exit {code}: stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        self.stderr
    }
}

pub fn flagctl(address: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    flagctl_in(None, address, args, env)
}

/// `flagctl ARGS` run in `dir` (relative file names are read from there).
pub fn flagctl_in(dir: Option<&Path>, address: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(FLAGCTL);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    for var in ["FLAGD_TOKEN", "FLAGD_ENV", "FLAGD_REASON", "FLAGD_ACTOR"] {
        command.env_remove(var);
    }
    command.env("FLAGD_ADDR", address).env("USER", "ana").args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
