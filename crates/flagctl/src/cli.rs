//! The command line: global options and one subcommand per job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Exit codes, documented once for `--help` and the README.
const EXIT_CODES: &str = "\
Exit codes:
  0  done (`diff`: the two sides are the same)
  1  any other failure (the message says what); `diff`: the two sides differ
  2  bad command line
  3  flag, segment or version not found
  4  invalid input (the message names the field, and the line for `apply`)
  5  version conflict: someone changed the flag (or environment) first; read it again
  6  server unreachable (the message names each address tried, with its cause)
  7  unauthorized: missing or wrong token, or its principal may not do this (the message
     names the principal and the environment)
  8  killed, but not every connected SDK acknowledged in time
  9  refused: the flag is not in a state the command applies to (e.g. revive of a live flag)
 10  a write timed out: outcome unknown; the message names the revision to check
 11  flagd's store cannot commit now (disk full, I/O error): nothing was applied; retry once its /readyz is ready";

/// The operator's CLI for flagd: rollouts, the kill switch, history, rollback, apply/export.
#[derive(Debug, Parser)]
#[command(name = "flagctl", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The flagd gRPC address, `host:port` or a URL. Several, comma-separated or with the
    /// option repeated, for replicas of one store: tried in order, the first that connects
    /// serves the whole command (`watch` moves on to the next when its stream is lost).
    #[arg(
        long = "server",
        value_name = "ADDRESS",
        global = true,
        env = "FLAGD_ADDR",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8013"
    )]
    pub(crate) servers: Vec<String>,
    /// For an `https://` server: trust this CA certificate (PEM) instead of the system roots.
    #[arg(long, global = true, env = "FLAGD_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// The admin token (sent as `authorization: Bearer …`).
    #[arg(long, global = true, env = "FLAGD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// The environment.
    #[arg(long = "env", global = true, env = "FLAGD_ENV", default_value = flag_proto::DEFAULT_ENVIRONMENT)]
    pub(crate) environment: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// How long to try to reach the server (each address of `--server`), and to wait for
    /// any one answer.
    #[arg(long, global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Set a flag's rollout (creating an on/off flag if it is missing), or serve one variant.
    Set(SetArgs),
    /// Turn a flag off for everyone now, and report which SDKs applied it.
    Kill(KillArgs),
    /// Switch a killed flag back on, serving what it served before the kill.
    Revive(KeyWriteArgs),
    /// Show a flag: state, rollout, rules, variants, version, last change.
    Get(KeyArgs),
    /// List the environment's flags.
    List(ListArgs),
    /// A flag's versions, newest first, with who, when and why.
    History(HistoryArgs),
    /// Every change in the environment (or in all), newest first, filtered by flag, actor,
    /// time and action; `--format jsonl` prints each with its content before and after.
    Log(LogArgs),
    /// Restore an earlier version of a flag (as a new version).
    Rollback(RollbackArgs),
    /// Evaluate a flag for a user: variant, value and why.
    Eval(EvalArgs),
    /// Make the environment match a flag file, in one transaction.
    Apply(ApplyArgs),
    /// Print the environment as a flag file that `apply` takes back.
    Export(ExportArgs),
    /// What differs between two environments, or one at two points (`production@r120`,
    /// `production@2026-12-01T10:00:00Z`, `production@-1h`), flag by flag and field by field.
    /// Exits 0 when they are the same, 1 when they differ.
    Diff(DiffArgs),
    /// Promote flags from one environment to another — their rules, default, variants,
    /// prerequisites and metadata, never the kill state — in one transaction on the target.
    Promote(PromoteArgs),
    /// Name an environment's current revision (`bookmark production pre-deploy-4711`), for
    /// `restore --to NAME` and `diff production@NAME …`; `bookmark list [ENV]` lists them.
    Bookmark(BookmarkArgs),
    /// Put a whole environment back to how it was at an earlier revision or time, in one
    /// transaction (each change a new version; flags killed since stay killed).
    Restore(RestoreArgs),
    /// Environments: `env list`, `env create NAME [--from ENV]`, `env describe NAME`,
    /// `env delete NAME [--force]`. Every other command names one that exists (`--env`).
    #[command(subcommand)]
    Env(EnvCommand),
    /// Guarded rollouts: `rollout start KEY --steps 1,5,25,50,100 --hold 10m …` stores a plan
    /// that flagd runs by itself — each step held, the new path's cohort (on, dark) judged
    /// against the control (off) over the same window, advanced, paused, or acted on at once
    /// when it hurts; `rollout status [KEY]`, `list`, `pause`, `resume`, `abort KEY`.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Segments, the groups rules name with `in_segment`: `segment list`, `segment get KEY`,
    /// `segment put KEY [--include K,…] [--exclude K,…] [--description TEXT]` or
    /// `segment put -f FILE`, `segment delete KEY`.
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Print changes as they commit, until interrupted.
    Watch,
    /// Delete a flag (its history is kept).
    Delete(KeyWriteArgs),
    /// Tokens for flagd's tokens file: `token hash` prints the line for a secret read from
    /// standard input, `token hash --generate` makes a new secret and prints it with its line.
    Token(TokenArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `flagctl rollout …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Store a plan on a flag and write its first step, in one transaction.
    Start(RolloutStartArgs),
    /// A flag's plan (every plan of the environment without KEY): steps, the current one,
    /// time to the next judgement, and each cohort's figures in the window now.
    Status {
        /// The flag key.
        key: Option<String>,
    },
    /// One line per plan of the environment.
    List,
    /// Stop a running plan where it is (`--reason` says why).
    Pause(KeyWriteArgs),
    /// Run a paused plan again: its current step is written again and held afresh.
    Resume(KeyWriteArgs),
    /// Stop a running or paused plan for good, leaving the flag as it is.
    Abort(KeyWriteArgs),
}

/// What a plan does when its guard trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnBreachArg {
    /// Kill the flag: everyone gets off.
    Kill,
    /// Back to the previous step's percentage (0 % at the first).
    Rollback,
    /// Leave the flag and pause the plan.
    Pause,
}

impl From<OnBreachArg> for flag_core::OnBreach {
    fn from(arg: OnBreachArg) -> Self {
        match arg {
            OnBreachArg::Kill => flag_core::OnBreach::Kill,
            OnBreachArg::Rollback => flag_core::OnBreach::Rollback,
            OnBreachArg::Pause => flag_core::OnBreach::Pause,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RolloutStartArgs {
    /// The flag key; it needs an `off` variant (the control cohort).
    pub(crate) key: String,
    /// The `on` percentages, increasing, e.g. `1,5,25,50,100`; the last is where the plan ends.
    #[arg(long, value_delimiter = ',', required = true)]
    pub(crate) steps: Vec<f64>,
    /// How long each step is held before it is judged, e.g. `10m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) hold: Duration,
    /// How long a hold may be extended while a cohort has too few evaluations, before the plan
    /// pauses (default: the hold).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) max_hold: Option<Duration>,
    /// A dark launch's reach (on + dark), kept at every step.
    #[arg(long)]
    pub(crate) dark: Option<f64>,
    /// The new path's error rate may be up to this many times the control's (above 1).
    #[arg(long)]
    pub(crate) max_error_ratio: f64,
    /// The new path's p99 latency may be up to this many times the control's (above 1).
    #[arg(long)]
    pub(crate) max_latency_p99_ratio: f64,
    /// Evaluations each cohort needs in a window to be judged.
    #[arg(long)]
    pub(crate) min_samples: u64,
    /// A ceiling on the new path's error rate, a fraction (0.05 is 5 %).
    #[arg(long)]
    pub(crate) max_error_rate: Option<f64>,
    /// A ceiling on the new path's p99 latency, e.g. `250ms`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) max_latency_p99: Option<Duration>,
    /// What a breach does.
    #[arg(long, value_enum, default_value = "kill")]
    pub(crate) on_breach: OnBreachArg,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The flag key.
    pub(crate) key: String,
}

/// Who and why, on the commands that write: recorded in history with the change.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ChangeArgs {
    /// Why: recorded in history with the change.
    #[arg(long, env = "FLAGD_REASON", default_value = "")]
    pub(crate) reason: String,
    /// Who: recorded in history beside the token's principal ("ci-bot on behalf of ana");
    /// defaults to $FLAGD_ACTOR, then $USER.
    #[arg(long)]
    pub(crate) actor: Option<String>,
}

/// A write that needs only the flag key.
#[derive(Debug, Args)]
pub(crate) struct KeyWriteArgs {
    /// The flag key.
    pub(crate) key: String,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("serve").required(true).args(["percent", "on", "off", "variant"]))]
pub(crate) struct SetArgs {
    /// The flag key.
    pub(crate) key: String,
    /// Percentage of users who see the new path (0 to 100, decimals allowed).
    #[arg(long)]
    pub(crate) percent: Option<f64>,
    /// Percentage who run the new path, seen or not (a dark launch); at least --percent.
    #[arg(long, requires = "percent")]
    pub(crate) dark: Option<f64>,
    /// Everyone sees the new path (100 %).
    #[arg(long)]
    pub(crate) on: bool,
    /// Nobody runs the new path (0 %).
    #[arg(long)]
    pub(crate) off: bool,
    /// Serve this one variant to everyone not matched by a rule.
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Refuse unless the flag is at this version (0: it must not exist).
    #[arg(long)]
    pub(crate) expect_version: Option<u64>,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// The flag key.
    pub(crate) key: String,
    /// How long to wait for the connected SDKs to acknowledge (0s: do not wait).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) wait: Duration,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// Only flags with this tag.
    #[arg(long, default_value = "")]
    pub(crate) tag: String,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The flag key.
    pub(crate) key: String,
    /// At most this many versions, or `all` (read a page at a time, printed as it comes).
    #[arg(long, default_value = "20", value_name = "N|all", value_parser = limit)]
    pub(crate) limit: Limit,
    /// Every version: the same as `--limit all`.
    #[arg(long, conflicts_with = "limit")]
    pub(crate) all: bool,
    /// Only versions older than this one (to go on where a `--limit` stopped).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u64).range(2..))]
    pub(crate) before: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Only this flag's changes (repeat it, or list keys comma-separated); segments are then
    /// left out.
    #[arg(long = "flag", value_name = "KEY", value_delimiter = ',')]
    pub(crate) flags: Vec<String>,
    /// Only changes by this actor, exactly as history names them.
    // The same name as the global `--actor` on purpose: clap then gives `log` this one.
    #[arg(long, value_name = "NAME")]
    pub(crate) actor: Option<String>,
    /// Only changes committed at or after TIME: RFC 3339 (`2026-12-01T10:00:00Z`) or a
    /// duration ago (`-1h`, `30m`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub(crate) since: Option<String>,
    /// Only changes committed at or before TIME, in the same forms.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub(crate) until: Option<String>,
    /// Only these operations (comma-separated, or repeated): create, update, delete, kill,
    /// revive, rollback, set_rollout, serve_variant.
    #[arg(long = "action", value_name = "ACTION", value_delimiter = ',')]
    pub(crate) actions: Vec<String>,
    /// Every environment's changes, merged newest first, instead of --env's.
    #[arg(long)]
    pub(crate) all_environments: bool,
    /// At most this many changes (`all`: every one), read from flagd a page at a time; when
    /// more are left, the cursor to continue with is printed.
    #[arg(long, default_value = "20", value_name = "N|all", value_parser = limit)]
    pub(crate) limit: Limit,
    /// Every matching change: the same as `--limit all`.
    #[arg(long, conflicts_with = "limit")]
    pub(crate) all: bool,
    /// Continue where an earlier `log` stopped: the cursor it printed (with the same filters).
    #[arg(long, value_name = "CURSOR")]
    pub(crate) before: Option<String>,
    /// `table` for people; `jsonl`: one JSON object per change, with the content before and
    /// after it (README: "Audit log").
    #[arg(long, value_enum, default_value_t = LogFormat::Table)]
    pub(crate) format: LogFormat,
}

/// How many log or history entries to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// At most this many (at least 1).
    Count(u64),
    /// Every matching one.
    All,
}

fn limit(text: &str) -> Result<Limit, String> {
    match text {
        "all" => Ok(Limit::All),
        _ => match text.parse::<u64>() {
            Ok(count) if count > 0 => Ok(Limit::Count(count)),
            _ => Err(format!("expected a number of entries (1 or more) or `all`, found {text:?}")),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// The readable log.
    Table,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The flag key.
    pub(crate) key: String,
    /// The version to restore; the one before the current when absent.
    #[arg(long)]
    pub(crate) to: Option<u64>,
    /// Restore the version's on/off state too, even when that revives a killed flag.
    #[arg(long)]
    pub(crate) allow_revive: bool,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The flag key.
    pub(crate) key: String,
    /// The targeting key (user id).
    #[arg(long)]
    pub(crate) user: String,
    /// An attribute, `name=value`; `true`/`false` and numbers are typed, the rest are strings
    /// (write `name=str:42` for the string "42").
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    pub(crate) attributes: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The flag file (YAML or JSON), `-` for standard input.
    #[arg(short = 'f', long = "file")]
    pub(crate) file: PathBuf,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Also delete flags and segments that are not in the file.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Refuse unless the environment is still at this revision (the one a dry run showed).
    #[arg(long)]
    pub(crate) expect_revision: Option<u64>,
    /// The file's format; by default a flagd flag file is recognised by its shape (`flags`
    /// as an object, or a `$schema` naming flagd).
    #[arg(long, value_enum)]
    pub(crate) format: Option<FileFormat>,
    /// Of a flagd file, apply the flags that translate exactly and list the others, rather
    /// than refusing the whole file.
    #[arg(long)]
    pub(crate) skip_invalid: bool,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

/// What a file given to `apply` is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FileFormat {
    /// Our flag file (docs/flag-model.md), YAML or JSON.
    Flags,
    /// OpenFeature flagd's flag JSON.
    Flagd,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["keys", "all"])))]
pub(crate) struct PromoteArgs {
    /// The flags to promote.
    pub(crate) keys: Vec<String>,
    /// Every flag of the source.
    #[arg(long, conflicts_with = "keys")]
    pub(crate) all: bool,
    /// The environment promoted from.
    #[arg(long)]
    pub(crate) from: String,
    /// The environment promoted to.
    #[arg(long)]
    pub(crate) to: String,
    /// Only these parts (comma-separated): rules, default, variants, prerequisites, metadata.
    #[arg(long, value_delimiter = ',', value_parser = part)]
    pub(crate) only: Vec<flag_proto::Part>,
    /// Flags left out (comma-separated, or repeated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) except: Vec<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Refuse unless the target is still at this revision (the one a dry run showed).
    #[arg(long)]
    pub(crate) expect_revision: Option<u64>,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

fn part(name: &str) -> Result<flag_proto::Part, String> {
    flag_proto::Part::named(name).ok_or_else(|| {
        format!("expected rules, default, variants, prerequisites or metadata, found {name:?}")
    })
}

#[derive(Debug, Args)]
pub(crate) struct BookmarkArgs {
    /// `ENV NAME` to make one; `list [ENV]` to list them (ENV defaults to --env).
    #[arg(num_args = 1..=2, required = true, value_name = "ENV NAME | list [ENV]")]
    pub(crate) words: Vec<String>,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SegmentCommand {
    /// The environment's segments: members, rules, description.
    List,
    /// One segment: its members and rules.
    Get {
        /// The segment key.
        key: String,
    },
    /// Create or change a segment: from a flag file holding it (`segments:` with one
    /// entry), or from options, which change only what they name (rules stay).
    #[command(group = clap::ArgGroup::new("source").required(true).args(["file", "key"]))]
    Put(SegmentPutArgs),
    /// Delete a segment (refused while a flag names it; its history is kept).
    Delete {
        /// The segment key.
        key: String,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SegmentPutArgs {
    /// The segment key.
    #[arg(conflicts_with = "file")]
    pub(crate) key: Option<String>,
    /// A flag file (YAML or JSON, `-` for standard input) whose `segments:` holds the one
    /// segment to put, rules and all.
    #[arg(short = 'f', long)]
    pub(crate) file: Option<PathBuf>,
    /// Targeting keys always in the segment (replaces the list; empty to clear it).
    #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "KEY,…", conflicts_with = "file")]
    pub(crate) include: Option<Vec<String>>,
    /// Targeting keys never in it unless included (replaces the list; empty to clear it).
    #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "KEY,…", conflicts_with = "file")]
    pub(crate) exclude: Option<Vec<String>>,
    /// What the group is, for people.
    #[arg(long, conflicts_with = "file")]
    pub(crate) description: Option<String>,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// Every environment: flags, revision and last change.
    List {
        /// Also list deleted environments (their history is kept).
        #[arg(long)]
        deleted: bool,
    },
    /// Create an environment: empty, or a copy of another's flags and segments.
    Create {
        /// Its name: 1 to 64 of `A-Z a-z 0-9 _ . -`.
        name: String,
        /// Copy this environment's flags and segments, at its current revision.
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// One environment: flags, segments, revision, last change, origin, connected SDKs.
    Describe {
        /// The environment.
        name: String,
    },
    /// Delete an environment's flags and segments, then the environment; its history stays.
    Delete {
        /// The environment.
        name: String,
        /// Delete even while SDKs are connected to it (their streams end; they keep the
        /// flags they have).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The side compared from: `ENV`, `ENV@rN`, `ENV@TIME` (RFC 3339), `ENV@-DURATION` or
    /// `ENV@BOOKMARK`.
    pub(crate) from: String,
    /// The side compared to, in the same form.
    pub(crate) to: String,
    /// Only these flags and segments.
    pub(crate) keys: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("point").required(true).args(["to_revision", "at", "ago", "to"])))]
pub(crate) struct RestoreArgs {
    /// The environment to restore.
    pub(crate) environment: String,
    /// The revision whose state to bring back.
    #[arg(long)]
    pub(crate) to_revision: Option<u64>,
    /// A time (RFC 3339, `2026-12-01T10:00:00Z`): the state of the last revision committed by then.
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    pub(crate) at: Option<std::time::SystemTime>,
    /// How long ago (`1h`, `30m`): the state of the last revision committed by then.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) ago: Option<Duration>,
    /// A bookmark (`flagctl bookmark`): the state at the revision it names.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Refuse unless the environment is still at this revision (the one a dry run showed).
    #[arg(long)]
    pub(crate) expect_revision: Option<u64>,
    /// Also switch back on the flags killed since that point.
    #[arg(long)]
    pub(crate) allow_revive: bool,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Yaml,
    Json,
    /// OpenFeature flagd's flag JSON, for in-process flagd providers.
    Flagd,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print `sha256: …`, the tokens file's line for a secret (read from standard input; a
    /// trailing newline is not part of it). Needs no server.
    Hash {
        /// Make a new secret (32 random bytes from the operating system, URL-safe text) and
        /// print it, once, with its line.
        #[arg(long)]
        generate: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: Shell,
}

impl Command {
    /// Who and why, for a command that writes; `None` for one that only reads.
    pub(crate) fn change(&self) -> Option<&ChangeArgs> {
        match self {
            Command::Set(SetArgs { change, .. })
            | Command::Kill(KillArgs { change, .. })
            | Command::Revive(KeyWriteArgs { change, .. })
            | Command::Delete(KeyWriteArgs { change, .. })
            | Command::Rollback(RollbackArgs { change, .. })
            | Command::Apply(ApplyArgs { change, .. })
            | Command::Promote(PromoteArgs { change, .. })
            | Command::Bookmark(BookmarkArgs { change, .. })
            | Command::Restore(RestoreArgs { change, .. })
            | Command::Env(EnvCommand::Create { change, .. } | EnvCommand::Delete { change, .. })
            | Command::Segment(
                SegmentCommand::Put(SegmentPutArgs { change, .. }) | SegmentCommand::Delete { change, .. },
            )
            | Command::Rollout(
                RolloutCommand::Start(RolloutStartArgs { change, .. })
                | RolloutCommand::Pause(KeyWriteArgs { change, .. })
                | RolloutCommand::Resume(KeyWriteArgs { change, .. })
                | RolloutCommand::Abort(KeyWriteArgs { change, .. }),
            ) => Some(change),
            _ => None,
        }
    }
}
