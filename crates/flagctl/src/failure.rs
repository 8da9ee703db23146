//! What can go wrong, as a person reads it, and the exit code of each kind.

use tonic::{Code, Status};

/// A failure with a distinct exit code (see `cli::EXIT_CODES`). Anything else exits 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Flag, segment or version not found.
    #[error("{0}")]
    NotFound(String),
    /// Invalid input: the message names the field (and line).
    #[error("{0}")]
    Invalid(String),
    /// Someone else changed it first.
    #[error("{0}")]
    Conflict(String),
    /// The server could not be reached.
    #[error("cannot reach flagd at {address}: {cause}")]
    Unreachable { address: String, cause: String },
    /// Missing or wrong token.
    #[error("unauthorized: {0}; pass the admin token with --token or FLAGD_TOKEN")]
    Unauthorized(String),
    /// A kill committed, but not every SDK acknowledged it in time.
    #[error("{0}")]
    Unacknowledged(String),
    /// The flag is not in a state the command applies to (e.g. revive of a live flag).
    #[error("{0}")]
    Refused(String),
    /// flagd's store cannot commit now (disk full, I/O error); nothing was applied.
    #[error("{0}")]
    StoreUnavailable(String),
    /// A write timed out here, and flagd may still commit it.
    #[error("{}", outcome_unknown(*revision))]
    OutcomeUnknown { revision: Option<u64> },
}

fn outcome_unknown(revision: Option<u64>) -> String {
    match revision {
        Some(revision) => format!(
            "timed out waiting for flagd: outcome unknown; check revision {revision} (`flagctl log`): \
             the write is committed if it is there or later"
        ),
        None => {
            "timed out waiting for flagd: outcome unknown; check `flagctl log` once flagd answers".to_owned()
        }
    }
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::NotFound(_) => 3,
            Failure::Invalid(_) => 4,
            Failure::Conflict(_) => 5,
            Failure::Unreachable { .. } => 6,
            Failure::Unauthorized(_) => 7,
            Failure::Unacknowledged(_) => 8,
            Failure::Refused(_) => 9,
            Failure::OutcomeUnknown { .. } => 10,
            Failure::StoreUnavailable(_) => 11,
        }
    }

    /// The failure a server answer means; `None` for the ones without an exit code of their
    /// own, which are reported as they are.
    pub(crate) fn from_status(status: &Status, address: &str, environment: &str) -> Option<Failure> {
        let message = status.message().to_owned();
        let conflict = ["x-current-version", "x-current-revision"]
            .iter()
            .any(|key| status.metadata().contains_key(*key));
        Some(match status.code() {
            Code::NotFound => Failure::NotFound(format!("{message} (environment {environment:?})")),
            Code::InvalidArgument => Failure::Invalid(message),
            Code::FailedPrecondition if conflict => Failure::Conflict(message),
            Code::FailedPrecondition => Failure::Refused(message),
            Code::Unauthenticated | Code::PermissionDenied => Failure::Unauthorized(message),
            Code::Unavailable if status.metadata().contains_key("x-store-unavailable") => {
                Failure::StoreUnavailable(message)
            }
            Code::Unavailable => Failure::Unreachable { address: address.to_owned(), cause: message },
            Code::Unimplemented => Failure::Unreachable {
                address: address.to_owned(),
                cause: "it does not serve the flagd API (the management port, or another server?)".into(),
            },
            _ => return None,
        })
    }
}

/// A server answer as an error: a [`Failure`] when it has an exit code, else the status text.
pub(crate) fn status_error(status: Status, address: &str, environment: &str) -> anyhow::Error {
    match Failure::from_status(&status, address, environment) {
        Some(failure) => failure.into(),
        None => anyhow::anyhow!("flagd answered {:?}: {}", status.code(), status.message()),
    }
}
