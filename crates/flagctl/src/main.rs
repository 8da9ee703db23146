//! `flagctl`: the operator's CLI for flagd.
//!
//! # Layout
//!
//! - `cli` — the command line (clap), with the exit codes.
//! - `connect` — the connection to flagd: address, deadlines, and flag-proto's bearer
//!   interceptor for the token.
//! - `failure` — errors with exit codes of their own, and what a server answer means (the
//!   metadata names come from flag-proto, as flagd sets them).
//! - `commands` — one module per group of commands. A command never calls another's module:
//!   what several share is below.
//! - `reads` — the reads commands share: the environment at one revision, a page of the log.
//! - `render` — flags, serves, history and write reports as a person reads them.
//! - `changes` — the planned or committed changes of an apply or a restore, with diffs.
//! - `output` — where an answer goes: text or `--json`, on stdout (a closed pipe is an error).
//! - `times` — a time on the command line (RFC 3339 or a duration ago) as the milliseconds a
//!   request carries.
//! - `flag_file` — reading a flag file, with line numbers for its errors (flag-core's
//!   `LineIndex`).
//!
//! The commands never spell out a protocol message: requests are built from domain values by
//! flag-proto's `Requests` (`Server::requests`), and answers are read back as flag-core values
//! through its conversions (`HistoryPage`, `Written`, `Answer` …).
//!
//! Imports run one way: `commands` → `reads`, `changes` → `render`, `output`, `flag_file`,
//! `times`, `connect` → `failure`, `cli`.

mod changes;
mod cli;
mod commands;
mod connect;
mod failure;
mod flag_file;
mod output;
mod reads;
mod render;
mod times;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::failure::Failure;

fn main() -> ExitCode {
    let version = flag_proto::version_text(env!("CARGO_PKG_VERSION"));
    let matches = cli::Cli::command().version(version).get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("flagctl: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`flagctl log | head`): not a failure of the command.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        // The differences are the output: nothing to add on stderr.
        Err(error) if matches!(error.downcast_ref::<Failure>(), Some(Failure::Differs)) => ExitCode::from(1),
        Err(error) => {
            eprintln!("flagctl: {error:#}");
            let code = error.downcast_ref::<Failure>().map_or(1, Failure::exit_code);
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
