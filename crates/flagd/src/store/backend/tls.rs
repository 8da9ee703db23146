//! How the store's connections to PostgreSQL are made: in plaintext, or, when the URL says
//! `sslmode=require`, over TLS, the server's certificate checked against the system's CA
//! certificates (or a CA file's, `--store-ca`) and its name against the URL's host.
//!
//! `sslmode=prefer`, the default, stays plaintext: TLS whose certificate nobody checks keeps
//! out no one who can reach the path, and checking it by default would refuse servers whose
//! certificates are self-made. `require` says that TLS matters, so its certificate is checked.

use std::sync::Arc;

use postgres::config::SslMode;
use postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::crypto::ring;

use crate::ca_file::{self, CaFile};

/// How to connect; see the module docs.
#[derive(Clone)]
pub(crate) enum Tls {
    Plain,
    Checked(MakeRustlsConnect),
}

impl Tls {
    /// What `config`'s `sslmode` asks for, the certificate checked against `ca` if given.
    pub(crate) fn for_config(config: &postgres::Config, ca: Option<&CaFile>) -> Tls {
        if config.get_ssl_mode() != SslMode::Require {
            return Tls::Plain;
        }
        let roots = match ca {
            Some(ca) => ca.roots(),
            None => ca_file::system_roots("a PostgreSQL store with sslmode=require", "--store-ca"),
        };
        // ring's default provider has suites for both of rustls' default versions, which is
        // the only way `with_safe_default_protocol_versions` fails.
        #[allow(clippy::expect_used)]
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3");
        Tls::Checked(MakeRustlsConnect::new(builder.with_root_certificates(roots).with_no_client_auth()))
    }

    /// A new session as `config` says, over this.
    pub(crate) fn connect(&self, config: &postgres::Config) -> Result<Client, postgres::Error> {
        match self {
            Tls::Plain => config.connect(NoTls),
            Tls::Checked(tls) => config.connect(tls.clone()),
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tls::Plain => "Plain",
            Tls::Checked(_) => "Checked",
        })
    }
}
