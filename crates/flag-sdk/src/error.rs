//! What can go wrong when a client starts or reads a file.

use std::path::PathBuf;
use std::time::Duration;

/// A file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A `.json` file is not a flag set in JSON.
    #[error("{}: not a flag set in JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        #[source]
        source: serde_json::Error,
    },
    /// The file is not a flag set in YAML.
    #[error("{}: not a flag set in YAML: {source}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The file nests deeper than a flag file may ([`flag_core::MAX_FILE_DEPTH`], as in flagctl).
    #[error("{}:{line}: {field}: nesting deeper than {limit} levels", path.display())]
    TooDeep {
        /// The file.
        path: PathBuf,
        /// The 1-based line of `field`.
        line: usize,
        /// The field the nesting is in (at most six levels: `flags[0].variants[0].value`).
        field: String,
        /// The limit.
        limit: usize,
    },
    /// The flag set parsed but is not valid (every problem with its field path).
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems.
        #[source]
        source: flag_core::ValidationError,
    },
    /// The flags could not be encoded for the cache file.
    #[error("{}: cannot encode the flags: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Why [`ClientBuilder::connect`](crate::ClientBuilder::connect) returned no client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// An endpoint is not a valid URI (e.g. `http://127.0.0.1:8013`), or none was given.
    #[error("invalid flagd endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// As given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token cannot be sent as an HTTP header value.
    #[error("the token cannot be sent in an authorization header (it must be visible ASCII)")]
    Token,
    /// No snapshot arrived within the start timeout and the builder was told to fail
    /// ([`OnTimeout::Fail`](crate::OnTimeout::Fail)).
    #[error("no flags from flagd within {waited:?}{}", last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Timeout {
        /// The start timeout.
        waited: Duration,
        /// The last connection or stream error, if any.
        last_error: Option<String>,
    },
    /// flagd refused the subscription for a reason retrying will not fix (a wrong token, an
    /// invalid environment), and the builder was told to fail
    /// ([`OnTimeout::Fail`](crate::OnTimeout::Fail)): answered at once, not at the timeout.
    #[error("flagd refused the client: {reason}")]
    Refused {
        /// flagd's explanation.
        reason: String,
    },
    /// The offline flags file cannot be used.
    #[error("offline flags file")]
    Offline(#[source] FileError),
}
