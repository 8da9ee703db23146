//! Server settings, with the defaults a single-node deployment wants.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ca_file::CaFile;
use crate::webhooks::{self, Webhook, WebhookFormat};

/// How a flagd server runs. Built by the binary from flags and environment variables, and
/// by tests directly.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The redb file holding every environment (unless `postgres` is set).
    pub data: PathBuf,
    /// When set, the store is this PostgreSQL database instead of `data` (one flagd at a
    /// time holds it).
    pub postgres: Option<PostgresStore>,
    /// When set, Admin calls need `authorization: Bearer <token>`: the token of the
    /// principal `admin` (role admin, all environments).
    pub admin_token: Option<String>,
    /// When set, Sync calls need this token (or the admin token): the principal `sdk` (role
    /// sdk, all environments).
    pub sdk_token: Option<String>,
    /// A tokens file (YAML) of named principals, each with the SHA-256 of its secret, a
    /// role and its environments. When set, every call needs the token of a principal (of
    /// the file, or of the two options above) allowed to make it; SIGHUP reloads the file.
    pub tokens: Option<PathBuf>,
    /// Allow listening beyond loopback without an admin token or without TLS.
    pub insecure: bool,
    /// How often a quiet stream gets a heartbeat: a stream never goes silent for two intervals.
    pub heartbeat_interval: Duration,
    /// How far behind (in revisions) a client may resume from before it gets a full snapshot.
    pub resume_window: u64,
    /// The largest an environment's full snapshot may grow, in encoded bytes: a write that
    /// would grow it further is refused (every client's cold start receives it in one
    /// message). At most [`flag_proto::MAX_MESSAGE_BYTES`] less 1 MiB.
    pub max_environment_bytes: usize,
    /// How long a stream may stay unable to take a frame before it is disconnected.
    pub slow_client_timeout: Duration,
    /// Frames buffered per stream before the client counts as slow.
    pub stream_buffer: usize,
    /// How long shutdown waits for open connections to finish before dropping them.
    pub shutdown_grace: Duration,
    /// When set, gRPC and the management port are served over TLS with this identity.
    pub tls: Option<TlsIdentity>,
    /// Environments created at start when missing (a new store starts with `production`).
    pub environments: Vec<String>,
    /// Where every committed change is POSTed (see the `webhooks` module).
    pub webhooks: Vec<Webhook>,
    /// The body of webhooks that do not choose one.
    pub webhook_format: WebhookFormat,
    /// The CA certificates of https receivers whose webhook has no `ca-file=`; `None`: the
    /// system's.
    pub webhook_ca: Option<CaFile>,
    /// How long one delivery attempt may take, from connecting to the end of the answer.
    pub webhook_timeout: Duration,
    /// The longest wait between two attempts of one delivery.
    pub webhook_retry_max: Duration,
    /// Whether the management port serves the web console under `/ui/`.
    pub console: bool,
}

/// A store in PostgreSQL.
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresStore {
    /// A `postgres://` URL (or libpq's `key=value` form).
    pub url: String,
    /// The most connections the store holds open.
    pub connections: usize,
    /// Whom the database's certificate must chain to when the URL says `sslmode=require`
    /// (`None`: the system's CA certificates).
    pub ca: Option<CaFile>,
}

// The URL may carry a password.
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &"<redacted>")
            .field("connections", &self.connections)
            .field("ca", &self.ca.as_ref().map(CaFile::path))
            .finish()
    }
}

/// A server certificate chain and its private key, both PEM.
#[derive(Clone)]
#[non_exhaustive]
pub struct TlsIdentity {
    /// The certificate chain, leaf first (PEM).
    pub cert_pem: Vec<u8>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl TlsIdentity {
    /// An identity from PEM text.
    pub fn from_pem(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        TlsIdentity { cert_pem: cert_pem.into(), key_pem: key_pem.into() }
    }
}

// The key never reaches logs.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Where flagd keeps its data unless told otherwise.
pub const DEFAULT_DATA: &str = "./flagd-data/flags.redb";

impl Config {
    /// The defaults, storing in `data`.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Config {
            data: data.into(),
            postgres: None,
            admin_token: None,
            sdk_token: None,
            tokens: None,
            insecure: false,
            heartbeat_interval: Duration::from_secs(5),
            resume_window: 10_000,
            max_environment_bytes: flag_proto::DEFAULT_MAX_ENVIRONMENT_BYTES,
            slow_client_timeout: Duration::from_secs(10),
            stream_buffer: 64,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            environments: Vec::new(),
            webhooks: Vec::new(),
            webhook_format: WebhookFormat::Json,
            webhook_ca: None,
            webhook_timeout: webhooks::DEFAULT_TIMEOUT,
            webhook_retry_max: webhooks::DEFAULT_RETRY_MAX,
            console: true,
        }
    }

    /// Keeps the store in the PostgreSQL database at `url` (instead of the redb file),
    /// holding at most `connections` connections.
    pub fn with_postgres(mut self, url: impl Into<String>, connections: usize) -> Self {
        self.postgres = Some(PostgresStore { url: url.into(), connections, ca: None });
        self
    }

    /// With [`Config::with_postgres`]: the database's certificate must chain to `ca` (when the
    /// URL says `sslmode=require`) instead of to the system's CA certificates.
    pub fn with_postgres_ca(mut self, ca: CaFile) -> Self {
        if let Some(postgres) = &mut self.postgres {
            postgres.ca = Some(ca);
        }
        self
    }

    /// The same settings, creating these environments at start when they are missing.
    pub fn with_environments<S: Into<String>>(mut self, environments: impl IntoIterator<Item = S>) -> Self {
        self.environments = environments.into_iter().map(Into::into).collect();
        self
    }

    /// The same settings with one more webhook.
    pub fn with_webhook(mut self, webhook: Webhook) -> Self {
        self.webhooks.push(webhook);
        self
    }

    /// The same settings, checking https receivers of webhooks without `ca-file=` against
    /// these CA certificates instead of the system's.
    pub fn with_webhook_ca(mut self, ca: CaFile) -> Self {
        self.webhook_ca = Some(ca);
        self
    }

    /// The same settings with another per-attempt webhook timeout and longest retry wait.
    pub fn with_webhook_limits(mut self, timeout: Duration, retry_max: Duration) -> Self {
        self.webhook_timeout = timeout;
        self.webhook_retry_max = retry_max;
        self
    }

    /// The same settings with an admin token.
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// The same settings with an SDK token.
    pub fn with_sdk_token(mut self, token: impl Into<String>) -> Self {
        self.sdk_token = Some(token.into());
        self
    }

    /// The same settings with a tokens file.
    pub fn with_tokens_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tokens = Some(path.into());
        self
    }

    /// The same settings with another heartbeat interval.
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// The same settings with another resume window.
    pub fn with_resume_window(mut self, revisions: u64) -> Self {
        self.resume_window = revisions;
        self
    }

    /// The same settings with another environment cap (encoded snapshot bytes).
    pub fn with_max_environment_bytes(mut self, bytes: usize) -> Self {
        self.max_environment_bytes = bytes;
        self
    }

    /// The same settings with another shutdown grace period.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The same settings, serving over TLS with `identity`.
    pub fn with_tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// The same settings with another slow-client timeout and per-stream buffer.
    pub fn with_slow_client_limits(mut self, timeout: Duration, buffer: usize) -> Self {
        self.slow_client_timeout = timeout;
        self.stream_buffer = buffer.max(1);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new(DEFAULT_DATA)
    }
}

// Tokens never reach logs.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |token: &Option<String>| token.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("data", &self.data)
            .field("postgres", &self.postgres)
            .field("admin_token", &redact(&self.admin_token))
            .field("sdk_token", &redact(&self.sdk_token))
            .field("tokens", &self.tokens)
            .field("insecure", &self.insecure)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("resume_window", &self.resume_window)
            .field("max_environment_bytes", &self.max_environment_bytes)
            .field("slow_client_timeout", &self.slow_client_timeout)
            .field("stream_buffer", &self.stream_buffer)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls)
            .field("environments", &self.environments)
            .field("webhooks", &self.webhooks)
            .field("webhook_format", &self.webhook_format)
            .field("webhook_ca", &self.webhook_ca)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("webhook_retry_max", &self.webhook_retry_max)
            .finish()
    }
}
