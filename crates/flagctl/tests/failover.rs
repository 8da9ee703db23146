//! `--server` with several addresses, replicas of one store: the first that connects serves
//! the command, a failure names every address, and `watch` moves on when its server dies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{Flagd, flagctl};

/// An address nothing listens on: a port the OS handed out, closed again.
fn closed_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn the_first_address_that_connects_serves_the_command() {
    let flagd = Flagd::start();
    let closed = closed_address();

    // Comma-separated in FLAGD_ADDR.
    let out = flagctl(&format!("{closed},{}", flagd.address), &["set", "chat", "--percent", "10"], &[]).ok();
    assert_eq!(out.trim(), "created chat (version 1, revision 1): 10% on, 90% off");
    // The option repeated, which replaces FLAGD_ADDR.
    let out =
        flagctl(&closed_address(), &["--server", &closed, "--server", &flagd.url(), "get", "chat"], &[]).ok();
    assert!(out.contains("serves:    10% on, 90% off"), "{out}");
    // Comma-separated in the option, the live one first.
    let out = flagctl(&closed, &["list", "--server", &format!("{},{closed}", flagd.address)], &[]).ok();
    assert!(out.lines().any(|l| l.starts_with("chat")), "{out}");
}

#[test]
fn when_no_address_connects_the_message_names_each_with_its_cause() {
    let (first, second) = (closed_address(), closed_address());
    let stderr = flagctl(&format!("{first},{second}"), &["list"], &[]).fails_with(6);
    assert!(stderr.contains("cannot reach flagd at any of the 2 addresses given"), "{stderr}");
    for address in [&first, &second] {
        let line = stderr.lines().find(|line| line.contains(address.as_str())).unwrap_or_default();
        assert!(line.trim().starts_with(&format!("http://{address}: ")), "{stderr}");
        assert!(line.contains("refused"), "the cause is given: {stderr}");
    }
    // Every address is checked before any is tried.
    let stderr = flagctl(&format!("{first},not a url"), &["list"], &[]).fails_with(4);
    assert!(stderr.contains("\"not a url\""), "{stderr}");
}

/// A child process that is killed when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines `read` prints, through a thread, so a process that prints nothing fails the
/// test instead of hanging it.
fn lines(read: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(read).lines() {
            let _ = sender.send(line.unwrap());
        }
    });
    lines
}

#[test]
fn watch_moves_to_the_next_address_when_its_server_dies_and_resumes_there() {
    let mut first = Flagd::start();
    first.flagctl(&["set", "chat", "--percent", "5"]).ok();
    let second = first.replica();
    let watch = Command::new(support::FLAGCTL)
        .args(["watch"])
        .env("FLAGD_ADDR", format!("{},{}", first.address, second.address))
        .env_remove("FLAGD_ENV")
        .env_remove("FLAGD_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch = KillOnDrop(watch);
    let stdout = lines(watch.0.stdout.take().unwrap());
    let stderr = lines(watch.0.stderr.take().unwrap());
    // Generous: each wait ends as soon as the line comes.
    let next =
        |lines: &mpsc::Receiver<String>| lines.recv_timeout(Duration::from_secs(10)).expect("a line in time");
    assert_eq!(next(&stdout), "watching production from revision 1 (Ctrl-C to stop)");

    // The first dies as SIGKILL leaves it; the second takes the next write.
    drop(first);
    let said = next(&stderr);
    assert!(said.contains(&format!("trying http://{}", second.address)), "{said}");
    second.flagctl(&["set", "chat", "--percent", "10", "--reason", "widen"]).ok();
    let line = next(&stdout);
    assert!(line.starts_with("r2    chat v2") && line.contains("widen"), "{line}");
    assert_eq!(next(&stdout).trim(), "→ 10% on, 90% off");
}
