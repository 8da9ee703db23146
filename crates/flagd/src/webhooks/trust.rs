//! Whom an `https://` receiver's certificate must chain to: the system's CA certificates, or
//! those of a CA file (`ca-file=` of one webhook, `--webhook-ca-file` for the others; see
//! `ca_file`), which then replaces the system's. The TLS settings of one webhook are built
//! from them once, at start.

use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

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
