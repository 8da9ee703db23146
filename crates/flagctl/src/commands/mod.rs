//! One module per group of commands; `run` dispatches. The commands share only what lives
//! outside this directory (`reads`, `render`, `output`), never each other's modules.

mod apply;
mod bookmark;
mod diff;
mod environment;
mod eval;
mod export;
mod history;
mod kill;
mod log;
mod promote;
mod read;
mod restore;
mod rollout;
mod segment;
mod token;
mod watch;
mod write;

use clap::CommandFactory;
use flag_proto::Authorship;

use crate::cli::{ChangeArgs, Cli, Command};
use crate::connect::Server;
use crate::output::Output;

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { global, command } = cli;
    if let Command::Completions(args) = &command {
        clap_complete::generate(args.shell, &mut Cli::command(), "flagctl", &mut std::io::stdout());
        return Ok(());
    }
    let out = Output { json: global.json };
    // It needs no server.
    if let Command::Token(args) = command {
        return token::token(&out, args);
    }
    let server = Server::connect(&global).await?;
    let change = change(command.change());
    match command {
        Command::Set(args) => write::set(&server, &out, args, change).await,
        Command::Kill(args) => kill::kill(&server, &out, args, change).await,
        Command::Revive(args) => write::revive(&server, &out, args, change).await,
        Command::Delete(args) => write::delete(&server, &out, args, change).await,
        Command::Rollback(args) => write::rollback(&server, &out, args, change).await,
        Command::Get(args) => read::get(&server, &out, args).await,
        Command::List(args) => read::list(&server, &out, args).await,
        Command::History(args) => history::history(&server, &out, args).await,
        Command::Log(args) => log::log(&server, &out, args).await,
        Command::Eval(args) => eval::eval(&server, &out, args).await,
        Command::Apply(args) => apply::apply(&server, &out, args, change).await,
        Command::Export(args) => export::export(&server, args, out.json).await,
        Command::Diff(args) => diff::diff(&server, &out, args).await,
        Command::Promote(args) => promote::promote(&server, &out, args, change).await,
        Command::Bookmark(args) => bookmark::bookmark(&server, &out, args, change).await,
        Command::Restore(args) => restore::restore(&server, &out, args, change).await,
        Command::Env(command) => environment::run(&server, &out, command, change).await,
        Command::Rollout(command) => rollout::run(&server, &out, command, change).await,
        Command::Segment(command) => segment::run(&server, &out, command, change).await,
        Command::Watch => watch::watch(&server, &out).await,
        Command::Completions(_) | Command::Token(_) => Ok(()),
    }
}

/// Who and why, for a write (a read passes none and sends none). FLAGD_ACTOR is read here
/// rather than by clap, so that it never becomes `log --actor`, the filter that shares the
/// option's name.
fn change(given: Option<&ChangeArgs>) -> Authorship {
    let actor = given
        .and_then(|given| given.actor.clone())
        .filter(|actor| !actor.is_empty())
        .or_else(|| std::env::var("FLAGD_ACTOR").ok())
        .filter(|actor| !actor.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "flagctl".into());
    Authorship { actor, reason: given.map(|given| given.reason.clone()).unwrap_or_default() }
}
