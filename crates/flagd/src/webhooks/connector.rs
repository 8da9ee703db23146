//! The connector of the webhooks' hyper client: TCP from hyper-util's `HttpConnector`, then,
//! for an `https://` URL, a TLS handshake with tokio-rustls, checking the receiver's
//! certificate and its name (the URL's host) — small glue over crates already in the build,
//! where hyper-rustls would be one more. A failed handshake is its own error, so the attempt's failure says
//! `tls` and not `connect`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tower_service::Service;

/// Connects to receivers over TCP, and over TLS for `https://`.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    tcp: HttpConnector,
    /// `None` for a webhook posting over plain HTTP: it has no TLS settings to build.
    tls: Option<Arc<ClientConfig>>,
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// No TCP connection (refused, unreachable, DNS).
    #[error(transparent)]
    Tcp(Box<dyn std::error::Error + Send + Sync>),
    /// Connected, but the TLS handshake failed: an untrusted or expired certificate, one for
    /// another name, no protocol in common, or plain HTTP on the port.
    // What rustls said follows as the cause, in the log's error chain.
    #[error("TLS handshake with {host}")]
    Tls {
        /// The host the certificate was checked for.
        host: String,
        /// What rustls said.
        source: io::Error,
    },
}

impl Connector {
    /// `tls`: the settings for `https://` URLs, when the webhook has one.
    pub(crate) fn new(mut tcp: HttpConnector, tls: Option<Arc<ClientConfig>>) -> Connector {
        // HttpConnector refuses other schemes than http unless told: the TLS is done here.
        tcp.enforce_http(false);
        Connector { tcp, tls }
    }
}

impl Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    // Boxed: one allocation per new connection, never per delivery on a kept one.
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.tcp.poll_ready(cx).map_err(|error| ConnectError::Tcp(error.into()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let tls = self.tls.clone();
        let connecting = self.tcp.call(uri.clone());
        Box::pin(async move {
            let tcp = connecting.await.map_err(|error| ConnectError::Tcp(error.into()))?;
            if !https {
                return Ok(Stream::Plain(tcp));
            }
            // An IPv6 host is bracketed in a URI, not in a certificate.
            let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            let refused = |source| ConnectError::Tls { host: host.to_owned(), source };
            let Some(tls) = tls else {
                return Err(refused(io::Error::other("no TLS settings for this webhook")));
            };
            let name = ServerName::try_from(host.to_owned())
                .map_err(|error| refused(io::Error::new(io::ErrorKind::InvalidInput, error)))?;
            let stream = TlsConnector::from(tls).connect(name, tcp.into_inner()).await.map_err(refused)?;
            Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// A connection to a receiver, in clear or over TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TokioIo<TcpStream>),
    // Boxed: a TLS session's buffers make it far larger than a TCP stream.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            Stream::Tls(tls) => tls.inner().get_ref().0.connected(),
        }
    }
}

// Both kinds are `Unpin`, so each call is passed on through a fresh `Pin`.
impl Read for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}
