//! CA files: whom a server's certificate must chain to when it is not the system's CA
//! certificates. A CA file replaces the system's (like flagctl's `--ca-cert`); it is read and
//! checked once, at start, so one that cannot be used fails the start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tracing::warn;

/// CA certificates read from a PEM file, which a server's certificate must chain to: a webhook
/// receiver's (`--webhook-ca-file`, `ca-file=`) or the PostgreSQL store's (`--store-ca`).
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    roots: Arc<RootCertStore>,
}

/// Why a CA file cannot be used; the message names the file and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}; expected a PEM file of CA certificates (CERTIFICATE blocks)", path.display())]
#[non_exhaustive]
pub struct CaFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl CaFile {
    /// Reads and checks the file now: a CA file that cannot be used fails the start, not
    /// every delivery.
    pub fn from_file(path: impl AsRef<Path>) -> Result<CaFile, CaFileError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|error| CaFileError { path: path.to_owned(), problem: error.to_string() })?;
        CaFile::from_pem(path, &pem)
    }

    /// CA certificates from PEM text; `path` is where it came from, for messages.
    pub fn from_pem(path: impl Into<PathBuf>, pem: &[u8]) -> Result<CaFile, CaFileError> {
        let path = path.into();
        let refuse = |problem: String| CaFileError { path: path.clone(), problem };
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
        Ok(CaFile { path, roots: Arc::new(roots) })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.roots)
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaFile").field("path", &self.path).field("certificates", &self.roots.len()).finish()
    }
}

/// The system's CA certificates, as rustls-native-certs finds them (the platform's store, or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`), for `servers` (who they are, and how to name another
/// CA file, for messages). Read once per start, and only when needed; what cannot be read
/// is logged, and a server they do not cover fails its handshakes, which says so.
pub(crate) fn system_roots(servers: &str, otherwise: &str) -> Arc<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        warn!(%error, "reading the system's CA certificates for {servers}");
    }
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        warn!(ignored, "system CA certificates rustls cannot use were skipped");
    }
    if roots.is_empty() {
        warn!("no system CA certificates found: {servers} will fail their handshakes; pass {otherwise}");
    }
    Arc::new(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_is_missing_empty_or_not_pem_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let refused = CaFile::from_file(&missing).unwrap_err().to_string();
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
            let refused = CaFile::from_pem("ca.pem", text.as_bytes()).unwrap_err().to_string();
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
        let ca = CaFile::from_pem("two.pem", pem.as_bytes()).unwrap();
        assert_eq!(ca.roots().len(), 2);
        assert_eq!(format!("{ca:?}"), r#"CaFile { path: "two.pem", certificates: 2 }"#);
    }
}
