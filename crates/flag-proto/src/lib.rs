//! The wire contract, package `flags.v1`: generated prost/tonic code and the conversions
//! between it and flag-core's model.
//!
//! # Layout
//!
//! - [`v1`] — generated from `proto/flags/v1/*.proto` by protox + tonic-prost-build at build
//!   time (no system `protoc`): messages, the `Admin` and `Sync` clients and servers.
//! - [`flagd`] — OpenFeature flagd's contracts (`flagd.evaluation.v1`, `.v2`,
//!   `flagd.sync.v1`) from `proto/flagd/`, our own definitions with upstream's names and
//!   field numbers, so its providers in every language talk to flagd unmodified.
//! - [`shared_sync`] — the `Sync` server once more, with [`FrameCodec`]: pre-encoded frames
//!   are written verbatim, so a change is encoded once for all streams.
//! - [`shared_flag_sync`] — OpenFeature's `FlagSyncService` server, its `SyncFlags`
//!   responses [`PreEncoded`] once per revision for every provider's stream.
//! - `convert` — domain ⇄ proto, in one place, and the only code outside `v1` that names
//!   our messages' fields. Every proto field is destructured (no `..`), so a new field breaks
//!   the build until it is handled; malformed input becomes [`InvalidMessage`] naming the
//!   field. Beside the model itself (flags, segments, whole sets):
//!   - `convert/admin` — the Admin answers built from domain values ([`write_response`],
//!     [`kill_response`], [`history_response`] …) and read back as them ([`Written`],
//!     [`Killed`], [`HistoryPage`], [`ApplyOutcome`] …), and [`Authorship`] (who and why);
//!   - `convert/answer` — `Evaluate`: request attributes as a context's, an evaluation and its
//!     reason as the answer ([`evaluate_response`]), and the owned [`Answer`] a client reads;
//!   - `convert/records` — flag-core's history entries, applied changes and acknowledgement
//!     reports;
//!   - `convert/sync` — the `Watch` stream: [`Subscription`]s and acks in, snapshot, change
//!     and heartbeat frames out ([`snapshot_frame`], [`changes_frame`], [`heartbeat_frame`],
//!     each encoded once), and [`SyncFrame`] for a client, whose flags stay encoded until it
//!     decodes them (off its async worker, if it likes);
//!   - `convert/requests` — [`Requests`]: the Admin requests a client sends, from domain
//!     values, so no client spells out a request message;
//!   - `convert/reach` — [`Reaches`]: which environments each Admin request reads or writes
//!     ([`Reach`]), all flagd's access check needs to know of a call.
//!   - `convert/log` — `QueryLog`: a [`LogQuery`] (filters, page, [`LogCursor`]) checked as the
//!     server reads it, and the [`LogPage`] of changes with their content before and after.
//! - `metadata` — the names of every header we set or read ([`CURRENT_VERSION_KEY`],
//!   [`STORE_UNAVAILABLE_KEY`] …), for flagd and its clients alike.
//! - `auth` — [`Bearer`], the one client interceptor that sends the token, and
//!   [`bearer_token`], the one reading of it flagd compares.
//! - `errors` — [`error_chain`]: a client's transport error with its causes, on one line.
//! - `limits` — [`MAX_MESSAGE_BYTES`], the one message-size limit every side sets.
//!
//! flag-proto depends on flag-core and on nothing of flagd's: where flagd keeps its own
//! record types (the store's history entries), flagd moves them into flag-core's
//! (`flag_core::HistoryEntry` …) before handing them over.
//!
//! # Example
//!
//! ```
//! use flag_core::{Flag, FlagSet};
//! use flag_proto::{SyncFrame, snapshot_frame};
//!
//! // flagd encodes a snapshot once; a client reads the frame and decodes the flags when it likes.
//! let set = FlagSet { flags: vec![Flag::rollout("chat", 10.0)?], segments: vec![] };
//! let frame = SyncFrame::from(snapshot_frame(7, "store-1", &set).decode()?);
//! assert_eq!(frame.revision(), Some(7));
//! let SyncFrame::Snapshot(snapshot) = frame else { unreachable!("a snapshot frame") };
//! assert_eq!(snapshot.decode()?.set, set);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod convert;
mod errors;
mod frame;
mod limits;
mod metadata;
mod pre_encoded;
mod release;

/// Generated `flags.v1` messages and services.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod v1 {
    tonic::include_proto!("flags.v1");
}

/// OpenFeature flagd's wire contracts, generated from `proto/flagd/`: what its unmodified
/// providers call — the evaluation service (v1 and v2) of the RPC resolver and the sync
/// service of the in-process resolver.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod flagd {
    /// `flagd.evaluation.*`.
    pub mod evaluation {
        /// `flagd.evaluation.v1`.
        pub mod v1 {
            tonic::include_proto!("flagd.evaluation.v1");
        }
        /// `flagd.evaluation.v2`.
        pub mod v2 {
            tonic::include_proto!("flagd.evaluation.v2");
        }
    }
    /// `flagd.sync.v1`.
    pub mod sync {
        /// `flagd.sync.v1`.
        pub mod v1 {
            tonic::include_proto!("flagd.sync.v1");
        }
    }
}

/// The `Sync` server with the frame codec (generated by `tonic_build::manual`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod shared_sync {
    include!(concat!(env!("OUT_DIR"), "/shared_frames/flags.v1.Sync.rs"));
}

/// OpenFeature's `FlagSyncService` server with `SyncFlags` sending [`PreEncoded`] responses
/// (generated by `tonic_build::manual`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod shared_flag_sync {
    include!(concat!(env!("OUT_DIR"), "/shared_frames/flagd.sync.v1.FlagSyncService.rs"));
}

pub use auth::{Bearer, InvalidToken, bearer_token};
pub use convert::{
    AckCount, Answer, AnswerReason, ApplyOutcome, ApplyPlan, Authorship, BackupTotals, BookmarkInfo,
    ClientMessage, DEFAULT_ENVIRONMENT, Deleted, DiffOutcome, EncodedChanges, EncodedSnapshot,
    EnvironmentInfo, FlagState, HistoryPage, InvalidMessage, Killed, Listed, Part, Point, PromoteAsk,
    PromoteOutcome, Reach, Reaches, Relayed, Requests, Restore, RestoreOutcome, RestorePlan, Rollout, Side,
    Snapshot, Subscription, SyncFrame, Touch, Written, ack_request, apply_response, attribute_to_proto,
    attributes_from_proto, backup_chunk, backup_request, changes_frame, create_environment_request,
    delete_environment_request, delete_environment_response, diff_request, diff_request_from_proto,
    diff_response, environment_or_default, environments_from_proto, evaluate_response, flag_set_from_proto,
    get_flag_response, heartbeat_frame, history_response, kill_response, list_flags_response,
    list_segments_response, promote_request, promote_request_from_proto, promote_response,
    relay_acks_request, report_ack_frame, report_request, restore_request_from_proto, restore_response,
    snapshot_frame, subscribe_request, write_response,
};
pub use convert::{
    CohortNow, RolloutChange, RolloutInfo, rollout_response, start_rollout_request_from_proto,
};
pub use convert::{
    InvalidCursor, LogCursor, LogEnvironments, LogPage, LogQuery, MAX_LOG_PAGE, log_request,
    log_request_from_proto, log_response,
};
pub use errors::error_chain;
pub use frame::{FrameCodec, FrameEncoder, RequestDecoder, WatchFrame};
pub use limits::{
    DEFAULT_MAX_ENVIRONMENT_BYTES, MAX_MESSAGE_BYTES, SNAPSHOT_OVERHEAD_BYTES, snapshot_flag_bytes,
    snapshot_segment_bytes,
};
pub use metadata::{
    AUTHORIZATION_KEY, CURRENT_REVISION_KEY, CURRENT_VERSION_KEY, GRPC_TIMEOUT_KEY, HEALTH_REPORTS_KEY,
    STORE_UNAVAILABLE_KEY,
};
pub use pre_encoded::{PreEncoded, PreEncodedCodec, PreEncodedEncoder, ProstDecoder};
pub use release::{STORE_FORMAT, version_text};
