//! Every error a request can meet becomes a `tonic::Status` here, and only here.
//!
//! The services and the stream tasks fail with [`RequestError`] (or with the store's own
//! errors, which convert into it); the one `From<RequestError> for Status` below chooses the
//! code, the message and the metadata (named in flag-proto, which the clients read too).

use std::time::Duration;

use flag_proto::{CURRENT_REVISION_KEY, CURRENT_VERSION_KEY, InvalidMessage, STORE_UNAVAILABLE_KEY};
use tonic::Status;
use tonic::metadata::MetadataValue;
use tracing::error;

use crate::principal::Denied;
use crate::store::{BookmarkError, PlanRefusal, StoreError, WriteError};

/// Why a request (or a stream) is refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The store refused or failed a write.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The store failed a read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bookmark could not be made or found.
    #[error(transparent)]
    Bookmark(#[from] BookmarkError),
    /// The blocking task running a store call failed (it panicked).
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A stored set that no longer compiles: the store contradicts its own write-time checks.
    #[error("stored flag set does not compile: {0}")]
    StoredSet(flag_core::ValidationError),
    /// A message that cannot become a model value.
    #[error("malformed request: {0}")]
    Malformed(#[from] InvalidMessage),
    /// A required field of the request is absent.
    #[error("malformed request: `{0}` is required")]
    Missing(&'static str),
    /// The client had gone (deadline passed, call cancelled) before the write's turn.
    #[error("the request's deadline passed or it was cancelled before the write's turn; nothing was written")]
    Abandoned,
    /// No live flag with this key.
    #[error("no flag {key:?} in environment {environment:?}")]
    FlagNotFound {
        /// The key asked for.
        key: String,
        /// The environment looked in.
        environment: String,
    },
    /// No rollout plan was ever started on this flag.
    #[error("flag {key:?} in environment {environment:?} has no rollout plan")]
    NoRollout {
        /// The flag.
        key: String,
        /// The environment looked in.
        environment: String,
    },
    /// A delete of an environment SDKs are streaming, not forced.
    #[error(
        "environment {environment:?} has {} SDK(s) connected ({}); move them first, or delete with --force (their streams end)",
        connected.len(),
        connected.join(", ")
    )]
    EnvironmentInUse {
        /// The environment.
        environment: String,
        /// The connected SDKs' names.
        connected: Vec<String>,
    },
    /// A stream of an environment that was deleted while it streamed.
    #[error("environment {environment:?} was deleted; its SDKs keep the flags they have")]
    EnvironmentDeleted {
        /// The environment.
        environment: String,
    },
    /// A missing or wrong token, or one no longer accepted.
    #[error("{0}")]
    Unauthenticated(String),
    /// A principal asked for something its role or environments do not allow.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A stream whose first message is not `subscribe`.
    #[error("the first WatchRequest must be `subscribe`")]
    NotSubscribe,
    /// A stream that sent nothing in time.
    #[error("no `subscribe` within {} s", .0.as_secs())]
    NoSubscribe(Duration),
    /// A stream that sent something other than `ack` or `report` after subscribing.
    #[error("after `subscribe`, send only `ack` or `report`")]
    NotAck,
    /// A stream that read nothing while its buffer was full.
    #[error(
        "the client read nothing for {} ms with {queued} frames queued; reconnect with since_revision = {sent}",
        .waited.as_millis()
    )]
    SlowClient {
        /// How long the stream waited for room.
        waited: Duration,
        /// The buffer it filled.
        queued: usize,
        /// The revision the client holds.
        sent: u64,
    },
}

impl From<RequestError> for Status {
    fn from(error: RequestError) -> Status {
        match error {
            RequestError::Write(write) => write_status(write),
            RequestError::Store(store) => store_status(&store),
            RequestError::Bookmark(BookmarkError::Store(store)) => store_status(&store),
            RequestError::Bookmark(error @ BookmarkError::Exists { .. }) => {
                Status::already_exists(error.to_string())
            }
            RequestError::Bookmark(error @ BookmarkError::NotFound { .. }) => {
                Status::not_found(error.to_string())
            }
            RequestError::Bookmark(error) => Status::invalid_argument(error.to_string()),
            RequestError::Task(error) => {
                error!(%error, "store task failed");
                Status::internal("the flag store task failed")
            }
            RequestError::StoredSet(error) => {
                error!(%error, "stored flag set does not compile");
                Status::internal("the stored flag set does not compile; the server log has the problems")
            }
            RequestError::Malformed(_)
            | RequestError::Missing(_)
            | RequestError::NotSubscribe
            | RequestError::NotAck => Status::invalid_argument(error.to_string()),
            RequestError::Abandoned | RequestError::NoSubscribe(_) => {
                Status::deadline_exceeded(error.to_string())
            }
            RequestError::FlagNotFound { .. }
            | RequestError::NoRollout { .. }
            | RequestError::EnvironmentDeleted { .. } => Status::not_found(error.to_string()),
            RequestError::EnvironmentInUse { .. } => Status::failed_precondition(error.to_string()),
            RequestError::Unauthenticated(message) => Status::unauthenticated(message),
            RequestError::Denied(denied) => {
                metrics::counter!("flagd_access_denied_total").increment(1);
                Status::permission_denied(denied.to_string())
            }
            RequestError::SlowClient { .. } => Status::resource_exhausted(error.to_string()),
        }
    }
}

impl From<WriteError> for Status {
    fn from(error: WriteError) -> Status {
        RequestError::Write(error).into()
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        RequestError::Store(error).into()
    }
}

fn write_status(error: WriteError) -> Status {
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
            status.metadata_mut().insert(CURRENT_VERSION_KEY, MetadataValue::from(current));
            status
        }
        WriteError::RevisionConflict { current, .. } => {
            let mut status = Status::failed_precondition(error.to_string());
            status.metadata_mut().insert(CURRENT_REVISION_KEY, MetadataValue::from(current));
            status
        }
        WriteError::Precondition(_) => Status::failed_precondition(error.to_string()),
        WriteError::EnvironmentExists { .. } => Status::already_exists(error.to_string()),
        WriteError::Rollout(_)
        | WriteError::InvalidEnvironment { .. }
        | WriteError::PromoteToItself { .. }
        | WriteError::EnvironmentTooLarge { .. } => Status::invalid_argument(error.to_string()),
        WriteError::Store(store) => store_status(&store),
        WriteError::Plan(refusal) => plan_status(&refusal),
    }
}

/// A plan's own terms are the request's arguments; the rest is the flag's or the plan's
/// state.
fn plan_status(refusal: &PlanRefusal) -> Status {
    match refusal {
        PlanRefusal::Terms(_) => Status::invalid_argument(refusal.to_string()),
        PlanRefusal::NoPlan { .. } => Status::not_found(refusal.to_string()),
        _ => Status::failed_precondition(refusal.to_string()),
    }
}

fn store_status(error: &StoreError) -> Status {
    if let StoreError::UnknownEnvironment { .. } = error {
        return Status::not_found(error.to_string());
    }
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
        status.metadata_mut().insert(STORE_UNAVAILABLE_KEY, MetadataValue::from_static("1"));
        return status;
    }
    Status::internal("the flag store failed; the server log has the cause")
}
