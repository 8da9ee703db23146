//! One delivery attempt: a POST with a deadline, and what came of it.
//!
//! hyper's pooled client (hyper-util's), already in the build through tonic and axum: it
//! keeps a connection to each receiver open between deliveries. The deadline covers the
//! whole attempt — connect, request, answer and its body — so a receiver that accepts and
//! never answers costs one timeout, not a stuck deliverer. `https://` receivers are reached
//! through `connector`'s TLS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_rustls::rustls::ClientConfig;

use super::connector::{ConnectError, Connector};

/// How much of an answer's body is read (and logged, on failure); the rest is dropped.
const ANSWER_LIMIT: usize = 4096;

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No connection could be made (refused, unreachable, DNS).
    Connect(String),
    /// Connected, but the TLS handshake failed (the receiver's certificate is not trusted,
    /// or not for its name).
    Tls(String),
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
            Failure::Tls(_) => "tls",
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
            Failure::Tls(error) => write!(f, "no TLS session: {error}"),
            Failure::Timeout => f.write_str("no answer within the timeout"),
            Failure::Status { code, answer, .. } => write!(f, "answered {code}: {answer}"),
            Failure::Transport(error) => write!(f, "the connection broke: {error}"),
        }
    }
}

/// Posts to receivers; one per webhook.
#[derive(Clone, Debug)]
pub(crate) struct Poster {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl Poster {
    /// A client whose attempts each end within `timeout`; `tls`: its settings for an
    /// `https://` receiver.
    pub(crate) fn new(timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Poster {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        let connector = Connector::new(tcp, tls);
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
            if is_tls(&error) {
                Failure::Tls(text)
            } else if error.is_connect() {
                Failure::Connect(text)
            } else {
                Failure::Transport(text)
            }
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

/// Whether the connector's TLS handshake is among the causes of `error`.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if matches!(error.downcast_ref::<ConnectError>(), Some(ConnectError::Tls { .. })) {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;
    use crate::ca_file::CaFile;
    use crate::webhooks::trust::client_config;

    /// A CA (PEM) and a certificate it signed for `names`, with its key.
    fn ca_and_leaf(names: &[&str]) -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
        let leaf = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (ca.pem(), leaf.der().clone(), key)
    }

    /// An https server on 127.0.0.1 answering 204 to everything.
    async fn https_server(leaf: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(|_request| async {
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                        Ok::<_, std::convert::Infallible>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        address
    }

    fn poster(ca_pem: &str) -> Poster {
        let ca = CaFile::from_pem("ca.pem", ca_pem.as_bytes()).unwrap();
        Poster::new(Duration::from_secs(5), Some(client_config(ca.roots())))
    }

    async fn post(poster: &Poster, url: &str) -> Result<u16, Failure> {
        poster.post(&url.parse().unwrap(), &[], Bytes::from_static(b"{}")).await
    }

    #[tokio::test]
    async fn an_https_receiver_whose_certificate_chains_to_the_ca_and_names_its_host_is_posted_to() {
        let (ca, leaf, key) = ca_and_leaf(&["localhost", "127.0.0.1"]);
        let address = https_server(leaf, key).await;
        let poster = poster(&ca);
        assert_eq!(post(&poster, &format!("https://127.0.0.1:{}/hook", address.port())).await.unwrap(), 204);
        assert_eq!(post(&poster, &format!("https://localhost:{}/hook", address.port())).await.unwrap(), 204);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_or_one_for_another_name_fails_as_tls() {
        let (ca, leaf, key) = ca_and_leaf(&["hooks.example"]);
        let address = https_server(leaf, key).await;
        let url = format!("https://127.0.0.1:{}/hook", address.port());
        let failure = post(&poster(&ca), &url).await.unwrap_err();
        assert_eq!(failure.cause(), "tls", "{failure}");
        assert!(failure.to_string().contains("TLS handshake with 127.0.0.1"), "{failure}");
        assert!(failure.to_string().contains("certificate not valid for name \"127.0.0.1\""), "{failure}");
        // A certificate for the right name, from a CA flagd does not trust.
        let (_, leaf, key) = ca_and_leaf(&["127.0.0.1"]);
        let address = https_server(leaf, key).await;
        let url = format!("https://127.0.0.1:{}/hook", address.port());
        let failure = post(&poster(&ca), &url).await.unwrap_err();
        assert_eq!(failure.cause(), "tls", "{failure}");
        assert!(failure.to_string().contains("invalid peer certificate"), "{failure}");
    }

    #[tokio::test]
    async fn plain_http_on_an_https_url_fails_as_tls_and_a_closed_port_as_connect() {
        let (ca, _, _) = ca_and_leaf(&["127.0.0.1"]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt as _;
                    let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
                });
            }
        });
        let failure = post(&poster(&ca), &format!("https://127.0.0.1:{port}/hook")).await.unwrap_err();
        assert_eq!(failure.cause(), "tls", "{failure}");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let failure = post(&poster(&ca), &format!("https://{closed}/hook")).await.unwrap_err();
        assert_eq!(failure.cause(), "connect", "{failure}");
    }
}
