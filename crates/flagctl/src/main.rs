//! `flagctl`: the operator's CLI for flagd.
//!
//! # Layout
//!
//! - `cli` — the command line (clap), with the exit codes.
//! - `connect` — the connection to flagd: address, token, deadlines.
//! - `failure` — errors with exit codes of their own, and what a server answer means.
//! - `commands` — one module per group of commands.
//! - `render` — flags, serves and history as a person reads them.
//! - `flag_file` and `yaml_lines` — reading a flag file, with line numbers for its errors.

mod cli;
mod commands;
mod connect;
mod failure;
mod flag_file;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
