//! The connection to flagd: addresses, token and the request metadata every call carries.
//!
//! `--server` may name several replicas of one store. They are tried in order when the
//! command starts and the first that connects serves the whole command: a call that fails
//! is not sent again elsewhere, since a write that timed out may still have committed. Only
//! `watch`, whose stream resumes by revision, moves to the next address when it loses its
//! stream ([`Server::next`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flag_proto::v1::admin_client::AdminClient;
use flag_proto::v1::sync_client::SyncClient;
use flag_proto::{Bearer, MAX_MESSAGE_BYTES, Requests, error_chain};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::cli::Global;
use crate::failure::{Failure, status_error};

/// A connected client and what every command needs to know of the global options.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// The address connected to, as tried, for messages.
    pub(crate) address: String,
    pub(crate) environment: String,
    pub(crate) admin: AdminClient<InterceptedService<Channel, Bearer>>,
    channel: Channel,
    bearer: Bearer,
    timeout: Duration,
    /// Every address given, in order (shared by the clones), and which one this is.
    targets: Arc<[Target]>,
    current: usize,
}

/// One address of `--server`, checked and ready to connect.
#[derive(Debug)]
struct Target {
    /// As tried: a URL.
    address: String,
    endpoint: Endpoint,
}

/// `host:port` becomes `http://host:port`; a URL is kept.
pub(crate) fn url_of(server: &str) -> String {
    if server.contains("://") { server.to_owned() } else { format!("http://{server}") }
}

impl Server {
    /// Connects now to the first address that answers, so an unreachable server is reported
    /// once, naming every address tried and why it failed.
    pub(crate) async fn connect(global: &Global) -> anyhow::Result<Server> {
        let bearer = Bearer::new(global.token.as_deref().filter(|t| !t.is_empty()))
            .map_err(|_| Failure::Invalid("--token: expected printable ASCII".into()))?;
        // Every address is checked before any is tried: a typo in the second must not wait
        // for the first to fail.
        let targets = global.servers.iter().filter(|server| !server.trim().is_empty()).map(|server| {
            let address = url_of(server.trim());
            let endpoint = Endpoint::from_shared(address.clone())
                .map_err(|e| {
                    Failure::Invalid(format!("--server {server:?}: expected host:port or a URL ({e})"))
                })?
                .connect_timeout(global.timeout)
                .tcp_nodelay(true);
            Ok(Target { endpoint: with_tls(endpoint, &address, global)?, address })
        });
        let targets: Arc<[Target]> = targets.collect::<anyhow::Result<_>>()?;
        if targets.is_empty() {
            return Err(Failure::Invalid("--server: no address given".into()).into());
        }
        let mut failed = Vec::new();
        for (index, target) in targets.iter().enumerate() {
            match target.endpoint.connect().await {
                Ok(channel) => {
                    return Ok(Server {
                        address: target.address.clone(),
                        environment: global.environment.clone(),
                        admin: admin_client(&channel, &bearer),
                        channel,
                        bearer,
                        timeout: global.timeout,
                        targets: Arc::clone(&targets),
                        current: index,
                    });
                }
                Err(error) => {
                    let mut cause = error_chain(&error);
                    if cause.contains("certificate") && global.ca_cert.is_none() {
                        // The usual cause: flagd's certificate comes from a private CA.
                        cause.push_str(" (for a private CA, pass --ca-cert or set FLAGD_CA_CERT)");
                    }
                    failed.push((target.address.clone(), cause));
                }
            }
        }
        Err(match <[_; 1]>::try_from(failed) {
            // One address: the message it always had.
            Ok([(address, cause)]) => Failure::Unreachable { address, cause },
            Err(failed) => Failure::NoneReachable(failed),
        }
        .into())
    }

    /// The next address given, after this one's stream was lost (this one again if it is
    /// the only one). It connects on its first call, whose failure reads as unreachable.
    pub(crate) fn next(&self) -> Server {
        let current = (self.current + 1) % self.targets.len().max(1);
        let Some(target) = self.targets.get(current).filter(|_| current != self.current) else {
            // Its channel reconnects by itself.
            return self.clone();
        };
        let channel = target.endpoint.connect_lazy();
        let admin = admin_client(&channel, &self.bearer);
        Server { address: target.address.clone(), admin, channel, current, ..self.clone() }
    }

    /// How many addresses were given.
    pub(crate) fn addresses(&self) -> usize {
        self.targets.len()
    }

    /// A Sync client on the same connection, without the per-call timeout (it streams).
    pub(crate) fn sync(&self) -> SyncClient<InterceptedService<Channel, Bearer>> {
        SyncClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The same connection, for a command that names its environment itself.
    pub(crate) fn in_environment(&self, environment: &str) -> Server {
        Server { environment: environment.to_owned(), ..self.clone() }
    }

    /// The requests of this environment.
    pub(crate) fn requests(&self) -> Requests<'_> {
        Requests::new(&self.environment)
    }

    /// A request for `message` with the usual deadline.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        self.request_waiting(message, Duration::ZERO)
    }

    /// A request for `message` whose deadline allows `extra` (a kill waiting for acks).
    pub(crate) fn request_waiting<T>(&self, message: T, extra: Duration) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout + extra);
        request
    }

    /// Turns a failed call into the error a person reads.
    pub(crate) fn failed(&self, status: Status) -> anyhow::Error {
        status_error(status, &self.address, &self.environment)
    }
}

fn admin_client(channel: &Channel, bearer: &Bearer) -> AdminClient<InterceptedService<Channel, Bearer>> {
    AdminClient::with_interceptor(channel.clone(), bearer.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// An `https://` address speaks TLS, checked against `--ca-cert` or else the system roots.
fn with_tls(endpoint: Endpoint, address: &str, global: &Global) -> anyhow::Result<Endpoint> {
    let ca = match &global.ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|error| {
            Failure::Invalid(format!("--ca-cert {}: cannot read it ({error})", path.display()))
        })?),
        None => None,
    };
    if !address.starts_with("https://") {
        if ca.is_some() {
            return Err(Failure::Invalid(format!(
                "--ca-cert is for TLS, but --server {address} is not https://"
            ))
            .into());
        }
        return Ok(endpoint);
    }
    let tls = match ca {
        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    Ok(endpoint
        .tls_config(tls)
        .map_err(|error| Failure::Invalid(format!("--server {address}: TLS: {error}")))?)
}

/// Adds `what` as context to a server call's result.
pub(crate) trait Call<T> {
    fn called(self, server: &Server, what: &str) -> anyhow::Result<T>;
}

impl<T> Call<T> for Result<tonic::Response<T>, Status> {
    fn called(self, server: &Server, what: &str) -> anyhow::Result<T> {
        match self {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(server.failed(status)).with_context(|| what.to_owned()),
        }
    }
}

/// Like [`Call`], for a write: a call that timed out on this side may still commit on the
/// server, so the answer is never a bare "timed out" but "outcome unknown; check revision N"
/// (exit 10), with the environment's revision read right after.
pub(crate) trait Wrote<T> {
    async fn wrote(self, server: &Server, what: &str) -> anyhow::Result<T>;
}

impl<T> Wrote<T> for Result<tonic::Response<T>, Status> {
    async fn wrote(self, server: &Server, what: &str) -> anyhow::Result<T> {
        match self {
            Err(status)
                if matches!(status.code(), tonic::Code::Cancelled | tonic::Code::DeadlineExceeded) =>
            {
                let revision = server.revision().await;
                Err(Failure::OutcomeUnknown { revision }).with_context(|| what.to_owned())
            }
            other => other.called(server, what),
        }
    }
}

impl Server {
    /// The environment's revision now, if flagd answers within the usual deadline.
    async fn revision(&self) -> Option<u64> {
        // A prefix no key can have (keys are ASCII letters, digits, `_ . -`): the answer
        // carries the revision and no flags.
        let request = self.requests().list_flags("~", "");
        let response = self.admin.clone().list_flags(self.request(request)).await.ok()?;
        Some(response.into_inner().revision)
    }
}
