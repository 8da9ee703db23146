//! Webhooks to https receivers, end to end: a real flagd process posting over TLS to a real
//! receiver on 127.0.0.1 whose certificate comes from a CA made here — trusted through
//! `ca-file=`, or not trusted (nothing delivered, `cause="tls"`) until a restart with
//! `--webhook-ca-file` delivers every change that waited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod webhook_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flag_proto::v1;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use webhook_support::{Flagd, Received, Receiver, expected_signature};

const WAIT: Duration = Duration::from_secs(5);
const SECRET: &str = "correct horse battery staple";

/// A CA, written as PEM to `ca_file`, and a TLS acceptor serving a certificate it signed for
/// localhost and 127.0.0.1.
fn receiver_tls(ca_file: &Path) -> TlsAcceptor {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "webhook test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

async fn put(flagd: &Flagd, percent: u32) -> u64 {
    let flag = support::flag(&format!(
        "key: chat\nvariants:\n  - {{name: on, value: true}}\n  - {{name: off, value: false}}\noff_variant: off\n\
         default: {{split: {{weights: [{{variant: on, weight: {}}}, {{variant: off, weight: {}}}]}}}}\n",
        percent * 1000,
        100_000 - percent * 1000
    ));
    let request = v1::PutFlagRequest {
        environment: "production".into(),
        flag: Some(flag),
        expected_version: None,
        change: support::change("ramp"),
    };
    flagd.admin().await.put_flag(request).await.unwrap().into_inner().revision
}

fn deliveries(received: &[Received]) -> Vec<String> {
    received.iter().map(Received::delivery).collect()
}

#[tokio::test]
async fn an_https_receiver_trusted_through_ca_file_gets_every_change_signed() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("hooks-ca.pem");
    let receiver = Receiver::start_tls(receiver_tls(&ca_file)).await;
    // By name: the certificate is checked for `localhost`, not only for an address.
    let url = format!("https://localhost:{}/hooks/flags", receiver.address.port());
    let spec = format!("url={url},ca-file={},secret-env=HOOK_SECRET,id=secure", ca_file.display());
    let flagd = Flagd::start(
        &dir.path().join("flags.redb"),
        &dir.path().join("flagd.log"),
        &["--webhook", &spec],
        &[("HOOK_SECRET", SECRET)],
    );
    let first = put(&flagd, 5).await;
    let second = put(&flagd, 25).await;
    let received = receiver.wait_for_deliveries(2, WAIT).await;
    assert_eq!(deliveries(&received), [format!("production/{first}"), format!("production/{second}")]);
    for request in &received {
        let signature = request.header("x-flagd-signature").unwrap();
        assert_eq!(signature, expected_signature(SECRET.as_bytes(), &request.body));
        assert_eq!(request.json()["key"], "chat");
    }
    let delivered = [("webhook", "secure")];
    flagd.metric_becomes("flagd_webhook_deliveries_total", &delivered, |n| n == 2.0).await;
    let metrics = flagd.metrics().await;
    let tls = webhook_support::metric(
        &metrics,
        "flagd_webhook_failures_total",
        &[("webhook", "secure"), ("cause", "tls")],
    );
    assert_eq!(tls, Some(0.0), "{metrics}");
    assert_eq!(receiver.refused_handshakes(), 0);
    flagd.stop().await;
}

#[tokio::test]
async fn an_untrusted_receiver_gets_nothing_and_every_change_once_flagd_trusts_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("flags.redb"), dir.path().join("flagd.log"));
    let ca_file = dir.path().join("hooks-ca.pem");
    let receiver = Receiver::start_tls(receiver_tls(&ca_file)).await;
    let spec = format!("url={},id=ops", receiver.url());
    let args = ["--webhook", spec.as_str(), "--webhook-retry-max", "300ms"];

    // The system's CA certificates do not know the test's CA: every handshake fails.
    let flagd = Flagd::start(&data, &log, &args, &[]);
    let first = put(&flagd, 5).await;
    let second = put(&flagd, 25).await;
    let tls = [("webhook", "ops"), ("cause", "tls")];
    flagd.metric_becomes("flagd_webhook_failures_total", &tls, |n| n >= 2.0).await;
    let lag = [("webhook", "ops"), ("environment", "production")];
    flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 2.0).await;
    let metrics = flagd.metrics().await;
    let connect = [("webhook", "ops"), ("cause", "connect")];
    assert_eq!(webhook_support::metric(&metrics, "flagd_webhook_failures_total", &connect), Some(0.0));
    assert!(
        receiver.received().is_empty(),
        "an untrusted receiver got {:?}",
        deliveries(&receiver.received())
    );
    assert!(receiver.refused_handshakes() >= 2);
    flagd.stop().await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("invalid peer certificate"), "{log_text}");
    assert!(!log_text.contains("/hooks/flags"), "the URL's path reached the log: {log_text}");

    // Trusting the CA (for every webhook without ca-file=), the same webhook resumes.
    let ca = ca_file.to_str().unwrap();
    let flagd = Flagd::start(&data, &log, &[&args[..], &["--webhook-ca-file", ca]].concat(), &[]);
    let received = receiver.wait_for_deliveries(2, WAIT).await;
    assert_eq!(deliveries(&received), [format!("production/{first}"), format!("production/{second}")]);
    flagd.metric_becomes("flagd_webhook_lag_revisions", &lag, |behind| behind == 0.0).await;
    let third = put(&flagd, 50).await;
    let received = receiver.wait_for_deliveries(3, WAIT).await;
    assert_eq!(deliveries(&received).last(), Some(&format!("production/{third}")));
    assert_eq!(received.len(), 3, "{:?}", deliveries(&received));
    flagd.stop().await;
}
