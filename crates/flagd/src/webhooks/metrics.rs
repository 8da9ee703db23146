//! The webhook metrics on `/metrics`, labelled by webhook id (never its URL, whose path is
//! often a credential) and, for lag, by environment.

/// Registers their descriptions.
pub(crate) fn describe() {
    metrics::describe_counter!(
        "flagd_webhook_deliveries_total",
        "Changes delivered to a webhook (2xx answers)."
    );
    metrics::describe_counter!(
        "flagd_webhook_failures_total",
        "Failed delivery attempts, by cause: connect, tls (the handshake failed: an untrusted certificate, or one for another name), timeout, status (a non-2xx answer), transport (the connection broke)."
    );
    metrics::describe_gauge!(
        "flagd_webhook_lag_revisions",
        "Revisions of an environment committed but not yet delivered to a webhook."
    );
    metrics::describe_gauge!(
        "flagd_webhook_lag_seconds",
        "Seconds since the oldest change not yet delivered to a webhook was committed; 0 when none is waiting."
    );
}

/// A 2xx answer.
pub(crate) fn delivered(webhook: &str) {
    metrics::counter!("flagd_webhook_deliveries_total", "webhook" => webhook.to_owned()).increment(1);
}

/// A failed attempt.
pub(crate) fn failed(webhook: &str, cause: &'static str) {
    metrics::counter!("flagd_webhook_failures_total", "webhook" => webhook.to_owned(), "cause" => cause)
        .increment(1);
}

/// Makes a webhook's counters show (as 0) before anything happens, so a dashboard's rate has
/// a start.
pub(crate) fn register(webhook: &str) {
    metrics::counter!("flagd_webhook_deliveries_total", "webhook" => webhook.to_owned()).increment(0);
    for cause in ["connect", "tls", "timeout", "status", "transport"] {
        metrics::counter!("flagd_webhook_failures_total", "webhook" => webhook.to_owned(), "cause" => cause)
            .increment(0);
    }
}

/// How far behind `webhook` is in `environment`.
pub(crate) fn lag(webhook: &str, environment: &str, revisions: u64, seconds: f64) {
    let labels = [("webhook", webhook.to_owned()), ("environment", environment.to_owned())];
    #[allow(clippy::cast_precision_loss)] // a revision count beyond 2^53 is not a lag anyone reads
    metrics::gauge!("flagd_webhook_lag_revisions", &labels).set(revisions as f64);
    metrics::gauge!("flagd_webhook_lag_seconds", &labels).set(seconds);
}
