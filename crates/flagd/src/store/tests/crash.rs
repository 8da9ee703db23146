//! Crash consistency: a write acknowledged is a write kept, even when the process is killed
//! mid-stream.
//!
//! The test re-runs itself as a child (the same test, by name, with the store path in
//! `CHILD_ENV`): the child writes in a loop and prints `acked <version> <percent>` after each
//! write returns. One test entry, whichever way it is run: run alone it is the parent. The parent SIGKILLs it at a varying moment, reopens the file (redb recovers it to
//! its last commit) and checks that every acknowledged write is there. Several cycles run on
//! the same file, so recovery itself is recovered from.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

const CHILD_ENV: &str = "FLAGD_STORE_CRASH_CHILD";
const KEY: &str = "crash";

/// The child's part: writes until killed (or for 20 s, should the parent die first).
fn write_until_killed(path: &str) {
    let store = Store::open(Path::new(path), StoreOptions::default()).unwrap();
    let started = Instant::now();
    // Bounded, in case the parent dies without killing us.
    while started.elapsed() < Duration::from_secs(20) {
        let current = store.flag(ENV, KEY).unwrap().map_or(0, |record| record.flag.version);
        let percent = (current % 100) as f64;
        let op = WriteOp::PutFlag { flag: rollout(KEY, percent), expected_version: Some(current) };
        let committed = store.write(ENV, op, &meta("crash test")).unwrap();
        // A segment write between flag writes, so recovery covers more than one table pair.
        if current.is_multiple_of(3) {
            let included = format!("user-{current}");
            store
                .write(ENV, WriteOp::PutSegment { segment: segment("seen", &[&included]) }, &meta("x"))
                .unwrap();
        }
        println!("acked {} {percent}", committed.entry.version);
    }
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        write_until_killed(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.redb");
    let this_test =
        format!("{}::every_acknowledged_write_survives_sigkill", module_path!().split_once("::").unwrap().1);
    let mut acked: Vec<(u64, f64)> = Vec::new();
    for cycle in 0..5u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([this_test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut read_acks = |acked: &mut Vec<(u64, f64)>, until: Option<usize>| {
            for line in lines.by_ref() {
                let line = line.unwrap();
                if let Some(rest) = line.strip_prefix("acked ") {
                    let (version, percent) = rest.split_once(' ').unwrap();
                    acked.push((version.parse().unwrap(), percent.parse().unwrap()));
                    if until.is_some_and(|until| acked.len() >= until) {
                        return;
                    }
                }
            }
        };
        // Wait for a few acknowledgements (more each cycle), then kill at a moment that
        // varies with the clock: mid-commit, mid-print or between writes.
        let until = acked.len() + 3 + 4 * cycle as usize;
        read_acks(&mut acked, Some(until));
        let jitter = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() % 4_000_000;
        std::thread::sleep(Duration::from_nanos(jitter.into()));
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements printed before the kill are still in the pipe.
        read_acks(&mut acked, None);

        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let (last, _) = *acked.last().expect("the child acknowledged no write: did it run?");
        let version = store.flag(ENV, KEY).unwrap().unwrap().flag.version;
        assert!(version >= last, "cycle {cycle}: version {version} lost acknowledged version {last}");
        let history = store.flag_history(ENV, KEY, None, usize::MAX).unwrap();
        for &(acked_version, percent) in &acked {
            let entry = history.iter().find(|e| e.version == acked_version);
            let entry =
                entry.unwrap_or_else(|| panic!("cycle {cycle}: acknowledged version {acked_version} lost"));
            assert_eq!(entry.flag.as_ref().unwrap().default, rollout(KEY, percent).default);
        }
        assert_consistent(&store);
    }
    assert!(acked.len() >= 5 * 3, "{} acknowledgements", acked.len());
}
