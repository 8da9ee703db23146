//! One webhook's deliverer: a task that sends the environments' changes after its cursors,
//! one at a time in revision order, retrying each until its receiver takes it.
//!
//! The write path never waits for it: a write's only part is the hub's publication, which
//! wakes this task through a `watch` counter; the task reads what changed from the store.
//! The next change is sent only once the previous one was answered 2xx, so a receiver sees
//! every revision of an environment in order, and sees one twice only after an attempt
//! whose answer flagd did not get (a timeout, a broken connection, a restart mid-request) —
//! at least once, never skipped. Every failure is retried, 4xx included: dropping a change
//! a receiver refused would lose it silently, while a stuck webhook shows in its lag metrics
//! and in a warning per attempt.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::backoff;
use super::client::{Failure, Poster};
use super::config::{Webhook, WebhookFormat};
use super::metrics;
use super::payload;
use super::signature;
use crate::store::{Outbox, OutboxEntry, Store, StoreError, chain};

/// Changes read from one environment per visit; environments are visited in turn, so one
/// with a long backlog does not hold the others back for long.
const BATCH: usize = 32;

/// How often lag metrics are refreshed while a delivery waits to be retried.
const LAG_REFRESH: Duration = Duration::from_secs(1);

/// The round was cut short: the server is stopping, or this flagd no longer leads the
/// store's flagds (another delivers from the stored cursors now).
struct Stopped;

/// A webhook's delivery task; see the module docs.
pub(crate) struct Deliverer {
    pub(crate) webhook: Webhook,
    pub(crate) format: WebhookFormat,
    pub(crate) store: Store,
    pub(crate) poster: Poster,
    /// The longest wait between two attempts.
    pub(crate) retry_max: Duration,
    /// Per environment, the last revision delivered. Ahead of the store's when a cursor
    /// write failed: this run goes on from here, a restart delivers again from the store's.
    pub(crate) cursors: BTreeMap<String, u64>,
    /// The hub's publication counter: changes whenever a write commits.
    pub(crate) commits: watch::Receiver<u64>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Deliverer {
    /// Delivers until the server stops, then makes its cursors durable.
    pub(crate) async fn run(mut self) {
        let id = self.webhook.id.clone();
        metrics::register(&id);
        info!(webhook = %id, target = %self.webhook.target(), environments = ?self.webhook.environments, "webhook delivering");
        let mut cursors_current = true;
        loop {
            if self.wait_to_lead(&mut cursors_current).await.is_err() {
                break;
            }
            // Marked seen before the store is read: a commit after this wakes the next wait.
            self.commits.borrow_and_update();
            match self.round().await {
                Err(Stopped) if *self.stop.borrow() => break,
                Err(Stopped) => {
                    // Whoever led meanwhile moved the stored cursors on.
                    cursors_current = false;
                    continue;
                }
                Ok(true) => continue,
                Ok(false) => {}
            }
            let mut stop = self.stop.clone();
            let hub_gone = tokio::select! {
                changed = self.commits.changed() => changed.is_err(),
                _ = stop.wait_for(|stop| *stop) => break,
            };
            if hub_gone {
                // Nothing will wake this task again: the server is shutting down.
                let _ = stop.wait_for(|stop| *stop).await;
                break;
            }
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush_webhook_cursors()).await {
            Ok(Ok(())) => debug!(webhook = %id, "webhook cursors flushed"),
            Ok(Err(error)) => {
                warn!(webhook = %id, error = %chain(&error), "flushing the webhook's cursors failed; changes since the last durable commit will be delivered again")
            }
            Err(error) => warn!(webhook = %id, %error, "flushing the webhook's cursors failed"),
        }
    }

    /// Waits until this flagd leads the store's flagds (at once on redb): of several on one
    /// store, one delivers. `cursors_current` is cleared while another leads; this one
    /// then takes over from the cursors the other kept in the store.
    async fn wait_to_lead(&mut self, cursors_current: &mut bool) -> Result<(), Stopped> {
        loop {
            if self.leads().await {
                if !*cursors_current {
                    let (store, id, filter) =
                        (self.store.clone(), self.webhook.id.clone(), self.webhook.environments.clone());
                    let registered =
                        tokio::task::spawn_blocking(move || store.register_webhook(&id, filter.as_deref()))
                            .await;
                    match registered {
                        Ok(Ok(cursors)) => {
                            info!(webhook = %self.webhook.id, "this flagd leads now: delivering from the store's cursors");
                            self.cursors = cursors;
                            *cursors_current = true;
                        }
                        Ok(Err(error)) => self.store_failed("reading the cursors", &chain(&error)).await?,
                        Err(error) => self.store_failed("reading the cursors", &error.to_string()).await?,
                    }
                }
                if *cursors_current {
                    return Ok(());
                }
                continue;
            }
            *cursors_current = false;
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|stop| *stop) => return Err(Stopped),
            }
        }
    }

    /// One visit of every environment covered: `true` when something was delivered (or the
    /// store failed and is worth another look), `false` when all is delivered.
    async fn round(&mut self) -> Result<bool, Stopped> {
        // Deleted environments too: the deletion of their flags is a change owed.
        let environments = match self.read(Store::environments_with_history).await {
            Ok(environments) => environments,
            Err(error) => {
                self.store_failed("listing the environments", &error).await?;
                return Ok(true);
            }
        };
        let mut delivered = false;
        let covered: Vec<String> =
            environments.into_iter().filter(|name| self.webhook.covers(name)).collect();
        for environment in covered {
            let after = self.cursors.get(&environment).copied().unwrap_or(0);
            let name = environment.clone();
            let outbox = match self.read(move |store| store.webhook_outbox(&name, after, BATCH)).await {
                Ok(outbox) => outbox,
                Err(error) => {
                    self.store_failed("reading the outbox", &error).await?;
                    return Ok(true);
                }
            };
            self.report_lag(&environment, after, &outbox);
            let Outbox { revision, entries } = outbox;
            for (at, change) in entries.iter().enumerate() {
                self.deliver(change).await?;
                let delivered_to = change.entry.revision;
                self.cursors.insert(environment.clone(), delivered_to);
                self.save_cursor(&environment, delivered_to).await;
                let oldest = entries.get(at + 1).map(|next| next.entry.timestamp_ms);
                metrics::lag(
                    &self.webhook.id,
                    &environment,
                    revision.saturating_sub(delivered_to),
                    age(oldest),
                );
                delivered = true;
            }
        }
        Ok(delivered)
    }

    /// Sends one change until its receiver answers 2xx.
    async fn deliver(&self, change: &OutboxEntry) -> Result<(), Stopped> {
        let (environment, revision) = (change.entry.environment.as_str(), change.entry.revision);
        let encoded = match self.format {
            WebhookFormat::Json => payload::json(&self.webhook.id, self.store.id(), change),
            WebhookFormat::Slack => payload::slack(change),
        };
        let body = match encoded {
            Ok(body) => Bytes::from(body),
            // Not reachable with flag-core's types; if it were, the change is never skipped.
            Err(error) => loop {
                warn!(webhook = %self.webhook.id, environment, revision, %error, "encoding a webhook body failed");
                self.wait(Duration::from_secs(60), change).await?;
            },
        };
        let mut headers = vec![
            header("x-flagd-webhook", &self.webhook.id),
            header("x-flagd-delivery", &format!("{environment}/{revision}")),
        ];
        if let Some(secret) = &self.webhook.secret {
            headers.push(header(signature::HEADER, &signature::signature(secret, &body)));
        }
        let mut failures: u32 = 0;
        loop {
            // Asked before every attempt: a flagd that lost the lead mid-round (its session
            // broke) must not go on posting what the new leader delivers too.
            if !self.leads().await {
                info!(webhook = %self.webhook.id, environment, revision, "no longer leading: another flagd delivers");
                return Err(Stopped);
            }
            let attempt = failures + 1;
            let mut attempt_headers = headers.clone();
            attempt_headers.push(header("x-flagd-attempt", &attempt.to_string()));
            let mut stop = self.stop.clone();
            let outcome = tokio::select! {
                outcome = self.poster.post(&self.webhook.url, &attempt_headers, body.clone()) => outcome,
                _ = stop.wait_for(|stop| *stop) => return Err(Stopped),
            };
            match outcome {
                Ok(status) => {
                    metrics::delivered(&self.webhook.id);
                    debug!(webhook = %self.webhook.id, environment, revision, attempt, status, "webhook delivered");
                    return Ok(());
                }
                Err(failure) => {
                    failures = failures.saturating_add(1);
                    metrics::failed(&self.webhook.id, failure.cause());
                    let retry_after = match &failure {
                        Failure::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = backoff::delay(failures, self.retry_max, retry_after, fastrand::f64());
                    warn!(
                        webhook = %self.webhook.id,
                        target = %self.webhook.target(),
                        environment,
                        revision,
                        attempt,
                        cause = failure.cause(),
                        error = %failure,
                        retry_in = ?wait,
                        "webhook delivery failed; retrying"
                    );
                    self.wait(wait, change).await?;
                }
            }
        }
    }

    /// Whether this flagd leads the store's flagds (always, on redb).
    async fn leads(&self) -> bool {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.leads()).await.unwrap_or(false)
    }

    /// Waits `wait` (ending early only at shutdown), refreshing the lag metrics meanwhile:
    /// they are what tells an operator a receiver is down.
    async fn wait(&self, wait: Duration, pending: &OutboxEntry) -> Result<(), Stopped> {
        let deadline = Instant::now() + wait;
        loop {
            self.refresh_lag(pending).await;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(deadline.min(now + LAG_REFRESH) - now) => {}
                _ = stop.wait_for(|stop| *stop) => return Err(Stopped),
            }
        }
    }

    /// Sets every covered environment's lag from the store; `pending` is the change waiting.
    async fn refresh_lag(&self, pending: &OutboxEntry) {
        let (cursors, webhook) = (self.cursors.clone(), self.webhook.clone());
        let lags = self
            .read(move |store| {
                let mut lags = Vec::new();
                for environment in store.environments()?.into_iter().filter(|name| webhook.covers(name)) {
                    let after = cursors.get(&environment).copied().unwrap_or(0);
                    let outbox = store.webhook_outbox(&environment, after, 1)?;
                    lags.push((environment, after, outbox));
                }
                Ok(lags)
            })
            .await;
        match lags {
            Ok(lags) => {
                for (environment, after, outbox) in lags {
                    self.report_lag(&environment, after, &outbox);
                }
            }
            // The store is failing too: what is known is the waiting change's age.
            Err(_) => metrics::lag(
                &self.webhook.id,
                &pending.entry.environment,
                1,
                age(Some(pending.entry.timestamp_ms)),
            ),
        }
    }

    fn report_lag(&self, environment: &str, after: u64, outbox: &Outbox) {
        let oldest = outbox.entries.first().map(|change| change.entry.timestamp_ms);
        metrics::lag(&self.webhook.id, environment, outbox.revision.saturating_sub(after), age(oldest));
    }

    /// Records a delivery in the store. A failure is logged and this run goes on from its own
    /// cursor: the change is delivered again only if flagd restarts before a later save.
    async fn save_cursor(&self, environment: &str, revision: u64) {
        let (id, name) = (self.webhook.id.clone(), environment.to_owned());
        if let Err(error) = self.read(move |store| store.advance_webhook_cursor(&id, &name, revision)).await {
            warn!(webhook = %self.webhook.id, environment, revision, %error, "saving the webhook's cursor failed");
        }
    }

    async fn store_failed(&self, doing: &str, error: &str) -> Result<(), Stopped> {
        warn!(webhook = %self.webhook.id, %error, "{doing} for the webhook failed; trying again");
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => Ok(()),
            _ = stop.wait_for(|stop| *stop) => Err(Stopped),
        }
    }

    /// Runs a store call off the async runtime; the error as text, with its causes.
    async fn read<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || call(&store)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(chain(&error)),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Seconds since `timestamp_ms` (0 for `None`: nothing waiting).
fn age(timestamp_ms: Option<i64>) -> f64 {
    let Some(then) = timestamp_ms else { return 0.0 };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    #[allow(clippy::cast_precision_loss)] // milliseconds of lag fit an f64 exactly
    let seconds = now.saturating_sub(then).max(0) as f64 / 1000.0;
    seconds
}

/// A header of ours. Its values are ids, environment names, numbers and hex: always valid.
fn header(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    (HeaderName::from_static(name), value)
}
