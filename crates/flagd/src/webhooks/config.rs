//! A webhook as the operator configures it: `--webhook SPEC`, parsed and checked at start.
//!
//! A spec is a bare URL (`https://hooks.internal/flags`), or comma-separated fields:
//!
//! ```text
//! url=https://hooks.internal/flags,environments=staging;production,secret-env=HOOK_SECRET,ca-file=/etc/flagd/hooks-ca.pem,format=slack,id=ops-chat
//! ```
//!
//! - `url` (required): `http://` or `https://HOST[:PORT][/PATH]`. A comma in it is written
//!   `%2C`. An https receiver's certificate must be valid for HOST and chain to the system's
//!   CA certificates, or to `ca-file`'s (`trust`).
//! - `environments`: `;`-separated names, or `*` (the default) for every environment.
//! - `secret-env=VARIABLE` or `secret-file=PATH` (one trailing newline dropped): the HMAC key
//!   of the `X-Flagd-Signature` header. Never the secret itself: a command line shows in
//!   `ps` and shell history, so `secret=` is refused.
//! - `ca-file=PATH`: PEM CA certificates the receiver's certificate must chain to, instead of
//!   `--webhook-ca-file`'s or the system's; https only.
//! - `format`: `json` or `slack`; `--webhook-format` when absent.
//! - `id`: the webhook's identity in the store's outbox and in metrics; by default derived
//!   from the URL and the environments, so changing either makes a new webhook that starts
//!   from now, and changing the format, the secret or the CA file does not.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use hyper::Uri;
use ring::digest;

use crate::ca_file::{CaFile, CaFileError};
use crate::store::is_environment_name;

/// The fields a spec may name, for errors.
const FIELDS: &str = "url, environments, secret-env, secret-file, ca-file, format, id";

/// The defaults: a receiver gets 5 s per attempt, and a failing one is retried at least
/// once a minute.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// See [`DEFAULT_TIMEOUT`].
pub(crate) const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(60);

/// The longest explicit id.
const MAX_ID_LEN: usize = 64;

/// What a webhook's requests carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// The change as JSON: environment, revision, key, action, actor, reason, time, before/after.
    #[default]
    Json,
    /// `{"text": "ana killed chat in production: incident 4711"}`, for Slack-style chat
    /// hooks.
    Slack,
}

/// One webhook: where every committed change of the environments it covers is POSTed.
#[derive(Clone)]
pub struct Webhook {
    pub(crate) id: String,
    pub(crate) url: Uri,
    /// `None`: every environment. Sorted, without repeats.
    pub(crate) environments: Option<Vec<String>>,
    /// The HMAC-SHA256 key, when requests are signed.
    pub(crate) secret: Option<Vec<u8>>,
    /// `None`: the server's `webhook_ca`, or the system's CA certificates. Only with https.
    pub(crate) ca: Option<CaFile>,
    /// `None`: the server's `webhook_format`.
    pub(crate) format: Option<WebhookFormat>,
}

/// Why a `--webhook` spec was refused; each names the field and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookSpecError {
    /// A part that is not `NAME=VALUE`.
    #[error(
        "`{part}` is not a field: expected NAME=VALUE fields ({FIELDS}) separated by commas, or a bare http:// or https:// URL"
    )]
    NotAField {
        /// The part.
        part: String,
    },
    /// A field this version does not know.
    #[error("unknown field `{field}`: expected one of {FIELDS}")]
    UnknownField {
        /// Its name.
        field: String,
    },
    /// A field given twice.
    #[error("field `{field}` is given twice")]
    Repeated {
        /// Its name.
        field: String,
    },
    /// No `url=`.
    #[error("url: missing; expected url=http://HOST[:PORT]/PATH or url=https://…")]
    MissingUrl,
    /// A URL flagd cannot post to.
    #[error("url: {problem} in {url:?}; expected http://HOST[:PORT]/PATH or https://…")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An environment name that cannot exist.
    #[error(
        "environments: {name:?} is not an environment name; expected `*` or names of 1 to 64 of A-Z a-z 0-9 _ . - separated by `;`"
    )]
    Environment {
        /// The name.
        name: String,
    },
    /// An id outside the key alphabet.
    #[error("id: {id:?} is not an id; expected 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ . -")]
    Id {
        /// The id.
        id: String,
    },
    /// `secret=`: the secret itself on the command line.
    #[error(
        "secret: a secret on the command line shows in `ps` and shell history; pass secret-env=VARIABLE or secret-file=PATH"
    )]
    SecretInline,
    /// Both `secret-env` and `secret-file`.
    #[error("secret-env and secret-file: give one of them, not both")]
    TwoSecrets,
    /// The variable `secret-env` names is not usable.
    #[error(
        "secret-env: the environment variable {variable} is {problem}; expected the webhook's secret in it"
    )]
    SecretEnv {
        /// The variable.
        variable: String,
        /// `not set`, `empty`, …
        problem: &'static str,
    },
    /// The file `secret-file` names is not usable.
    #[error("secret-file: {}: {problem}; expected a file holding the webhook's secret", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        problem: String,
    },
    /// The file `ca-file` names is not usable.
    #[error("ca-file: {0}")]
    CaFile(#[source] CaFileError),
    /// `ca-file` with an `http://` URL, where no certificate is checked.
    #[error("ca-file: only an https:// receiver has a certificate to check; the url is http://")]
    CaWithoutTls,
    /// A format that is not `json` or `slack`.
    #[error("format: {value:?} is not a format; expected json or slack")]
    Format {
        /// The value.
        value: String,
    },
}

impl Webhook {
    /// Parses a `--webhook` spec (see the module docs), reading its secret now: a bad spec,
    /// or a secret that cannot be read, fails the start rather than the first delivery.
    pub fn parse(spec: &str) -> Result<Webhook, WebhookSpecError> {
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Webhook::from_fields(Fields { url: Some(spec), ..Fields::default() });
        }
        let mut fields = Fields::default();
        for part in spec.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                return Err(WebhookSpecError::NotAField { part: part.to_owned() });
            };
            let slot = match name.trim() {
                "url" => &mut fields.url,
                "environments" => &mut fields.environments,
                "secret-env" => &mut fields.secret_env,
                "secret-file" => &mut fields.secret_file,
                "ca-file" => &mut fields.ca_file,
                "format" => &mut fields.format,
                "id" => &mut fields.id,
                "secret" => return Err(WebhookSpecError::SecretInline),
                other => return Err(WebhookSpecError::UnknownField { field: other.to_owned() }),
            };
            if slot.replace(value.trim()).is_some() {
                return Err(WebhookSpecError::Repeated { field: name.trim().to_owned() });
            }
        }
        Webhook::from_fields(fields)
    }

    fn from_fields(fields: Fields<'_>) -> Result<Webhook, WebhookSpecError> {
        let url = url(fields.url.ok_or(WebhookSpecError::MissingUrl)?)?;
        let environments = fields.environments.map(environments).transpose()?.flatten();
        let secret = match (fields.secret_env, fields.secret_file) {
            (Some(_), Some(_)) => return Err(WebhookSpecError::TwoSecrets),
            (Some(variable), None) => Some(secret_from_env(variable)?),
            (None, Some(path)) => Some(secret_from_file(path)?),
            (None, None) => None,
        };
        let ca = match fields.ca_file {
            Some(_) if url.scheme_str() != Some("https") => return Err(WebhookSpecError::CaWithoutTls),
            Some(path) => Some(CaFile::from_file(path).map_err(WebhookSpecError::CaFile)?),
            None => None,
        };
        let format = match fields.format {
            None => None,
            Some("json") => Some(WebhookFormat::Json),
            Some("slack") => Some(WebhookFormat::Slack),
            Some(other) => return Err(WebhookSpecError::Format { value: other.to_owned() }),
        };
        let id = match fields.id {
            Some(id) if is_id(id) => id.to_owned(),
            Some(id) => return Err(WebhookSpecError::Id { id: id.to_owned() }),
            None => derived_id(&url, environments.as_deref()),
        };
        Ok(Webhook { id, url, environments, secret, ca, format })
    }

    /// Its identity: the key of its outbox cursors and its metrics label.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether it is sent `environment`'s changes.
    pub(crate) fn covers(&self, environment: &str) -> bool {
        self.environments.as_ref().is_none_or(|names| names.iter().any(|name| name == environment))
    }

    /// Whether it posts over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.url.scheme_str() == Some("https")
    }

    /// Where it posts, for logs: scheme and authority only, since a hook's path is often
    /// its credential (chat services put the token there).
    pub(crate) fn target(&self) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        let authority = self.url.authority().map_or("", |authority| authority.as_str());
        format!("{scheme}://{authority}/…")
    }
}

impl std::str::FromStr for Webhook {
    type Err = WebhookSpecError;

    fn from_str(spec: &str) -> Result<Webhook, WebhookSpecError> {
        Webhook::parse(spec)
    }
}

// Neither the secret nor the URL's path reaches logs.
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &self.target())
            .field("environments", &self.environments)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca.as_ref().map(CaFile::path))
            .field("format", &self.format)
            .finish()
    }
}

/// The fields of a spec, as given.
#[derive(Default)]
struct Fields<'a> {
    url: Option<&'a str>,
    environments: Option<&'a str>,
    secret_env: Option<&'a str>,
    secret_file: Option<&'a str>,
    ca_file: Option<&'a str>,
    format: Option<&'a str>,
    id: Option<&'a str>,
}

fn url(text: &str) -> Result<Uri, WebhookSpecError> {
    let refuse = |problem| WebhookSpecError::Url { url: text.to_owned(), problem };
    let uri: Uri = text.parse().map_err(|_| refuse("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(refuse("the scheme is not http:// or https://"));
    }
    let Some(authority) = uri.authority() else { return Err(refuse("no host")) };
    if authority.as_str().contains('@') {
        return Err(refuse("credentials in a URL are not sent; sign requests with secret-env instead"));
    }
    if authority.host().is_empty() {
        return Err(refuse("no host"));
    }
    Ok(uri)
}

/// `None` for `*`.
fn environments(text: &str) -> Result<Option<Vec<String>>, WebhookSpecError> {
    if text == "*" {
        return Ok(None);
    }
    let mut names = Vec::new();
    for name in text.split(';').map(str::trim) {
        if !is_environment_name(name) {
            return Err(WebhookSpecError::Environment { name: name.to_owned() });
        }
        names.push(name.to_owned());
    }
    names.sort();
    names.dedup();
    Ok(Some(names))
}

fn secret_from_env(variable: &str) -> Result<Vec<u8>, WebhookSpecError> {
    let problem = |problem| WebhookSpecError::SecretEnv { variable: variable.to_owned(), problem };
    match std::env::var_os(variable) {
        None => Err(problem("not set")),
        Some(value) if value.is_empty() => Err(problem("empty")),
        Some(value) => Ok(value.into_encoded_bytes()),
    }
}

fn secret_from_file(path: &str) -> Result<Vec<u8>, WebhookSpecError> {
    let problem = |problem: String| WebhookSpecError::SecretFile { path: path.into(), problem };
    let mut secret = std::fs::read(path).map_err(|error| problem(error.to_string()))?;
    // Files written by `echo` or an editor end in a newline that is not part of the secret.
    if secret.ends_with(b"\n") {
        secret.pop();
        if secret.ends_with(b"\r") {
            secret.pop();
        }
    }
    if secret.is_empty() {
        return Err(problem("the file is empty".into()));
    }
    Ok(secret)
}

fn is_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `wh-` and 12 hex digits of SHA-256 over the URL and the environments: the same on every
/// start and every machine, unlike std's randomly keyed hashers.
fn derived_id(url: &Uri, environments: Option<&[String]>) -> String {
    let mut hasher = digest::Context::new(&digest::SHA256);
    hasher.update(url.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(environments.map_or_else(|| "*".to_owned(), |names| names.join(";")).as_bytes());
    let hex: String = hasher.finish().as_ref().iter().take(6).map(|byte| format!("{byte:02x}")).collect();
    format!("wh-{hex}")
}

/// Refuses two webhooks with one id: they would share one outbox cursor.
pub(crate) fn check_ids(webhooks: &[Webhook]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for webhook in webhooks {
        if !seen.insert(webhook.id.as_str()) {
            return Err(format!(
                "--webhook: two webhooks have the id {:?} (the same url and environments, or the same id=); give one of them another id=",
                webhook.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(spec: &str) -> String {
        Webhook::parse(spec).map(|webhook| format!("{webhook:?}")).unwrap_err().to_string()
    }

    #[test]
    fn a_bare_url_is_a_webhook_of_every_environment() {
        let webhook = Webhook::parse("http://127.0.0.1:9/hooks?a=1").unwrap();
        assert_eq!(webhook.url.path(), "/hooks");
        assert_eq!(webhook.environments, None);
        assert!(webhook.covers("anything"));
        assert!(webhook.id.starts_with("wh-") && webhook.id.len() == 15, "{}", webhook.id);
    }

    #[test]
    fn fields_give_filter_format_secret_and_id() {
        // A variable every test process has; the end-to-end tests set one of their own.
        let path = std::env::var("PATH").unwrap();
        let webhook = Webhook::parse(
            "url=http://h:1/x, environments=staging;production;staging ,secret-env=PATH,format=slack,id=ops",
        )
        .unwrap();
        assert_eq!(webhook.id, "ops");
        assert_eq!(webhook.environments, Some(vec!["production".to_owned(), "staging".to_owned()]));
        assert_eq!(webhook.secret.as_deref(), Some(path.as_bytes()));
        assert_eq!(webhook.format, Some(WebhookFormat::Slack));
        assert!(webhook.covers("staging") && !webhook.covers("dev"));
        let debug = format!("{webhook:?}");
        assert!(!debug.contains(&path) && !debug.contains("/x"), "{debug}");
    }

    #[test]
    fn the_id_follows_url_and_environments_not_format_or_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "k").unwrap();
        let plain = Webhook::parse("url=http://h:1/x,environments=a;b").unwrap();
        let same = Webhook::parse(&format!(
            "url=http://h:1/x,environments=b;a,format=slack,secret-file={}",
            path.display()
        ))
        .unwrap();
        assert_eq!(plain.id, same.id);
        assert_ne!(plain.id, Webhook::parse("url=http://h:1/x,environments=a").unwrap().id);
        assert_ne!(plain.id, Webhook::parse("url=http://h:1/y,environments=a;b").unwrap().id);
        assert!(check_ids(&[plain.clone(), same]).unwrap_err().contains("give one of them another id="));
    }

    #[test]
    fn bad_specs_name_the_field_and_what_was_expected() {
        for (spec, expected) in [
            ("url=http://h/x,colour=red", "unknown field `colour`: expected one of url, environments"),
            ("url=http://h/x,url=http://h/y", "field `url` is given twice"),
            ("environments=staging", "url: missing; expected url=http://"),
            ("nonsense", "`nonsense` is not a field: expected NAME=VALUE"),
            ("url=ftp://h/x", "url: the scheme is not http:// or https://"),
            ("url=http://h/x,ca-file=/etc/ssl/ca.pem", "ca-file: only an https:// receiver"),
            ("url=https://h/x,ca-file=/nonexistent/ca.pem", "ca-file: /nonexistent/ca.pem: No such file"),
            ("url=http://u:p@h/x", "credentials in a URL are not sent"),
            (
                "url=http://h/x,environments=prod uction",
                "environments: \"prod uction\" is not an environment name",
            ),
            ("url=http://h/x,environments=", "environments: \"\" is not an environment name"),
            ("url=http://h/x,secret=hunter2", "secret: a secret on the command line shows in `ps`"),
            (
                "url=http://h/x,secret-env=FLAGD_TEST_NO_SUCH_VARIABLE",
                "the environment variable FLAGD_TEST_NO_SUCH_VARIABLE is not set",
            ),
            (
                "url=http://h/x,secret-file=/nonexistent/secret",
                "secret-file: /nonexistent/secret: No such file",
            ),
            ("url=http://h/x,secret-env=A,secret-file=B", "give one of them, not both"),
            ("url=http://h/x,format=xml", "format: \"xml\" is not a format; expected json or slack"),
            ("url=http://h/x,id=a b", "id: \"a b\" is not an id"),
        ] {
            let message = refused(spec);
            assert!(message.contains(expected), "{spec}: {message}");
        }
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "key with spaces\r\n").unwrap();
        let webhook = Webhook::parse(&format!("url=http://h/x,secret-file={}", path.display())).unwrap();
        assert_eq!(webhook.secret.as_deref(), Some(&b"key with spaces"[..]));
        std::fs::write(&path, "\n").unwrap();
        let message = refused(&format!("url=http://h/x,secret-file={}", path.display()));
        assert!(message.contains("the file is empty"), "{message}");
    }

    #[test]
    fn an_https_url_takes_a_ca_file_which_does_not_change_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&path, params.self_signed(&key).unwrap().pem()).unwrap();
        let bare = Webhook::parse("https://hooks.example/flags").unwrap();
        assert!(bare.is_https() && bare.ca.is_none());
        assert_eq!(bare.target(), "https://hooks.example/…");
        let with_ca =
            Webhook::parse(&format!("url=https://hooks.example/flags,ca-file={}", path.display())).unwrap();
        assert_eq!(with_ca.ca.as_ref().map(CaFile::path), Some(path.as_path()));
        assert_eq!(with_ca.id, bare.id);
    }

    /// The id is the key of a webhook's cursors in existing stores: the same URL and
    /// environments must keep giving it, or an upgrade would start every webhook afresh.
    #[test]
    fn a_derived_id_is_what_earlier_versions_derived() {
        assert_eq!(Webhook::parse("http://h:1/x").unwrap().id, "wh-a98b19f15cc6");
        // The same rule for https: SHA-256 of the URL, a newline and the environments.
        let slack =
            Webhook::parse("url=https://hooks.slack.com/services/T0/B0/abc,environments=production").unwrap();
        assert_eq!(slack.id, "wh-4a651d9a00a6");
    }
}
