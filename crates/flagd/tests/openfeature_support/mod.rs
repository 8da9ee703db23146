//! For the OpenFeature client tests: the pinned clients installed by `.ci/openfeature-clients`,
//! and one check script (`tests/openfeature/check.py`, `check.cjs`) run as a child process
//! that answers JSON lines.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as Json, json};

/// How long the script may take to connect and report ready (its own limit is 10 s).
const READY: Duration = Duration::from_secs(20);
/// How long one answer may take.
const ANSWER: Duration = Duration::from_secs(10);

/// A client language.
#[derive(Clone, Copy, Debug)]
pub enum Language {
    Python,
    JavaScript,
}

/// How the provider reaches flagd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Rpc,
    InProcess,
    Ofrep,
}

impl Mode {
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Rpc => "rpc",
            Mode::InProcess => "in-process",
            Mode::Ofrep => "ofrep",
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn clients() -> PathBuf {
    repo().join("target/openfeature-clients")
}

/// Runs `.ci/openfeature-clients` once per test process (it returns at once when the pinned
/// clients are already installed).
pub fn install() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let output = Command::new(repo().join(".ci/openfeature-clients"))
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run .ci/openfeature-clients: {error}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "installing the pinned OpenFeature clients failed ({}); they come from PyPI and npm, \
             so check that both registries are reachable. Its output:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    });
    if let Err(message) = outcome {
        panic!("{message}");
    }
}

/// One answer of the script, from the SDK's `get_*_details`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Answer {
    pub value: Json,
    pub variant: Option<String>,
    pub reason: Option<String>,
    pub error_code: Option<String>,
}

/// A running check script; killed when dropped.
pub struct Client {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Client {
    /// Starts the `language` script in `mode` against `host:port` and waits until its provider
    /// is ready.
    pub fn start(language: Language, mode: Mode, port: u16) -> Client {
        install();
        let scripts = repo().join("tests/openfeature");
        let mut command = match language {
            Language::Python => {
                let mut command = Command::new(clients().join("python/bin/python"));
                command.arg(scripts.join("check.py"));
                command
            }
            Language::JavaScript => {
                let mut command = Command::new("node");
                command.env("NODE_PATH", clients().join("node/node_modules")).arg(scripts.join("check.cjs"));
                command
            }
        };
        let mut child = command
            .args([mode.arg(), "127.0.0.1", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{language:?} check script starts: {error}"));
        let (send, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            // Only JSON lines are answers; anything else a library prints is not.
            for line in stdout.lines().map_while(Result::ok).filter(|line| line.starts_with('{')) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                collected.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdin = child.stdin.take();
        let mut client = Client { name: format!("{language:?} {}", mode.arg()), child, stdin, lines, stderr };
        let ready = client.receive(READY, "ready");
        assert_eq!(ready, json!({ "ready": true }), "{}: the provider reports ready", client.name);
        client
    }

    fn receive(&mut self, within: Duration, what: &str) -> Json {
        match self.lines.recv_timeout(within) {
            Ok(line) => {
                serde_json::from_str(&line).unwrap_or_else(|error| panic!("{}: {error}: {line}", self.name))
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200)); // let stderr arrive
                panic!(
                    "{}: no {what} answer within {within:?} (exit: {:?}); its stderr:\n{}",
                    self.name,
                    self.child.try_wait(),
                    self.stderr.lock().unwrap()
                )
            }
        }
    }

    fn request(&mut self, request: &Json, within: Duration) -> Json {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").and_then(|()| stdin.flush()).unwrap();
        self.receive(within, &request.to_string())
    }

    /// The answers to `questions`, in order.
    pub fn ask(&mut self, questions: &[Question]) -> Vec<Answer> {
        let asked: Vec<Json> = questions.iter().map(Question::to_json).collect();
        let reply = self.request(&json!({ "ask": asked }), ANSWER);
        serde_json::from_value(reply["answers"].clone())
            .unwrap_or_else(|e| panic!("{}: {e}: {reply}", self.name))
    }

    /// One answer.
    pub fn ask_one(&mut self, question: Question) -> Answer {
        self.ask(&[question]).remove(0)
    }

    /// Asks `question` until it answers `expect` or `within` passes: whether it did, and when.
    pub fn await_value(&mut self, question: Question, expect: Json, within: Duration) -> (bool, u64) {
        let request = json!({ "await": {
            "question": question.to_json(), "expect": expect, "timeout_ms": within.as_millis() as u64,
        }});
        let reply = self.request(&request, within + ANSWER);
        (reply["seen"] == json!(true), reply["ms"].as_u64().unwrap_or_default())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One evaluation the script makes.
#[derive(Debug, Clone)]
pub struct Question {
    pub flag: String,
    /// `bool`, `string`, `int`, `float` or `object`.
    pub kind: &'static str,
    pub default: Json,
    /// The evaluation context; `targetingKey` is the targeting key.
    pub context: Json,
}

impl Question {
    pub fn new(flag: &str, kind: &'static str, default: Json, context: Json) -> Question {
        Question { flag: flag.into(), kind, default, context }
    }

    fn to_json(&self) -> Json {
        json!({ "flag": self.flag, "type": self.kind, "default": self.default, "context": self.context })
    }
}

/// A flagd process, killed when dropped.
pub struct Flagd(pub Child);

impl Drop for Flagd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
