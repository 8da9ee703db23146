//! `flagd` — the flag server binary: parse flags, set up logging, serve until SIGTERM/Ctrl-C.

use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// The flag server: flags per environment in a durable store, every change streamed to SDKs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Run a tool instead of the server.
    #[command(subcommand)]
    command: Option<Command>,
    /// The redb file holding every environment (created if missing).
    #[arg(long, env = "FLAGD_DATA", default_value = flagd::DEFAULT_DATA)]
    data: PathBuf,
    /// Where the store is, instead of --data: `redb:PATH`, or a PostgreSQL database
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`), whose tables flagd creates and
    /// migrates; any number of flagds may share one (see the README's "Running more than one
    /// flagd").
    #[arg(long, env = "FLAGD_STORE", value_parser = parse_store, conflicts_with = "data", hide_env_values = true)]
    store: Option<StoreArg>,
    /// The most connections to PostgreSQL the store's reads and writes hold open; two more
    /// sessions of their own listen for other flagds' changes and hold the leadership.
    #[arg(long, env = "FLAGD_STORE_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    store_connections: u16,
    /// PEM CA certificates the PostgreSQL server's certificate must chain to (instead of
    /// the system's). Connections use TLS, the certificate and host name checked, when the
    /// --store URL says `sslmode=require`; otherwise they are plaintext.
    #[arg(long, env = "FLAGD_STORE_CA", value_name = "PATH", value_parser = parse_ca_file, requires = "store")]
    store_ca: Option<flagd::CaFile>,
    /// gRPC address (Admin and Sync services).
    #[arg(long, env = "FLAGD_LISTEN", default_value = "127.0.0.1:8013")]
    listen: SocketAddr,
    /// Management HTTP address (/healthz, /readyz, /metrics).
    #[arg(long, env = "FLAGD_MANAGEMENT", default_value = "127.0.0.1:8014")]
    management: SocketAddr,
    /// A second gRPC address serving OpenFeature flagd's evaluation and sync services, for
    /// in-process providers left on their default port; `off` to serve them only on
    /// --listen.
    #[arg(long, env = "FLAGD_SYNC_LISTEN", default_value = "127.0.0.1:8015", value_parser = parse_listen)]
    sync_listen: Listen,
    /// OFREP (OpenFeature Remote Evaluation Protocol) HTTP address; `off` to not serve it.
    #[arg(long, env = "FLAGD_OFREP_LISTEN", default_value = "127.0.0.1:8016", value_parser = parse_listen)]
    ofrep_listen: Listen,
    /// Require `authorization: Bearer <token>` on Admin calls (the principal `admin`, all
    /// environments).
    #[arg(long, env = "FLAGD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Require this token (or the admin token) on Sync calls (the principal `sdk`, all
    /// environments).
    #[arg(long, env = "FLAGD_SDK_TOKEN", hide_env_values = true)]
    sdk_token: Option<String>,
    /// A tokens file (YAML) of named principals, each with the SHA-256 of its secret, a role
    /// (admin, writer, reader, sdk) and its environments; every call then needs a principal's
    /// token. SIGHUP reloads it.
    #[arg(long, env = "FLAGD_TOKENS")]
    tokens: Option<PathBuf>,
    /// Allow a non-loopback address without an admin token or without TLS.
    #[arg(long, env = "FLAGD_INSECURE")]
    insecure: bool,
    /// Do not serve the web console under /ui/ on the management port.
    #[arg(long, env = "FLAGD_NO_UI")]
    no_ui: bool,
    /// Serve gRPC and the management port over TLS with this certificate chain (PEM).
    #[arg(long, env = "FLAGD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "FLAGD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Environments to create at start when missing, comma-separated (a new store starts
    /// with `production`; `flagctl env create` adds more at any time).
    #[arg(long, env = "FLAGD_ENVIRONMENTS", value_delimiter = ',')]
    environments: Vec<String>,
    /// After SIGTERM or Ctrl-C, how long open connections may finish before they are dropped.
    #[arg(long, env = "FLAGD_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Heartbeat interval on quiet streams.
    #[arg(long, env = "FLAGD_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// Clients further behind than this many revisions get a full snapshot instead of changes.
    #[arg(long, env = "FLAGD_RESUME_WINDOW", default_value_t = 10_000)]
    resume_window: u64,
    /// The largest an environment's full snapshot may grow, in bytes (at most 63 MiB): a
    /// write that would grow it further is refused.
    #[arg(long, env = "FLAGD_MAX_ENVIRONMENT_BYTES", default_value_t = flag_proto::DEFAULT_MAX_ENVIRONMENT_BYTES)]
    max_environment_bytes: usize,
    /// Disconnect a stream that has not read for this long while frames are queued.
    #[arg(long, env = "FLAGD_SLOW_CLIENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    slow_client_timeout: Duration,
    /// Frames queued per stream before its client counts as slow.
    #[arg(long, env = "FLAGD_STREAM_BUFFER", default_value_t = 64)]
    stream_buffer: usize,
    /// Log format.
    #[arg(long, env = "FLAGD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    log_format: LogFormat,
    /// POST every committed change to a webhook; repeatable. A bare http:// or https:// URL,
    /// or fields:
    /// `url=https://HOST[:PORT]/PATH,environments=staging;production,secret-env=VARIABLE
    /// (or secret-file=PATH),ca-file=PATH,format=json|slack,id=NAME` — only url is required. An https receiver's certificate must be valid for HOST and
    /// chain to ca-file's CA certificates (PEM), else --webhook-ca-file's, else the system's.
    #[arg(long = "webhook", value_name = "SPEC", value_parser = flagd::Webhook::parse)]
    webhooks: Vec<flagd::Webhook>,
    /// The body of webhooks without format=: the change as JSON, or a one-line chat message.
    #[arg(long, env = "FLAGD_WEBHOOK_FORMAT", value_enum, default_value_t = flagd::WebhookFormat::Json)]
    webhook_format: flagd::WebhookFormat,
    /// PEM CA certificates that https webhook receivers' certificates must chain to, for
    /// webhooks without ca-file= (instead of the system's).
    #[arg(long, env = "FLAGD_WEBHOOK_CA_FILE", value_name = "PATH", value_parser = parse_ca_file)]
    webhook_ca_file: Option<flagd::CaFile>,
    /// How long one webhook delivery attempt may take, connect to answer.
    #[arg(long, env = "FLAGD_WEBHOOK_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    webhook_timeout: Duration,
    /// The longest wait between two attempts of a failing webhook delivery (the waits
    /// double from 250ms up to this, with jitter).
    #[arg(long, env = "FLAGD_WEBHOOK_RETRY_MAX", default_value = "60s", value_parser = humantime::parse_duration)]
    webhook_retry_max: Duration,
}

/// Tools run instead of the server.
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Sync to local SDKs from an upstream flagd (or relay), with no store of its own:
    /// one upstream stream per environment, the SDKs' acknowledgements forwarded upstream
    /// (a kill there counts them), Admin reads forwarded and writes refused, and a cache file
    /// so it serves after an upstream outage. See the README's "Running more than one flagd".
    Relay(Box<RelayArgs>),
    /// Check a store file (not open in a running flagd) as flagd does at start: redb's
    /// integrity check, then the store's invariants. Exit 0 when it passes, 1 when not.
    Check {
        /// The redb file to check.
        #[arg(long, env = "FLAGD_DATA", default_value = flagd::DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Back up a running flagd: it copies its store from one read transaction and streams
    /// it; this writes the copy to `--to` and checks it. Restore by starting flagd on it.
    Backup {
        /// The running flagd's gRPC address.
        #[arg(long, env = "FLAGD_ADDR", default_value = "http://127.0.0.1:8013")]
        server: String,
        /// The admin token, if flagd requires one.
        #[arg(long, env = "FLAGD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RelayArgs {
    /// The upstream flagds (or relays), comma-separated, tried in order: `host:port` or a
    /// URL (`https://` for TLS).
    #[arg(long, env = "FLAGD_UPSTREAM", value_delimiter = ',', required = true)]
    upstream: Vec<String>,
    /// The token presented upstream (an SDK token is enough).
    #[arg(long, env = "FLAGD_UPSTREAM_TOKEN", hide_env_values = true)]
    upstream_token: Option<String>,
    /// A CA certificate (PEM) for an https upstream whose certificate a private CA signed.
    #[arg(long, env = "FLAGD_UPSTREAM_CA")]
    upstream_ca: Option<PathBuf>,
    /// The relay's name in the upstream's acknowledgement reports.
    #[arg(long, env = "FLAGD_RELAY_NAME", default_value = "relay")]
    name: String,
    /// The cache file: the last copy of every environment followed, rewritten as they change.
    #[arg(long, env = "FLAGD_RELAY_CACHE", default_value = "./flagd-data/relay.cache")]
    cache: PathBuf,
    /// gRPC address (Sync, OpenFeature's services, and Admin reads forwarded upstream).
    #[arg(long, env = "FLAGD_LISTEN", default_value = "127.0.0.1:8013")]
    listen: SocketAddr,
    /// Management HTTP address (/healthz, /readyz, /metrics).
    #[arg(long, env = "FLAGD_MANAGEMENT", default_value = "127.0.0.1:8014")]
    management: SocketAddr,
    /// A second gRPC address serving OpenFeature flagd's evaluation and sync services from
    /// the relay's copies; `off` to serve them only on --listen.
    #[arg(long, env = "FLAGD_SYNC_LISTEN", default_value = "127.0.0.1:8015", value_parser = parse_listen)]
    sync_listen: Listen,
    /// OFREP HTTP address, answered from the relay's copies; `off` to not serve it.
    #[arg(long, env = "FLAGD_OFREP_LISTEN", default_value = "127.0.0.1:8016", value_parser = parse_listen)]
    ofrep_listen: Listen,
    /// Require this token on the relay's Sync and OpenFeature calls.
    #[arg(long, env = "FLAGD_SDK_TOKEN", hide_env_values = true)]
    sdk_token: Option<String>,
    /// Serve over TLS with this certificate chain (PEM).
    #[arg(long, env = "FLAGD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "FLAGD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow a non-loopback address without TLS.
    #[arg(long, env = "FLAGD_INSECURE")]
    insecure: bool,
    /// Heartbeat interval on quiet streams.
    #[arg(long, env = "FLAGD_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
}

/// `flagd relay`.
async fn run_relay(args: &RelayArgs) -> anyhow::Result<()> {
    let grpc =
        TcpListener::bind(args.listen).await.with_context(|| format!("binding gRPC to {}", args.listen))?;
    let management = TcpListener::bind(args.management)
        .await
        .with_context(|| format!("binding the management port to {}", args.management))?;
    if let Some(parent) = args.cache.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut config = flagd::RelayConfig::new(args.upstream.clone());
    config.upstream_token = args.upstream_token.clone();
    config.upstream_ca = args.upstream_ca.clone();
    config.name = args.name.clone();
    config.cache = Some(args.cache.clone());
    config.sdk_token = args.sdk_token.clone();
    config.insecure = args.insecure;
    config.heartbeat_interval = args.heartbeat_interval;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls_identity(cert, key)?);
    }
    let sync = bind_optional(args.sync_listen, "the OpenFeature sync port").await?;
    let ofrep = bind_optional(args.ofrep_listen, "the OFREP port").await?;
    let listeners =
        flagd::Listeners::grpc(grpc).with_management(Some(management)).with_open_feature(sync, ofrep);
    flagd::serve_relay(listeners, config, shutdown_signal()?, announce).await.context("flagd relay failed")
}

/// `flagd backup`: receive the copy into a temporary file beside `to`, make it durable,
/// rename it into place, and check it as a start would.
async fn run_backup(server: &str, token: Option<&str>, to: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    if to.exists() {
        anyhow::bail!("{} already exists; a backup never overwrites a file", to.display());
    }
    let server = if server.contains("://") { server.to_owned() } else { format!("http://{server}") };
    let channel = tonic::transport::Endpoint::from_shared(server.clone())
        .with_context(|| format!("parsing the server address {server}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to flagd at {server}"))?;
    let bearer = flag_proto::Bearer::new(token).context("the token is not a valid header value")?;
    let mut admin = flag_proto::v1::admin_client::AdminClient::with_interceptor(channel, bearer);
    let mut stream =
        admin.backup(flag_proto::backup_request()).await.context("asking flagd for a backup")?.into_inner();
    let partial = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().map_or_else(|| "backup".into(), |name| name.to_string_lossy().into_owned())
    ));
    let mut file =
        std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let (mut expected, mut written) = (None, 0u64);
    let received: anyhow::Result<()> = async {
        while let Some(chunk) = stream.message().await.context("receiving the backup")? {
            if expected.is_none() {
                expected = Some(chunk.total_bytes);
            }
            file.write_all(&chunk.data).with_context(|| format!("writing {}", partial.display()))?;
            written += chunk.data.len() as u64;
        }
        if expected != Some(written) {
            anyhow::bail!("the backup stream ended after {written} of {:?} bytes", expected.unwrap_or(0));
        }
        file.sync_all().with_context(|| format!("syncing {}", partial.display()))?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(error) = received {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, to).with_context(|| format!("renaming the backup to {}", to.display()))?;
    let report = flagd::check_store(to).context("checking the backup")?;
    let revisions: Vec<String> = report
        .environments
        .iter()
        .map(|(environment, revision)| format!("{environment}@{revision}"))
        .collect();
    println!(
        "backed up {written} bytes to {}: {} environments ({}), {} changes, {} live flags; check passed",
        to.display(),
        report.environments.len(),
        revisions.join(", "),
        report.changes,
        report.flags
    );
    Ok(())
}

/// `flagd check`: what was checked, and a verdict.
fn run_check(data: &std::path::Path) -> ! {
    match flagd::check_store(data) {
        Ok(report) => {
            println!("checked {} (store {})", report.path.display(), report.store_id);
            println!("  redb integrity: every committed page's checksum verified");
            println!(
                "  invariants: {} environments, {} changes, {} versions, {} live flags, {} live segments",
                report.environments.len(),
                report.changes,
                report.versions,
                report.flags,
                report.segments
            );
            for (environment, revision) in &report.environments {
                println!("    {environment}: revision {revision}, change log and history complete");
            }
            println!("OK: the store is sound");
            std::process::exit(0)
        }
        Err(error) => {
            eprintln!("FAILED: {:#}", anyhow::Error::new(error));
            eprintln!(
                "flagd refuses to start on this file; start it on a backup (see `flagd backup`) instead"
            );
            std::process::exit(1)
        }
    }
}

async fn run_command(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Check { data } => run_check(data),
        Command::Backup { server, token, to } => run_backup(server, token.as_deref(), to).await,
        Command::Relay(args) => run_relay(args).await,
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("FLAGD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file, a pipe or journald gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGTERM or Ctrl-C. The handlers are installed here, before the future is
/// first polled: installed lazily, a signal arriving after "listening" but before the
/// server polled it would kill flagd with the default action instead of shutting it down.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown requested");
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    })
}

/// Reads `--tls-cert` and `--tls-key`, naming the file that cannot be read.
fn tls_identity(cert: &Path, key: &Path) -> anyhow::Result<flagd::TlsIdentity> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading the TLS {what} {}", path.display()))
    };
    Ok(flagd::TlsIdentity::from_pem(read(cert, "certificate")?, read(key, "key")?))
}

/// An address to listen on, or `off`.
#[derive(Clone, Copy, Debug)]
struct Listen(Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|address| Listen(Some(address)))
        .map_err(|_| format!("expected HOST:PORT or `off`, found {text:?}"))
}

/// Binds an optional listener, naming what it is for when that fails.
async fn bind_optional(listen: Listen, what: &str) -> anyhow::Result<Option<TcpListener>> {
    let Listen(Some(address)) = listen else { return Ok(None) };
    let listener =
        TcpListener::bind(address).await.with_context(|| format!("binding {what} to {address}"))?;
    Ok(Some(listener))
}

/// Reads `--webhook-ca-file` now, so a CA file that cannot be used fails the start.
fn parse_ca_file(path: &str) -> Result<flagd::CaFile, flagd::CaFileError> {
    flagd::CaFile::from_file(path)
}

/// The one machine-readable line, so scripts and tests can find ports chosen with `:0`.
/// Printed only once flagd serves; a stdout nobody reads any more (a closed pipe) is not a
/// reason to stop serving, so a failed write is ignored rather than a panic.
fn announce(ready: flagd::Ready) {
    let shown =
        |address: Option<std::net::SocketAddr>| address.map_or_else(|| "none".to_owned(), |a| a.to_string());
    let (management, sync, ofrep) = (shown(ready.management), shown(ready.sync), shown(ready.ofrep));
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "flagd listening grpc={} management={management} sync={sync} ofrep={ofrep} tls={}",
        ready.grpc, ready.tls
    )
    .and_then(|()| stdout.flush());
}

/// A `--store` value.
#[derive(Clone, Debug)]
enum StoreArg {
    Redb(PathBuf),
    Postgres(String),
}

fn parse_store(value: &str) -> Result<StoreArg, String> {
    if let Some(path) = value.strip_prefix("redb:") {
        if path.is_empty() {
            return Err("redb: needs a file path, e.g. redb:./flagd-data/flags.redb".into());
        }
        return Ok(StoreArg::Redb(PathBuf::from(path)));
    }
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        return Ok(StoreArg::Postgres(value.to_owned()));
    }
    Err("expected redb:PATH or a postgres://USER@HOST:PORT/DATABASE URL".into())
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(command) = &args.command {
        return run_command(command).await;
    }
    let grpc =
        TcpListener::bind(args.listen).await.with_context(|| format!("binding gRPC to {}", args.listen))?;
    let management = TcpListener::bind(args.management)
        .await
        .with_context(|| format!("binding the management port to {}", args.management))?;
    let sync = bind_optional(args.sync_listen, "the OpenFeature sync port").await?;
    let ofrep = bind_optional(args.ofrep_listen, "the OFREP port").await?;
    let data = match &args.store {
        Some(StoreArg::Redb(path)) => path.clone(),
        _ => args.data,
    };
    let mut config = flagd::Config::new(data)
        .with_heartbeat_interval(args.heartbeat_interval)
        .with_resume_window(args.resume_window)
        .with_max_environment_bytes(args.max_environment_bytes)
        .with_slow_client_limits(args.slow_client_timeout, args.stream_buffer)
        .with_shutdown_grace(args.shutdown_grace)
        .with_environments(args.environments)
        .with_webhook_limits(args.webhook_timeout, args.webhook_retry_max);
    config.webhook_format = args.webhook_format;
    if let Some(ca) = args.webhook_ca_file {
        config = config.with_webhook_ca(ca);
    }
    for webhook in args.webhooks {
        config = config.with_webhook(webhook);
    }
    if let Some(StoreArg::Postgres(url)) = args.store {
        config = config.with_postgres(url, usize::from(args.store_connections));
        if let Some(ca) = args.store_ca {
            config = config.with_postgres_ca(ca);
        }
    }
    if let Some(token) = args.admin_token {
        config = config.with_admin_token(token);
    }
    if let Some(token) = args.sdk_token {
        config = config.with_sdk_token(token);
    }
    if let Some(tokens) = args.tokens {
        config = config.with_tokens_file(tokens);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.with_tls(tls_identity(cert, key)?);
    }
    config.insecure = args.insecure;
    config.console = !args.no_ui;
    let listeners =
        flagd::Listeners::grpc(grpc).with_management(Some(management)).with_open_feature(sync, ofrep);
    flagd::serve_listeners(listeners, config, shutdown_signal()?, announce).await.context("flagd failed")
}

fn main() -> ExitCode {
    let version = flag_proto::version_text(env!("CARGO_PKG_VERSION"));
    let args =
        Args::from_arg_matches(&Args::command().version(version).get_matches()).unwrap_or_else(|e| e.exit());
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "Error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // A store call still running on the blocking pool must not hold the exit past the grace
    // period the operator chose; redb commits are atomic, so leaving one unfinished is safe.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "Error: {error:?}");
            ExitCode::FAILURE
        }
    }
}
