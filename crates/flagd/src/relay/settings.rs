//! What `flagd relay` is told.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::TlsIdentity;

/// A relay's settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The upstream flagds (or relays), tried in order: `host:port` or a URL.
    pub upstreams: Vec<String>,
    /// The token the relay presents upstream (an SDK token is enough).
    pub upstream_token: Option<String>,
    /// A CA certificate (PEM) for an `https://` upstream with a private CA.
    pub upstream_ca: Option<PathBuf>,
    /// The relay's name in the upstream's acknowledgement reports.
    pub name: String,
    /// The cache file; none keeps nothing across restarts.
    pub cache: Option<PathBuf>,
    /// The token the relay's own SDKs present; none leaves its Sync open.
    pub sdk_token: Option<String>,
    /// Serve TLS with this certificate and key.
    pub tls: Option<TlsIdentity>,
    /// Allow listening beyond loopback without TLS.
    pub insecure: bool,
    /// How often an idle stream gets a heartbeat.
    pub heartbeat_interval: Duration,
    /// How long a stream may wait for room before its client is dropped.
    pub slow_client_timeout: Duration,
    /// Frames a stream buffers.
    pub stream_buffer: usize,
}

impl RelayConfig {
    /// A relay of `upstreams`, with the defaults a flagd has.
    pub fn new(upstreams: Vec<String>) -> RelayConfig {
        RelayConfig {
            upstreams,
            upstream_token: None,
            upstream_ca: None,
            name: "relay".into(),
            cache: None,
            sdk_token: None,
            tls: None,
            insecure: false,
            heartbeat_interval: Duration::from_secs(5),
            slow_client_timeout: Duration::from_secs(10),
            stream_buffer: 64,
        }
    }
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: said to be set, never shown.
        f.debug_struct("RelayConfig")
            .field("upstreams", &self.upstreams)
            .field("upstream_token", &self.upstream_token.as_ref().map(|_| "(set)"))
            .field("upstream_ca", &self.upstream_ca)
            .field("name", &self.name)
            .field("cache", &self.cache)
            .field("sdk_token", &self.sdk_token.as_ref().map(|_| "(set)"))
            .field("tls", &self.tls.is_some())
            .field("insecure", &self.insecure)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}
