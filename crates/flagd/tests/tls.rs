//! flagd over TLS: gRPC and the management port with a certificate made in the test, a
//! client that trusts its CA served, one that does not refused, a bad pair refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use flag_proto::v1::admin_client::AdminClient;
use flag_proto::v1::{self};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::{TestServer, flag, put};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A CA and a server certificate it signed for 127.0.0.1 and localhost: (CA PEM, identity).
fn certificates() -> (String, flagd::TlsIdentity) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), flagd::TlsIdentity::from_pem(leaf.pem(), key.serialize_pem()))
}

const FLAG: &str = "
key: checkout
variants: [{ name: on, value: true }, { name: off, value: false }]
off_variant: off
default: { variant: on }";

async fn tls_server() -> (TestServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (ca, identity) = certificates();
    let server =
        TestServer::start(flagd::Config::new(dir.path().join("flags.redb")).with_tls(identity)).await;
    (server, ca, dir)
}

#[tokio::test]
async fn grpc_over_tls_serves_a_client_that_trusts_the_ca() {
    let (server, ca, _dir) = tls_server().await;
    let endpoint = Endpoint::from_shared(format!("https://{}", server.grpc))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca)))
        .unwrap();
    let mut admin = AdminClient::new(endpoint.connect().await.unwrap());
    admin.put_flag(put("", flag(FLAG), None, "over tls")).await.unwrap();
    let listed = admin
        .list_flags(v1::ListFlagsRequest { environment: String::new(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(), ["checkout"]);
    server.stop().await;
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused_and_plain_http_gets_nothing() {
    let (server, _ca, _dir) = tls_server().await;
    // The system roots do not know the test's CA.
    let untrusted = Endpoint::from_shared(format!("https://{}", server.grpc))
        .unwrap()
        .tls_config(ClientTlsConfig::new().with_native_roots())
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    let chain = error_chain(&untrusted);
    assert!(chain.contains("certificate"), "{chain}");
    // Plain HTTP/2 to the TLS port never gets an answer to a call.
    let plain = Endpoint::from_shared(format!("http://{}", server.grpc)).unwrap().connect_lazy();
    let mut admin = AdminClient::new(plain);
    let request = v1::ListFlagsRequest { environment: String::new(), ..Default::default() };
    let mut request = tonic::Request::new(request);
    request.set_timeout(std::time::Duration::from_secs(2));
    assert!(admin.list_flags(request).await.is_err());
    server.stop().await;
}

/// One request to the management port over TLS, trusting `ca`: the whole response.
async fn https(server: &TestServer, ca: &str, request: &str) -> String {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.management).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn readyz_over_https() {
    let (server, ca, _dir) = tls_server().await;
    let response =
        https(&server, &ca, "GET /readyz HTTP/1.1\r\nhost: flagd\r\nconnection: close\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ready\n"), "{response}");
    // Plain HTTP to the HTTPS port is not answered as HTTP.
    let mut plain = tokio::net::TcpStream::connect(server.management).await.unwrap();
    plain.write_all(b"GET /readyz HTTP/1.1\r\nhost: flagd\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    server.stop().await;
}

#[tokio::test]
async fn the_console_over_https_keeps_its_session_cookie_to_https() {
    let (server, ca, _dir) = tls_server().await;
    let form = "name=ana&next=/ui/flags";
    let request = format!(
        "POST /ui/login HTTP/1.1\r\nhost: flagd\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
        form.len()
    );
    let response = https(&server, &ca, &request).await;
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    let cookie =
        response.lines().find_map(|line| line.strip_prefix("set-cookie: ")).expect("a session cookie");
    assert!(cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.ends_with("; Secure"), "served over TLS, the cookie must be Secure: {cookie}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_certificate_or_key_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, identity) = certificates();
    let data = dir.path().join("flags.redb");
    let cases = [
        (flagd::TlsIdentity::from_pem("not pem", identity.key_pem.clone()), "TLS certificate"),
        (flagd::TlsIdentity::from_pem(identity.cert_pem.clone(), "not pem"), "TLS key"),
        // A key that is not the certificate's.
        (
            flagd::TlsIdentity::from_pem(
                identity.cert_pem.clone(),
                KeyPair::generate().unwrap().serialize_pem(),
            ),
            "TLS certificate and key",
        ),
    ];
    for (bad, expected) in cases {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let management = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = flagd::serve_reporting(
            listener,
            Some(management),
            flagd::Config::new(&data).with_tls(bad),
            async {},
            |_| panic!("reported ready with a bad certificate"),
        )
        .await
        .unwrap_err();
        assert!(matches!(refused, flagd::ServeError::Tls(_)), "{refused}");
        assert!(refused.to_string().contains(expected), "{refused}");
    }
    assert!(!data.exists(), "a refused start created the store");
}

#[tokio::test]
async fn beyond_loopback_needs_tls_even_with_a_token_and_starts_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = flagd::Config::new(dir.path().join("flags.redb")).with_admin_token("secret");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = flagd::serve(listener, config.clone(), async {}).await.unwrap_err();
    assert!(matches!(refused, flagd::ServeError::Plaintext(_)), "{refused}");
    assert!(refused.to_string().contains("--tls-cert"), "{refused}");
    let (_ca, identity) = certificates();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let (ready, readied) = tokio::sync::oneshot::channel();
    // Starts (and stops at once: the shutdown future is already complete).
    flagd::serve_reporting(listener, None, config.with_tls(identity), async {}, move |r| {
        let _ = ready.send(r);
    })
    .await
    .unwrap();
    assert!(readied.await.unwrap().tls);
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
