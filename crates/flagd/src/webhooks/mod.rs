//! Change notifications: every committed change of the environments a webhook covers is
//! POSTed to it, at least once and in revision order per environment, from a durable
//! outbox in the store.
//!
//! # Delivery
//!
//! The store's change log is the outbox (it is never pruned) and each webhook keeps, per
//! environment, the last revision its receiver acknowledged with a 2xx (`store`'s
//! `webhook_cursors`, which also says where a new webhook starts: from the start that first
//! configures it, not from the beginning of history). One task per webhook (`deliver`) sends
//! the changes after its cursors one at a time; a write only wakes it, so a receiver that is
//! slow or down for days never slows writes. Failed attempts — refused connections, failed
//! TLS handshakes, timeouts (`--webhook-timeout`, per attempt), non-2xx answers, 4xx
//! included — are retried with backoff (`backoff`, capped by `--webhook-retry-max`) until
//! they succeed: nothing is skipped, and a restart resumes from the cursors.
//!
//! # Requests
//!
//! Over TLS for an `https://` URL (rustls; the receiver's certificate checked for the URL's
//! host against `ca-file=`, `--webhook-ca-file` or the system's CA certificates: `trust`).
//!
//! `POST` with `Content-Type: application/json` and these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Flagd-Signature` | `sha256=<hex HMAC-SHA256 of the exact body>`, when the webhook has a secret |
//! | `X-Flagd-Webhook` | the webhook's id |
//! | `X-Flagd-Delivery` | `<environment>/<revision>`: the same on every attempt, so a receiver can drop repeats |
//! | `X-Flagd-Attempt` | 1, 2, 3… within one flagd run |
//!
//! The `json` body (`payload`):
//!
//! ```json
//! {"webhook": "wh-3f2a9c1b0d4e", "store_id": "9c1e…", "environment": "production",
//!  "revision": 42, "kind": "flag", "key": "chat", "version": 7, "action": "kill",
//!  "actor": "ana", "reason": "incident 4711", "time": "2026-12-01T10:00:00.123Z",
//!  "before": {"version": 6, "enabled": true, "killed": false, "default": {"variant": "on"},
//!             "off_variant": "off", "variants": ["on", "off"], "rules": 2, "prerequisites": 0},
//!  "after":  {"version": 7, "enabled": false, "killed": true, …}}
//! ```
//!
//! `action` is the history's operation (`create`, `update`, `delete`, `kill`, `revive`,
//! `rollback`, `set_rollout`, `serve_variant`); applies, promotes and restores deliver one
//! body per flag or segment they changed, each with its own revision. `before` is `null`
//! for a creation, `after` for a deletion; a segment's summary is its version and its
//! counts of rules, included and excluded keys. The `slack` body is
//! `{"text": "ana killed chat in production: incident 4711"}`.
//!
//! # Layout
//!
//! `trust` (CA certificates, TLS settings) ← `config` (the `--webhook` spec) ← `payload`,
//! `signature`, `backoff`, `connector` (TCP, TLS) ← `client` (one attempt), `metrics` ←
//! `deliver` ← this file (start and stop).

mod backoff;
mod client;
mod config;
mod connector;
mod deliver;
mod metrics;
mod payload;
mod signature;
mod trust;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::RootCertStore;

pub(crate) use config::{DEFAULT_RETRY_MAX, DEFAULT_TIMEOUT, check_ids};
pub use config::{Webhook, WebhookFormat, WebhookSpecError};
pub(crate) use metrics::describe as describe_metrics;

use crate::state::State;
use crate::store::StoreError;
use client::Poster;
use deliver::Deliverer;

/// The running deliverers.
#[derive(Debug)]
pub(crate) struct Deliveries {
    tasks: Vec<JoinHandle<()>>,
}

/// Registers every configured webhook in the store (so each starts from now, or resumes),
/// then starts its deliverer; they run until `stop` is set. Called before the server says it
/// is ready: a write acknowledged after that is owed to every webhook.
pub(crate) async fn start(state: &State, stop: watch::Receiver<bool>) -> Result<Deliveries, StoreError> {
    let config = &state.config;
    let mut tasks = Vec::new();
    // Read once, and only if an https webhook has no CA file of its own or global.
    let mut system_roots: Option<Arc<RootCertStore>> = None;
    for webhook in &config.webhooks {
        let cursors = register(state, webhook).await?;
        let tls = webhook.is_https().then(|| {
            let roots = match webhook.ca.as_ref().or(config.webhook_ca.as_ref()) {
                Some(ca) => ca.roots(),
                None => Arc::clone(system_roots.get_or_insert_with(|| {
                    crate::ca_file::system_roots(
                        "https webhooks without ca-file=",
                        "--webhook-ca-file or ca-file=",
                    )
                })),
            };
            trust::client_config(roots)
        });
        let deliverer = Deliverer {
            webhook: webhook.clone(),
            format: webhook.format.unwrap_or(config.webhook_format),
            store: state.store.clone(),
            poster: Poster::new(config.webhook_timeout, tls),
            retry_max: config.webhook_retry_max,
            cursors,
            commits: state.hub.commits(),
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(deliverer.run()));
    }
    Ok(Deliveries { tasks })
}

async fn register(state: &State, webhook: &Webhook) -> Result<BTreeMap<String, u64>, StoreError> {
    let (store, id, filter) = (state.store.clone(), webhook.id.clone(), webhook.environments.clone());
    tokio::task::spawn_blocking(move || store.register_webhook(&id, filter.as_deref()))
        .await
        .map_err(|error| StoreError::Panicked { message: error.to_string() })?
}

impl Deliveries {
    /// Waits for the deliverers to end (after `stop`), each having flushed its cursors.
    pub(crate) async fn finish(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
