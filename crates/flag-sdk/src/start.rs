//! Starting a client from its settings: following flagd (bootstrapped from the cache file
//! while it does not answer), or serving an offline file and reloading it. This layer
//! depends on the client; the client knows only the settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flag_proto::Bearer;
use tokio::sync::watch;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::{Instrument, info, info_span, warn};

use crate::client::{Client, Tasks};
use crate::error::{ConnectError, FileError};
use crate::files::{file_stamp, read_cache, read_flags_file, write_cache_forever};
use crate::follower::{FollowSettings, Follower, Target};
use crate::metrics::flush_every;
use crate::model::Model;
use crate::reporter::Reporter;
use crate::settings::{ClientBuilder, OnTimeout};
use crate::shared::Shared;
use crate::status::Status;

impl ClientBuilder {
    /// Starts the client. Following flagd, it returns once the first snapshot is applied,
    /// or after the start timeout as [`OnTimeout`] says. Needs a tokio runtime.
    pub async fn connect(self) -> Result<Client, ConnectError> {
        match self.offline_file.clone() {
            Some(path) => self.start_offline(path),
            None => self.start_following().instrument(info_span!("connect")).await,
        }
    }

    fn start(&self, status: Status) -> (Arc<Shared>, Arc<Tasks>) {
        let shared = Arc::new(Shared::new(self.environment.clone(), status));
        let tasks = Arc::new(Tasks::default());
        tasks.add(tokio::spawn(flush_every(
            Arc::downgrade(&shared),
            Arc::clone(&tasks.flusher),
            self.metrics_every,
        )));
        (shared, tasks)
    }

    fn start_offline(self, path: PathBuf) -> Result<Client, ConnectError> {
        // Stamped before reading: an edit made while (or after) it is read is reloaded.
        let stamp = file_stamp(&path);
        let set = read_flags_file(&path).map_err(ConnectError::Offline)?;
        let (shared, tasks) = self.start(Status::Offline);
        let model = Model::from_set(set, 1, &Model::default());
        shared
            .install(model, 1)
            .map_err(|source| ConnectError::Offline(FileError::Invalid { path: path.clone(), source }))?;
        if let Some(interval) = self.reload_every {
            tasks.add(tokio::spawn(reload_forever(Arc::downgrade(&shared), path, stamp, interval)));
        }
        Ok(Client::from_parts(shared, tasks))
    }

    async fn start_following(self) -> Result<Client, ConnectError> {
        if self.endpoints.is_empty() {
            return Err(ConnectError::Endpoint {
                endpoint: String::new(),
                reason: "no endpoint given".into(),
            });
        }
        // Every endpoint is checked now: a typo in a fallback must not wait for a failover.
        let targets = self
            .endpoints
            .iter()
            .map(|address| Ok(Target { address: address.clone(), endpoint: self.endpoint(address)? }))
            .collect::<Result<Vec<_>, ConnectError>>()?;
        let token = Bearer::new(self.token.as_deref()).map_err(|_| ConnectError::Token)?;
        let (shared, tasks) = self.start(Status::Stale { since: Instant::now() });

        let cache = self.cache_file.as_ref().map(|path| {
            if let Some((set, revision, store_id)) = read_cache(path, &self.environment) {
                let model = Model::from_set(set, revision, &Model::default());
                match shared.install(model, revision) {
                    Ok(_) => {
                        shared.set_store_id(store_id);
                        // Stale since the cache was written, not since this start: that is
                        // how old the flags may be.
                        let written = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                        let age = written.and_then(|at| at.elapsed().ok());
                        if let Some(since) = age.and_then(|age| Instant::now().checked_sub(age)) {
                            shared.set_status(Status::Stale { since });
                        }
                        info!(revision, path = %path.display(), "serving cached flags until flagd answers")
                    }
                    Err(error) => warn!(%error, "ignoring the flag cache: its flags are invalid"),
                }
            }
            let (sender, latest) = watch::channel(None);
            tasks.add(tokio::spawn(write_cache_forever(path.clone(), self.environment.clone(), latest)));
            sender
        });

        let (last_error, last_error_seen) = watch::channel(None);
        let (refused, mut refused_seen) = watch::channel(None);
        let follower = Follower {
            shared: Arc::clone(&shared),
            settings: FollowSettings {
                targets,
                channel: self.channel.clone(),
                token,
                environment: self.environment.clone(),
                client_name: self
                    .client_name
                    .clone()
                    .unwrap_or_else(|| format!("flag-sdk/{}", std::process::id())),
                heartbeat_timeout: self.heartbeat_timeout,
                backoff_min: self.backoff.0,
                backoff_max: self.backoff.1,
                report_interval: self.report_every,
            },
            cache,
            last_error,
            refused,
            reporter: Arc::new(Reporter::new()),
        };
        shared.keep_retired_for_reports();
        tasks.add(tokio::spawn(follower.run()));

        let mut status = shared.status.subscribe();
        let ready = status.wait_for(|status| *status == Status::Ready);
        let fail_fast = self.on_timeout == OnTimeout::Fail;
        let refused = refused_seen.wait_for(Option::is_some);
        let started = tokio::time::timeout(self.start_timeout, async {
            tokio::select! {
                Ok(_) = ready => None,
                Ok(reason) = refused, if fail_fast => Some(reason.clone().unwrap_or_default()),
                else => std::future::pending().await,
            }
        })
        .await;
        match started {
            Ok(None) => return Ok(Client::from_parts(shared, tasks)),
            Ok(Some(reason)) => return Err(ConnectError::Refused { reason }),
            Err(_) => {}
        }
        let last_error = last_error_seen.borrow().clone();
        match self.on_timeout {
            OnTimeout::Fail => Err(ConnectError::Timeout { waited: self.start_timeout, last_error }),
            OnTimeout::Serve => {
                warn!(
                    error = last_error.as_deref().unwrap_or("none yet"),
                    "starting without flagd: serving cached flags or defaults"
                );
                Ok(Client::from_parts(shared, tasks))
            }
        }
    }

    /// The connection settings for one endpoint.
    fn endpoint(&self, address: &str) -> Result<Endpoint, ConnectError> {
        let endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(|error| ConnectError::Endpoint {
                endpoint: address.to_owned(),
                reason: error.to_string(),
            })?
            .connect_timeout(self.connect_timeout)
            // HTTP/2 pings find a connection that died without a FIN (a NAT or proxy that
            // dropped it) even before the stream's heartbeat timeout does.
            .http2_keep_alive_interval(self.heartbeat_timeout)
            .keep_alive_timeout(self.connect_timeout)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        with_tls(endpoint, address, self.ca_certificate.as_deref())
    }
}

/// An `https://` endpoint speaks TLS, checked against `ca` or else the system's roots; an
/// `http://` one given a CA is refused, since the CA would silently not be used.
fn with_tls(endpoint: Endpoint, address: &str, ca: Option<&[u8]>) -> Result<Endpoint, ConnectError> {
    let invalid = |reason: String| ConnectError::Endpoint { endpoint: address.to_owned(), reason };
    if !address.starts_with("https://") {
        return match ca {
            Some(_) => Err(invalid("a CA certificate was given, but the endpoint is not https://".into())),
            None => Ok(endpoint),
        };
    }
    let tls = match ca {
        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        None => ClientTlsConfig::new().with_native_roots(),
    };
    endpoint.tls_config(tls).map_err(|error| invalid(format!("TLS: {error}")))
}

/// Applies the offline file again whenever its modification time or length changes.
async fn reload_forever(
    shared: std::sync::Weak<Shared>,
    path: PathBuf,
    mut stamp: Option<(std::time::SystemTime, u64)>,
    interval: Duration,
) {
    let mut loads = 1;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A file written in place (not renamed over) can be read half-written, and a YAML file
    // cut at a flag boundary is still a valid, smaller flag set. So a change is read only
    // once its stamp has held for a whole interval, and applied only if the stamp held
    // while it was read.
    let mut settling = None;
    loop {
        ticks.tick().await;
        let now = file_stamp(&path);
        if now == stamp {
            settling = None;
            continue;
        }
        if settling != Some(now) {
            settling = Some(now);
            continue;
        }
        let Some(shared) = shared.upgrade() else { return };
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let set = read_flags_file(&path);
                (set, file_stamp(&path))
            })
            .await
        };
        let read = match read {
            Ok((_, after)) if after != now => continue, // changed while read: settle again
            Ok((set, _)) => Ok(set),
            Err(error) => Err(error),
        };
        stamp = now;
        settling = None;
        match read {
            Ok(Ok(set)) => {
                loads += 1;
                let previous = Arc::clone(&shared.live.load().model);
                match shared.install(Model::from_set(set, loads, &previous), loads) {
                    Ok(_) => info!(path = %path.display(), "reloaded the offline flags file"),
                    Err(error) => warn!(%error, "keeping the previous flags"),
                }
            }
            Ok(Err(error)) => warn!(%error, "keeping the previous flags: the offline file is not usable"),
            Err(error) => warn!(%error, "could not reload the offline file"),
        }
    }
}
