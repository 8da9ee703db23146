//! One delivery attempt: a POST with a deadline, and what came of it.
//!
//! hyper's pooled client (hyper-util's), already in the build through tonic and axum: it
//! keeps a connection to each receiver open between deliveries. The deadline covers the
//! whole attempt — connect, request, answer and its body — so a receiver that accepts and
//! never answers costs one timeout, not a stuck deliverer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// How much of an answer's body is read (and logged, on failure); the rest is dropped.
const ANSWER_LIMIT: usize = 4096;

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection could be made (refused, unreachable, DNS).
    Connect(String),
    /// No answer within the deadline.
    Timeout,
    /// The receiver answered, with a status other than 2xx.
    Status {
        /// The status code.
        code: u16,
        /// How long it asked flagd to wait (`Retry-After` in seconds), if it did.
        retry_after: Option<Duration>,
        /// The start of its answer, for the log.
        answer: String,
    },
    /// The connection broke during the exchange.
    Transport(String),
}

impl Failure {
    /// The `cause` label of `flagd_webhook_failures_total`.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Timeout => "timeout",
            Failure::Status { .. } => "status",
            Failure::Transport(_) => "transport",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(error) => write!(f, "cannot connect: {error}"),
            Failure::Timeout => f.write_str("no answer within the timeout"),
            Failure::Status { code, answer, .. } => write!(f, "answered {code}: {answer}"),
            Failure::Transport(error) => write!(f, "the connection broke: {error}"),
        }
    }
}

/// Posts to receivers; one per webhook.
#[derive(Clone, Debug)]
pub(crate) struct Poster {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Poster {
    /// A client whose attempts each end within `timeout`.
    pub(crate) fn new(timeout: Duration) -> Poster {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        // The timer is what evicts idle connections; without one they are kept forever.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Poster { client, timeout }
    }

    /// POSTs `body` with `headers` to `url`; `Ok` with the status on a 2xx answer.
    pub(crate) async fn post(
        &self,
        url: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<u16, Failure> {
        match tokio::time::timeout(self.timeout, self.exchange(url, headers, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(
        &self,
        url: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<u16, Failure> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.clone();
        let fields = request.headers_mut();
        fields.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        fields.insert(USER_AGENT, HeaderValue::from_static(concat!("flagd/", env!("CARGO_PKG_VERSION"))));
        for (name, value) in headers {
            fields.insert(name.clone(), value.clone());
        }
        let response = self.client.request(request).await.map_err(|error| {
            let text = crate::store::chain(&error);
            if error.is_connect() { Failure::Connect(text) } else { Failure::Transport(text) }
        })?;
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read (a bounded part of) the answer so the connection can be used again.
        let answer = match Limited::new(response.into_body(), ANSWER_LIMIT).collect().await {
            Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        if (200..300).contains(&code) {
            Ok(code)
        } else {
            Err(Failure::Status { code, retry_after, answer: answer.chars().take(200).collect() })
        }
    }
}
