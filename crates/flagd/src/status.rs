//! Every error a request can meet becomes a `tonic::Status` here, and only here.

use flag_proto::InvalidMessage;
use tonic::Status;
use tracing::error;

use crate::store::{StoreError, WriteError};

/// Metadata key carrying the current version on a version conflict.
pub(crate) const CURRENT_VERSION_KEY: &str = "x-current-version";

/// Metadata key carrying the environment's revision when an apply expected another.
pub(crate) const CURRENT_REVISION_KEY: &str = "x-current-revision";

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
        WriteError::NotFound { .. }
        | WriteError::VersionNotFound { .. }
        | WriteError::FutureRevision { .. }
        | WriteError::UnknownKeys { .. } => Status::not_found(error.to_string()),
        WriteError::VersionConflict { current, .. } => {
            let mut status = Status::failed_precondition(error.to_string());
            if let Ok(value) = current.to_string().parse() {
                status.metadata_mut().insert(CURRENT_VERSION_KEY, value);
            }
            status
        }
        WriteError::RevisionConflict { current, .. } => {
            let mut status = Status::failed_precondition(error.to_string());
            if let Ok(value) = current.to_string().parse() {
                status.metadata_mut().insert(CURRENT_REVISION_KEY, value);
            }
            status
        }
        WriteError::Precondition(_) => Status::failed_precondition(error.to_string()),
        WriteError::Rollout(_)
        | WriteError::InvalidEnvironment { .. }
        | WriteError::PromoteToItself { .. }
        | WriteError::EnvironmentTooLarge { .. } => Status::invalid_argument(error.to_string()),
        WriteError::Store(store) => store_status(&store),
    }
}

/// Metadata key marking a store that cannot commit now (disk full, I/O error, reopening):
/// the write was not made, and the same request can be retried once `/readyz` is ready.
pub(crate) const STORE_UNAVAILABLE_KEY: &str = "x-store-unavailable";

pub(crate) fn store_status(error: &StoreError) -> Status {
    // The whole cause chain goes to the log.
    let chain = crate::store::chain(error);
    error!(error = %chain, "store failure");
    if error.is_unavailable() {
        // The operator needs the cause (a full disk is theirs to fix); the path stays in the log.
        let cause = error.io_cause().unwrap_or_else(|| error.to_string());
        let mut status = Status::unavailable(format!(
            "the flag store cannot commit writes now ({cause}); this request was not applied. \
             flagd reopens the store by itself: retry once its /readyz answers 200"
        ));
        status.metadata_mut().insert(STORE_UNAVAILABLE_KEY, tonic::metadata::MetadataValue::from_static("1"));
        return status;
    }
    Status::internal("the flag store failed; the server log has the cause")
}

/// A stored set that no longer compiles: the store contradicts its own write-time checks.
pub(crate) fn stored_set_status(error: &flag_core::ValidationError) -> Status {
    error!(%error, "stored flag set does not compile");
    Status::internal("the stored flag set does not compile; the server log has the problems")
}

pub(crate) fn invalid_message(error: InvalidMessage) -> Status {
    Status::invalid_argument(format!("malformed request: {error}"))
}

pub(crate) fn join_status(error: tokio::task::JoinError) -> Status {
    error!(%error, "store task failed");
    Status::internal("the flag store task failed")
}
