//! Every error a request can meet becomes a `tonic::Status` here, and only here.

use flag_proto::InvalidMessage;
use tonic::Status;
use tracing::error;

use crate::store::{StoreError, WriteError};

/// Metadata key carrying the current version on a version conflict.
pub(crate) const CURRENT_VERSION_KEY: &str = "x-current-version";

pub(crate) fn write_status(error: WriteError) -> Status {
    match error {
        WriteError::Invalid(invalid) => {
            let mut message = String::from("invalid flag set:");
            for problem in &invalid.problems {
                message.push_str("\n  ");
                message.push_str(&problem.to_string());
            }
            Status::invalid_argument(message)
        }
        WriteError::NotFound { .. } | WriteError::VersionNotFound { .. } => {
            Status::not_found(error.to_string())
        }
        WriteError::VersionConflict { current, .. } => {
            let mut status = Status::failed_precondition(error.to_string());
            if let Ok(value) = current.to_string().parse() {
                status.metadata_mut().insert(CURRENT_VERSION_KEY, value);
            }
            status
        }
        WriteError::Precondition(_) => Status::failed_precondition(error.to_string()),
        WriteError::Rollout(_) | WriteError::InvalidEnvironment { .. } => {
            Status::invalid_argument(error.to_string())
        }
        WriteError::Store(store) => store_status(&store),
    }
}

pub(crate) fn store_status(error: &StoreError) -> Status {
    error!(%error, "store failure");
    Status::internal(format!("the flag store failed: {error}"))
}

pub(crate) fn invalid_message(error: InvalidMessage) -> Status {
    Status::invalid_argument(format!("malformed request: {error}"))
}

pub(crate) fn join_status(error: tokio::task::JoinError) -> Status {
    error!(%error, "store task failed");
    Status::internal("the flag store task failed")
}
