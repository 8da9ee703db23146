//! The flag model and its evaluator: pure, synchronous, allocation-free on the hot path.
//!
//! The server validates with this crate and the SDK evaluates with it, so both agree on
//! what a flag means by construction.
//!
//! # Layout
//!
//! - `model` — the flag set as people write it (YAML/JSON through serde).
//! - `value` — variant values, and the borrowed [`Context`] evaluations are made for.
//! - `compile`, `compile_clause` — validation and compilation in one pass: a set is valid
//!   exactly when it compiles; every problem is reported with its field path (`error`).
//! - `compiled` — flags and segments compiled for evaluation.
//! - `evaluate` — the hot path, marked `// HOT PATH`: the [`Snapshot`]'s fields as evaluation
//!   reads them, the key lookup (by key or [`FlagHandle`]), and [`Snapshot::evaluate`].
//! - `snapshot` — building a snapshot, its keys, handles, and layouts kept across changes.
//! - `answer` — what an evaluation answers: [`Evaluation`], [`Reason`], [`Detail`] (and
//!   [`OwnedDetail`], borrowing nothing), and the [`VariantIndex`] of the variant served.
//! - `typed` — the typed getters, defined once: [`Evaluate`], implemented by every holder of
//!   a snapshot (here [`Snapshot`]; in the SDK its client and caches), and the [`Question`]
//!   each getter asks.
//! - `murmur` — incremental murmur3 ([`Murmur3`]) and the bucketing rule shared with OpenFeature's flagd.
//! - `bucketing` — the bytes a split hashes under each [`Bucketing`] rule (flagd's
//!   concatenation, or its deterministic CBOR), fed to the hash without concatenating.
//! - `semver`, `date` — allocation-free parsers for clause attributes.
//! - `dark_launch` — the `on`/`dark`/`off` convention.
//! - `diff` — [`diff`]: what differs between two flag sets, field by field.
//! - `records` — what the server reports about changes (history entries, logged changes
//!   with their content before, applied changes, change batches, acknowledgement reports) as plain data, so flagd, flagctl and the SDK
//!   talk about changes without naming protobuf messages.
//! - `file_lines` (feature `file-lines`) — [`LineIndex`]: the file line of each field of a
//!   flag file, and its nesting limit, checked in linear time before serde reads it.
//!
//! # Example
//!
//! ```
//! use flag_core::{AttrValue, Context, Evaluate, Flag, FlagSet, Reason};
//!
//! let mut chat = Flag::rollout("chat", 10.0)?;
//! chat.rules.push(serde_json::from_value(serde_json::json!({
//!     "clauses": [{ "attribute": "country", "op": "in", "values": ["NZ"] }],
//!     "serve": { "variant": "on" },
//! }))?);
//! let snapshot = FlagSet { flags: vec![chat], segments: vec![] }.compile()?;
//!
//! // user-1 falls in bucket 8 328 of 100 000: inside the first 10 %.
//! let user_1 = Context::new("user-1");
//! assert!(snapshot.is_enabled("chat", &user_1));
//! assert_eq!(snapshot.evaluate("chat", &user_1).reason, Reason::Split { bucket: 8_328 });
//!
//! // user-42 (bucket 68 275) is outside, unless a rule says otherwise.
//! assert!(!snapshot.is_enabled("chat", &Context::new("user-42")));
//! let kiwi = [("country", AttrValue::Str("NZ"))];
//! assert!(snapshot.is_enabled("chat", &Context::new("user-42").with_attributes(&kiwi)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod answer;
mod bucketing;
mod compile;
mod compile_clause;
mod compiled;
mod dark_launch;
mod date;
mod describe;
mod diff;
mod environment;
mod error;
mod evaluate;
#[cfg(feature = "file-lines")]
mod file_lines;
mod health;
mod model;
mod murmur;
mod records;
mod rollout_plan;
mod semver;
mod snapshot;
mod typed;
mod value;

pub use answer::{Detail, EvalError, Evaluation, OwnedDetail, OwnedReason, Reason, VariantIndex};
pub use compile::{MAX_KEY_LEN, compile_parts};
pub use dark_launch::{DARK, LaunchStage, OFF, ON, RolloutError, percent_to_weight};
pub use describe::{clause_text, dark_cohort_text, off_variant_text, percent_text, serve_text, state_text};
pub use diff::{FieldChange, SetDiff, SubjectDiff, diff};
pub use environment::{CopiedFrom, EnvironmentSummary, Stamp};
pub use error::{Problem, ValidationError};
pub use evaluate::{FlagHandle, FlagRef, Snapshot};
#[cfg(feature = "file-lines")]
pub use file_lines::{LineIndex, MAX_FILE_DEPTH, TooDeep};
pub use health::{
    CohortFigures, CohortReport, HealthReport, LATENCY_BOUNDS_US, LATENCY_BUCKETS, LatencyHistogram, Outcome,
};
pub use model::{
    Bucketing, Clause, Flag, FlagKind, FlagSet, Literal, Metadata, Operator, Prerequisite, Rule, Segment,
    SegmentRule, Serve, Split, Variant, Weight,
};
pub use murmur::{MAX_TOTAL_WEIGHT, Murmur3, TOTAL_WEIGHT, bucket, bucket_of, murmur3_32};
pub use records::{
    AckReport, AppliedChange, ChangeBatch, HistoryEntry, LoggedChange, Operation, Subject, SubjectKind,
};
pub use rollout_plan::{OnBreach, PlanError, Rollout, RolloutPlan, RolloutState};
pub use typed::{
    BoolDetail, BoolValue, Evaluate, IsEnabled, JsonDetail, JsonValue, NumberDetail, NumberValue, Question,
    Stage, StringDetail, StringValue,
};
pub use value::{AttrValue, Context, KEY_ATTRIBUTE, Value, ValueKind};
