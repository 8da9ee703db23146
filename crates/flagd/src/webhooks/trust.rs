//! Whom an `https://` receiver's certificate must chain to: the system's CA certificates, or
//! those of a CA file (`ca-file=` of one webhook, `--webhook-ca-file` for the others), which
//! then replaces the system's — like flagctl's `--ca-cert`. The TLS settings of one webhook
//! are built from them once, at start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tracing::warn;

/// CA certificates read from a PEM file, which a webhook receiver's certificate must chain to.
#[derive(Clone)]
pub struct WebhookCa {
    path: PathBuf,
    roots: Arc<RootCertStore>,
}

/// Why a CA file cannot be used; the message names the file and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}; expected a PEM file of CA certificates (CERTIFICATE blocks)", path.display())]
#[non_exhaustive]
pub struct WebhookCaError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl WebhookCa {
    /// Reads and checks the file now: a CA file that cannot be used fails the start, not
    /// every delivery.
    pub fn from_file(path: impl AsRef<Path>) -> Result<WebhookCa, WebhookCaError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|error| WebhookCaError { path: path.to_owned(), problem: error.to_string() })?;
        WebhookCa::from_pem(path, &pem)
    }

    /// CA certificates from PEM text; `path` is where it came from, for messages.
    pub fn from_pem(path: impl Into<PathBuf>, pem: &[u8]) -> Result<WebhookCa, WebhookCaError> {
        let path = path.into();
        let refuse = |problem: String| WebhookCaError { path: path.clone(), problem };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|error| refuse(format!("not PEM ({error})")))?;
        if certificates.is_empty() {
            return Err(refuse("no certificate in it".into()));
        }
        let mut roots = RootCertStore::empty();
        for (at, certificate) in certificates.into_iter().enumerate() {
            roots.add(certificate).map_err(|error| refuse(format!("certificate {}: {error}", at + 1)))?;
        }
        Ok(WebhookCa { path, roots: Arc::new(roots) })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.roots)
    }
}

impl fmt::Debug for WebhookCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookCa")
            .field("path", &self.path)
            .field("certificates", &self.roots.len())
            .finish()
    }
}

/// The system's CA certificates, as rustls-native-certs finds them (the platform's store, or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`). Read once per start, and only when a webhook needs
/// them; what cannot be read is logged, and a receiver they do not cover fails its
/// handshakes (`cause="tls"`), which is where an operator looks.
pub(crate) fn system_roots() -> Arc<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        warn!(%error, "reading the system's CA certificates for webhooks");
    }
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        warn!(ignored, "system CA certificates rustls cannot use were skipped");
    }
    if roots.is_empty() {
        warn!(
            "no system CA certificates found: https webhooks without ca-file= will fail their handshakes; pass --webhook-ca-file or ca-file="
        );
    }
    Arc::new(roots)
}

/// TLS settings for posting to receivers whose certificates chain to `roots`: TLS 1.2 or
/// 1.3 with ring (the provider the rest of flagd uses), the receiver's name checked against
/// its certificate, HTTP/1.1 offered by ALPN.
pub(crate) fn client_config(roots: Arc<RootCertStore>) -> Arc<ClientConfig> {
    // ring's default provider has suites for both of rustls' default versions, which is the
    // only way `with_safe_default_protocol_versions` fails.
    #[allow(clippy::expect_used)]
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3");
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let refused = WebhookCa::from_file(&missing).unwrap_err().to_string();
        assert!(refused.starts_with(&format!("{}: ", missing.display())), "{refused}");
        assert!(
            refused.ends_with("expected a PEM file of CA certificates (CERTIFICATE blocks)"),
            "{refused}"
        );
        for (text, problem) in [
            ("", "no certificate in it"),
            ("just words\n", "no certificate in it"),
            ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "certificate 1: "),
        ] {
            let refused = WebhookCa::from_pem("ca.pem", text.as_bytes()).unwrap_err().to_string();
            assert!(refused.contains(&format!("ca.pem: {problem}")), "{text:?}: {refused}");
        }
    }

    #[test]
    fn a_ca_file_holds_every_certificate_in_it() {
        let pem: String = (0..2)
            .map(|_| {
                let key = rcgen::KeyPair::generate().unwrap();
                let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
                params.self_signed(&key).unwrap().pem()
            })
            .collect();
        let ca = WebhookCa::from_pem("two.pem", pem.as_bytes()).unwrap();
        assert_eq!(ca.roots().len(), 2);
        assert_eq!(format!("{ca:?}"), r#"WebhookCa { path: "two.pem", certificates: 2 }"#);
    }
}
