//! The SDK follows flagd's stream over TLS, trusting a CA made in the test; without the CA
//! it does not start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use flag_core::{Context, Flag};
use flag_proto::v1;
use flag_sdk::{Client, ConnectError, Evaluate, OnTimeout, Status};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

const WAIT: Duration = Duration::from_secs(10);

/// A CA and a server certificate it signed for 127.0.0.1: (CA PEM, identity).
fn certificates() -> (String, flagd::TlsIdentity) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), flagd::TlsIdentity::from_pem(leaf.pem(), key.serialize_pem()))
}

async fn put(endpoint: &str, ca: &str, flag: &Flag) {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = v1::PutFlagRequest {
        environment: String::new(),
        flag: Some(v1::Flag::from(flag)),
        expected_version: None,
        change: Some(v1::Change { actor: "tester".into(), reason: "tls".into() }),
    };
    v1::admin_client::AdminClient::new(channel).put_flag(request).await.unwrap();
}

#[tokio::test]
async fn the_sdk_follows_the_stream_over_tls_with_the_ca_and_refuses_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, identity) = certificates();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("https://{}", listener.local_addr().unwrap());
    let config = flagd::Config::new(dir.path().join("flags.redb")).with_tls(identity);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(flagd::serve(listener, config, async {
        let _ = stopped.await;
    }));
    put(&endpoint, &ca, &Flag::rollout("chat", 0.0).unwrap()).await;

    let client = Client::builder(&endpoint).ca_certificate(ca.clone()).connect().await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    let user = Context::new("user-1");
    assert!(!client.is_enabled("chat", &user));
    let mut changes = client.flag_changes("chat");
    put(&endpoint, &ca, &Flag::rollout("chat", 100.0).unwrap()).await;
    tokio::time::timeout(WAIT, changes.changed()).await.expect("the change over TLS in time");
    assert!(client.is_enabled("chat", &user));

    // The system roots do not know the test's CA: no snapshot, so a start told to fail fails.
    let refused = Client::builder(&endpoint)
        .start_timeout(Duration::from_secs(1), OnTimeout::Fail)
        .connect()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(refused, ConnectError::Timeout { .. }), "{refused}");
    assert!(refused.to_string().contains("certificate"), "{refused}");
    // A CA for a plain endpoint would silently not be used.
    let plain = endpoint.replacen("https://", "http://", 1);
    let misused = Client::builder(&plain).ca_certificate(ca).connect().await.map(|_| ()).unwrap_err();
    assert!(matches!(misused, ConnectError::Endpoint { .. }), "{misused}");
    assert!(misused.to_string().contains("not https://"), "{misused}");

    drop(client);
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
}
