//! The real `flagctl` against the real `flagd` serving TLS with a certificate made here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::{Flagd, flagctl};

/// Writes a CA and a server certificate it signed for 127.0.0.1; returns (ca, cert, key) paths.
fn certificates(dir: &std::path::Path) -> [String; 3] {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let files = [("ca.pem", ca.pem()), ("cert.pem", leaf.pem()), ("key.pem", key.serialize_pem())];
    files.map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    })
}

#[test]
fn flagctl_reads_and_writes_over_tls_with_the_ca_and_is_refused_without_it() {
    let certs = tempfile::tempdir().unwrap();
    let [ca, cert, key] = certificates(certs.path());
    let flagd = Flagd::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    let https = format!("https://{}", flagd.address);

    let out = flagctl(&https, &["--ca-cert", &ca, "set", "chat", "--percent", "10"], &[]).ok();
    assert!(out.starts_with("created chat"), "{out}");
    // The CA from the environment works the same.
    let out = flagctl(&https, &["get", "chat"], &[("FLAGD_CA_CERT", &ca)]).ok();
    assert!(out.contains("10% on, 90% off"), "{out}");

    // The system roots do not know this CA: refused, naming the address and the certificate.
    let stderr = flagctl(&https, &["get", "chat"], &[]).fails_with(6);
    assert!(stderr.contains(&https) && stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    // Plain HTTP to a TLS server is not served.
    let plain = format!("http://{}", flagd.address);
    let run = flagctl(&plain, &["--timeout", "2s", "get", "chat"], &[]);
    assert_ne!(run.code, 0, "{run:?}");
    // A CA with a plain address would silently not be used.
    let stderr = flagctl(&plain, &["--ca-cert", &ca, "get", "chat"], &[]).fails_with(4);
    assert!(stderr.contains("--ca-cert") && stderr.contains("https://"), "{stderr}");
}
