//! A client's settings: where its flags come from, how long a start may wait, and what to
//! do when flagd does not answer in time. Plain data; starting a client from them is
//! `start.rs`.
//!
//! # Several endpoints
//!
//! Every place that takes an endpoint takes a comma-separated list as well
//! (`http://flagd-a:8013,http://flagd-b:8013`), so one configuration value or environment
//! variable can name every replica. They must be replicas of one store (the same store id,
//! shared revisions): the follower resumes on the next one from the revision it holds, and a
//! replica of another store would answer with a full snapshot of its own flags.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::Channel;

/// What [`ClientBuilder::connect`] does when no snapshot arrives within the start timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnTimeout {
    /// Return [`ConnectError::Timeout`](crate::ConnectError::Timeout): the application would rather not start without flags.
    Fail,
    /// Return a client serving the cache file's flags (or, without one, every caller's
    /// default) with status [`Status::Stale`](crate::Status::Stale); it keeps connecting in the background.
    #[default]
    Serve,
}

/// Configures and starts a [`Client`](crate::Client). From
/// [`Client::builder`](crate::Client::builder) or [`Client::offline`](crate::Client::offline).
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    /// In the order they are tried; never empty once [`connect`](Self::connect) checked it.
    pub(crate) endpoints: Vec<String>,
    pub(crate) environment: String,
    pub(crate) token: Option<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) channel: Option<Channel>,
    pub(crate) connect_timeout: Duration,
    pub(crate) start_timeout: Duration,
    pub(crate) on_timeout: OnTimeout,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) cache_file: Option<PathBuf>,
    pub(crate) offline_file: Option<PathBuf>,
    pub(crate) reload_every: Option<Duration>,
    pub(crate) metrics_every: Duration,
    pub(crate) report_every: Duration,
    /// Trusted instead of the system roots for an `https://` endpoint.
    pub(crate) ca_certificate: Option<Vec<u8>>,
}

impl ClientBuilder {
    /// `endpoint`: one address, or several separated by commas.
    pub(crate) fn new(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoints: split_endpoints(&endpoint.into()),
            environment: flag_proto::DEFAULT_ENVIRONMENT.into(),
            token: None,
            client_name: None,
            channel: None,
            connect_timeout: Duration::from_secs(2),
            start_timeout: Duration::from_secs(5),
            on_timeout: OnTimeout::default(),
            heartbeat_timeout: Duration::from_secs(15),
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
            cache_file: None,
            offline_file: None,
            reload_every: None,
            metrics_every: Duration::from_secs(10),
            report_every: Duration::from_secs(5),
            ca_certificate: None,
        }
    }

    /// More endpoints, tried after those given to [`Client::builder`](crate::Client::builder),
    /// in order. They must be replicas of one store (the same store id, shared revisions, as
    /// flagds over one PostgreSQL store are): a replica of another store would answer with a
    /// full snapshot of its own flags. Each may be a comma-separated list too.
    ///
    /// The client follows the first that answers. When its stream fails or its server goes
    /// away, it tries the next endpoint at once — no backoff before trying another address —
    /// and resumes from the revision it holds; only after every endpoint failed in turn does
    /// it wait [`backoff`](Self::backoff) before the next round. It stays with the endpoint
    /// it follows until that one fails; acknowledgements and health reports go on that
    /// endpoint's stream. [`Client::endpoint`](crate::Client::endpoint) names it.
    pub fn fallback_endpoints<I>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for endpoint in endpoints {
            self.endpoints.extend(split_endpoints(endpoint.as_ref()));
        }
        self
    }

    /// The environment to follow (default `production`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// The SDK token flagd was started with (`FLAGD_SDK_TOKEN`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|token| !token.is_empty());
        self
    }

    /// Names this client in flagd's acknowledgement reports (default `flag-sdk/<pid>`).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// Uses an existing connection instead of opening one per attempt: many clients in one
    /// process (tests, benches) can share it. The connection is to one server, so there is
    /// no failover: the first endpoint only names it in logs.
    pub fn channel(mut self, channel: Channel) -> Self {
        self.channel = Some(channel);
        self
    }

    /// For an `https://` endpoint: trust this CA certificate (PEM) instead of the system's
    /// roots, say for a private CA or a self-signed flagd.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// How long one TCP connection attempt may take (default 2 s). With several endpoints,
    /// an address that drops packets rather than refusing the connection costs this much
    /// before the next is tried; a refused connection or a server that went away is seen at
    /// once.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first snapshot (default 5 s), and
    /// what it does then.
    pub fn start_timeout(mut self, timeout: Duration, on_timeout: OnTimeout) -> Self {
        self.start_timeout = timeout;
        self.on_timeout = on_timeout;
        self
    }

    /// Silence after which a stream counts as dead and is reconnected, to the next endpoint
    /// if there are several (default 15 s; never less than three of the heartbeat intervals
    /// flagd announces). A server that exits or is killed closes its connections, which the
    /// client sees at once; this is for a server or network that stops answering without
    /// closing them.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Reconnection delays: doubling from `min` up to `max`, jittered (default 100 ms to 30 s).
    /// With several endpoints, the delay comes after a whole round of them failed.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// Keeps the last applied flags in this file (written atomically on each change) and
    /// starts from it when flagd cannot be reached. A corrupt file is ignored with a warning.
    pub fn cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_file = Some(path.into());
        self
    }

    /// Serves the flags of this file (flag-core's flag set, YAML or `.json`) instead of
    /// following flagd; status [`Status::Offline`](crate::Status::Offline). The endpoint, token, timeouts and cache
    /// file are then not used: nothing connects, and the file is its own cache.
    pub fn offline_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.offline_file = Some(path.into());
        self
    }

    /// With an offline file: checks it every `interval` and applies it when it changed (an
    /// invalid edit is logged and the previous flags kept).
    pub fn reload_every(mut self, interval: Duration) -> Self {
        self.reload_every = Some(interval);
        self
    }

    /// How often evaluation counts and gauges go to the `metrics` recorder (default 10 s).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_every = interval.max(Duration::from_millis(1));
        self
    }

    /// How often evaluation counts, outcomes and latencies go to flagd as a health report
    /// (default 5 s); see [`Client::record_outcome`](crate::Client::record_outcome).
    pub fn report_interval(mut self, interval: Duration) -> Self {
        self.report_every = interval.max(Duration::from_millis(1));
        self
    }
}

/// The addresses in a comma-separated list, trimmed; empty items (a trailing comma) are
/// left out.
fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|address| !address.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_taken_in_order_from_lists_and_fallbacks() {
        let builder = ClientBuilder::new(" http://a:8013 , http://b:8013,")
            .fallback_endpoints(["http://c:8013", "http://d:8013,http://e:8013"]);
        assert_eq!(builder.endpoints, ["a", "b", "c", "d", "e"].map(|host| format!("http://{host}:8013")));
        assert!(ClientBuilder::new(" , ").endpoints.is_empty());
    }
}
