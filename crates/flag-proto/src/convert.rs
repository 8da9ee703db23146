//! flag-core ⇄ flags.v1, in one place: the model here; the Admin answers (`admin`), the
//! evaluation (`answer`), history and acknowledgement records (`records`) and the sync
//! stream's frames (`sync`) beside it.
//!
//! Every proto message is destructured without `..`, so adding a field to the contract breaks
//! the build here until the conversion handles it. Proto → model conversions return
//! [`InvalidMessage`] with the path of the malformed field; everything else (unknown
//! variants, bad weights …) is flag-core validation's job, which reports paths the same way.

use std::fmt;

use flag_core as core;

use crate::v1;

/// The environment used when a request leaves it empty.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// `environment`, or [`DEFAULT_ENVIRONMENT`] when empty.
pub fn environment_or_default(environment: &str) -> &str {
    if environment.is_empty() { DEFAULT_ENVIRONMENT } else { environment }
}

/// A message that cannot become a model value: which field, and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {expected}")]
#[non_exhaustive]
pub struct InvalidMessage {
    /// The field, e.g. `flag.variants[1].value`.
    pub path: String,
    /// What was expected there.
    pub expected: String,
}

/// A field path built lazily: rendered only when a conversion fails.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

impl<'a> Path<'a> {
    pub(crate) fn field(&'a self, name: &'static str) -> Path<'a> {
        Path::Field(self, name)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    pub(crate) fn invalid(&self, expected: impl Into<String>) -> InvalidMessage {
        InvalidMessage { path: self.to_string(), expected: expected.into() }
    }
}

// ----- model → proto ------------------------------------------------------------------------

impl From<&core::Flag> for v1::Flag {
    fn from(flag: &core::Flag) -> Self {
        let core::Flag {
            key,
            description,
            variants,
            enabled,
            off_variant,
            rules,
            default,
            prerequisites,
            version,
            metadata,
        } = flag;
        v1::Flag {
            key: key.clone(),
            description: description.clone(),
            variants: variants.iter().map(variant_to_proto).collect(),
            enabled: *enabled,
            // No off variant travels as the empty name, which is never a variant's.
            off_variant: off_variant.clone().unwrap_or_default(),
            rules: rules.iter().map(rule_to_proto).collect(),
            default: Some(serve_to_proto(default)),
            prerequisites: prerequisites
                .iter()
                .map(|core::Prerequisite { flag, variant }| v1::Prerequisite {
                    flag: flag.clone(),
                    variant: variant.clone(),
                })
                .collect(),
            version: *version,
            metadata: Some(metadata_to_proto(metadata)),
        }
    }
}

fn variant_to_proto(variant: &core::Variant) -> v1::Variant {
    let core::Variant { name, value } = variant;
    v1::Variant { name: name.clone(), value: Some(value_to_proto(value)) }
}

impl From<&core::Value> for v1::Value {
    fn from(value: &core::Value) -> Self {
        value_to_proto(value)
    }
}

pub(crate) fn value_to_proto(value: &core::Value) -> v1::Value {
    use v1::value::Kind;
    let kind = match value {
        core::Value::Bool(b) => Kind::BoolValue(*b),
        core::Value::String(s) => Kind::StringValue(s.to_string()),
        core::Value::Number(n) => Kind::NumberValue(*n),
        core::Value::Json(json) => Kind::JsonValue(json.to_string()),
    };
    v1::Value { kind: Some(kind) }
}

fn serve_to_proto(serve: &core::Serve) -> v1::Serve {
    use v1::serve::Kind;
    let kind = match serve {
        core::Serve::Variant(name) => Kind::Variant(name.clone()),
        core::Serve::Split(core::Split { by, salt, weights, bucketing }) => Kind::Split(v1::Split {
            by: by.clone(),
            salt: salt.clone(),
            weights: weights
                .iter()
                .map(|core::Weight { variant, weight }| v1::Weight {
                    variant: variant.clone(),
                    weight: *weight,
                })
                .collect(),
            bucketing: bucketing_to_proto(*bucketing) as i32,
        }),
        core::Serve::CallerDefault => Kind::CallerDefault(true),
    };
    v1::Serve { kind: Some(kind) }
}

fn bucketing_to_proto(bucketing: core::Bucketing) -> v1::Bucketing {
    // Both enums are matched exhaustively, here and in `bucketing_from_proto`: a rule added
    // to either fails the build until the other names it, as a rule decides cohorts.
    match bucketing {
        core::Bucketing::FlagdV2 => v1::Bucketing::FlagdV2,
        core::Bucketing::FlagdV3 => v1::Bucketing::FlagdV3,
    }
}

fn rule_to_proto(rule: &core::Rule) -> v1::Rule {
    let core::Rule { description, clauses, serve } = rule;
    v1::Rule {
        description: description.clone(),
        clauses: clauses.iter().map(clause_to_proto).collect(),
        serve: Some(serve_to_proto(serve)),
    }
}

fn clause_to_proto(clause: &core::Clause) -> v1::Clause {
    let core::Clause { attribute, op, values, negate } = clause;
    v1::Clause {
        attribute: attribute.clone(),
        op: operator_to_proto(*op) as i32,
        values: values.iter().map(|literal| literal.0.clone()).collect(),
        negate: *negate,
    }
}

fn metadata_to_proto(metadata: &core::Metadata) -> v1::Metadata {
    let core::Metadata { owner, tags, kind, created_at, updated_at } = metadata;
    let kind = match kind {
        core::FlagKind::Release => v1::FlagKind::Release,
        core::FlagKind::Experiment => v1::FlagKind::Experiment,
        core::FlagKind::Operational => v1::FlagKind::Operational,
        core::FlagKind::Permission => v1::FlagKind::Permission,
        // flag-core's enum is non-exhaustive; a kind added there maps to "unspecified" here
        // until the contract names it.
        _ => v1::FlagKind::Unspecified,
    };
    v1::Metadata {
        owner: owner.clone(),
        tags: tags.clone(),
        kind: kind as i32,
        created_at: created_at.clone().unwrap_or_default(),
        updated_at: updated_at.clone().unwrap_or_default(),
    }
}

impl From<&core::Segment> for v1::Segment {
    fn from(segment: &core::Segment) -> Self {
        let core::Segment { key, description, included, excluded, rules } = segment;
        v1::Segment {
            key: key.clone(),
            description: description.clone(),
            included: included.clone(),
            excluded: excluded.clone(),
            rules: rules
                .iter()
                .map(|core::SegmentRule { clauses }| v1::SegmentRule {
                    clauses: clauses.iter().map(clause_to_proto).collect(),
                })
                .collect(),
        }
    }
}

/// The one table between the two operator enums, used in both directions.
const OPERATORS: [(core::Operator, v1::Operator); 20] = {
    use core::Operator as C;
    use v1::Operator as P;
    [
        (C::In, P::In),
        (C::NotIn, P::NotIn),
        (C::StartsWith, P::StartsWith),
        (C::EndsWith, P::EndsWith),
        (C::Contains, P::Contains),
        (C::Regex, P::Regex),
        (C::NumberEq, P::NumberEq),
        (C::NumberLt, P::NumberLt),
        (C::NumberLte, P::NumberLte),
        (C::NumberGt, P::NumberGt),
        (C::NumberGte, P::NumberGte),
        (C::SemverEq, P::SemverEq),
        (C::SemverLt, P::SemverLt),
        (C::SemverLte, P::SemverLte),
        (C::SemverGt, P::SemverGt),
        (C::SemverGte, P::SemverGte),
        (C::DateBefore, P::DateBefore),
        (C::DateAfter, P::DateAfter),
        (C::Exists, P::Exists),
        (C::InSegment, P::InSegment),
    ]
};

fn operator_to_proto(op: core::Operator) -> v1::Operator {
    OPERATORS.iter().find(|(c, _)| *c == op).map_or(v1::Operator::Unspecified, |(_, p)| *p)
}

// ----- proto → model ------------------------------------------------------------------------

impl TryFrom<v1::Flag> for core::Flag {
    type Error = InvalidMessage;

    fn try_from(flag: v1::Flag) -> Result<Self, Self::Error> {
        flag_from_proto(flag, &Path::Root("flag"))
    }
}

pub(crate) fn flag_from_proto(flag: v1::Flag, path: &Path<'_>) -> Result<core::Flag, InvalidMessage> {
    let v1::Flag {
        key,
        description,
        variants,
        enabled,
        off_variant,
        rules,
        default,
        prerequisites,
        version,
        metadata,
    } = flag;
    // The empty name is how "no off variant" travels; an empty variant name is invalid.
    let off_variant = (!off_variant.is_empty()).then_some(off_variant);
    let variants_path = path.field("variants");
    let variants = variants
        .into_iter()
        .enumerate()
        .map(|(i, variant)| variant_from_proto(variant, &variants_path.index(i)))
        .collect::<Result<_, _>>()?;
    let rules_path = path.field("rules");
    let rules = rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| rule_from_proto(rule, &rules_path.index(i)))
        .collect::<Result<_, _>>()?;
    let default_path = path.field("default");
    let default = serve_from_proto(default, &default_path)?;
    let prerequisites = prerequisites
        .into_iter()
        .map(|v1::Prerequisite { flag, variant }| core::Prerequisite { flag, variant })
        .collect();
    let metadata = metadata_from_proto(metadata.unwrap_or_default(), &path.field("metadata"))?;
    Ok(core::Flag {
        key,
        description,
        variants,
        enabled,
        off_variant,
        rules,
        default,
        prerequisites,
        version,
        metadata,
    })
}

fn variant_from_proto(variant: v1::Variant, path: &Path<'_>) -> Result<core::Variant, InvalidMessage> {
    let v1::Variant { name, value } = variant;
    let value_path = path.field("value");
    let value = match value {
        Some(value) => value_from_proto(value, &value_path)?,
        None => return Err(missing_value(&value_path)),
    };
    Ok(core::Variant { name, value })
}

fn missing_value(path: &Path<'_>) -> InvalidMessage {
    path.invalid("one of bool_value, string_value, number_value or json_value")
}

pub(crate) fn value_from_proto(value: v1::Value, path: &Path<'_>) -> Result<core::Value, InvalidMessage> {
    use v1::value::Kind;
    let v1::Value { kind } = value;
    Ok(match kind {
        Some(Kind::BoolValue(b)) => core::Value::Bool(b),
        Some(Kind::StringValue(s)) => core::Value::String(s.into()),
        Some(Kind::NumberValue(n)) if n.is_finite() => core::Value::Number(n),
        Some(Kind::NumberValue(n)) => return Err(path.invalid(format!("a finite number, found {n}"))),
        Some(Kind::JsonValue(text)) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                core::Value::Json(Box::new(json))
            }
            Ok(other) => return Err(path.invalid(format!("a JSON object or array, found {other}"))),
            Err(e) => return Err(path.invalid(format!("JSON text ({e})"))),
        },
        None => return Err(missing_value(path)),
    })
}

fn serve_from_proto(serve: Option<v1::Serve>, path: &Path<'_>) -> Result<core::Serve, InvalidMessage> {
    use v1::serve::Kind;
    match serve.and_then(|v1::Serve { kind }| kind) {
        Some(Kind::Variant(name)) => Ok(core::Serve::Variant(name)),
        Some(Kind::Split(v1::Split { by, salt, weights, bucketing })) => {
            let bucketing = bucketing_from_proto(bucketing, &path.field("split").field("bucketing"))?;
            Ok(core::Serve::Split(core::Split {
                by,
                salt,
                weights: weights
                    .into_iter()
                    .map(|v1::Weight { variant, weight }| core::Weight { variant, weight })
                    .collect(),
                bucketing,
            }))
        }
        Some(Kind::CallerDefault(true)) => Ok(core::Serve::CallerDefault),
        Some(Kind::CallerDefault(false)) => Err(path
            .field("caller_default")
            .invalid("true (to serve a variant, set `variant` or `split` instead)")),
        None => Err(path.invalid("a serve: `variant`, `split` or `caller_default`")),
    }
}

fn bucketing_from_proto(bucketing: i32, path: &Path<'_>) -> Result<core::Bucketing, InvalidMessage> {
    match v1::Bucketing::try_from(bucketing) {
        Ok(v1::Bucketing::FlagdV2) => Ok(core::Bucketing::FlagdV2),
        Ok(v1::Bucketing::FlagdV3) => Ok(core::Bucketing::FlagdV3),
        Err(_) => Err(path.invalid(format!("a known bucketing (BUCKETING_FLAGD_V2 …), found {bucketing}"))),
    }
}

fn rule_from_proto(rule: v1::Rule, path: &Path<'_>) -> Result<core::Rule, InvalidMessage> {
    let v1::Rule { description, clauses, serve } = rule;
    let clauses_path = path.field("clauses");
    let clauses = clauses
        .into_iter()
        .enumerate()
        .map(|(i, clause)| clause_from_proto(clause, &clauses_path.index(i)))
        .collect::<Result<_, _>>()?;
    let serve = serve_from_proto(serve, &path.field("serve"))?;
    Ok(core::Rule { description, clauses, serve })
}

fn clause_from_proto(clause: v1::Clause, path: &Path<'_>) -> Result<core::Clause, InvalidMessage> {
    let v1::Clause { attribute, op, values, negate } = clause;
    let op = v1::Operator::try_from(op)
        .ok()
        .and_then(|p| OPERATORS.iter().find(|(_, known)| *known == p))
        .map(|(c, _)| *c)
        .ok_or_else(|| path.field("op").invalid(format!("a known operator (OPERATOR_IN …), found {op}")))?;
    Ok(core::Clause { attribute, op, values: values.into_iter().map(core::Literal).collect(), negate })
}

fn metadata_from_proto(metadata: v1::Metadata, path: &Path<'_>) -> Result<core::Metadata, InvalidMessage> {
    let v1::Metadata { owner, tags, kind, created_at, updated_at } = metadata;
    let kind = match v1::FlagKind::try_from(kind) {
        Ok(v1::FlagKind::Unspecified | v1::FlagKind::Release) => core::FlagKind::Release,
        Ok(v1::FlagKind::Experiment) => core::FlagKind::Experiment,
        Ok(v1::FlagKind::Operational) => core::FlagKind::Operational,
        Ok(v1::FlagKind::Permission) => core::FlagKind::Permission,
        Err(_) => return Err(path.field("kind").invalid(format!("a known flag kind, found {kind}"))),
    };
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(core::Metadata {
        owner,
        tags,
        kind,
        created_at: non_empty(created_at),
        updated_at: non_empty(updated_at),
    })
}

impl TryFrom<v1::Segment> for core::Segment {
    type Error = InvalidMessage;

    fn try_from(segment: v1::Segment) -> Result<Self, Self::Error> {
        segment_from_proto(segment, &Path::Root("segment"))
    }
}

pub(crate) fn segment_from_proto(
    segment: v1::Segment,
    path: &Path<'_>,
) -> Result<core::Segment, InvalidMessage> {
    let v1::Segment { key, description, included, excluded, rules } = segment;
    let rules_path = path.field("rules");
    let rules = rules
        .into_iter()
        .enumerate()
        .map(|(i, v1::SegmentRule { clauses })| {
            let rule_path = rules_path.index(i);
            let clauses_path = rule_path.field("clauses");
            let clauses = clauses
                .into_iter()
                .enumerate()
                .map(|(c, clause)| clause_from_proto(clause, &clauses_path.index(c)))
                .collect::<Result<_, _>>()?;
            Ok(core::SegmentRule { clauses })
        })
        .collect::<Result<_, InvalidMessage>>()?;
    Ok(core::Segment { key, description, included, excluded, rules })
}

/// A whole snapshot's flags and segments, with paths like `flags[3].variants[0].value`.
pub fn flag_set_from_proto(
    flags: Vec<v1::Flag>,
    segments: Vec<v1::Segment>,
) -> Result<core::FlagSet, InvalidMessage> {
    let flags = flags
        .into_iter()
        .enumerate()
        .map(|(i, flag)| flag_from_proto(flag, &Path::Root("flags").index(i)))
        .collect::<Result<_, _>>()?;
    let segments = segments
        .into_iter()
        .enumerate()
        .map(|(i, segment)| segment_from_proto(segment, &Path::Root("segments").index(i)))
        .collect::<Result<_, _>>()?;
    Ok(core::FlagSet { flags, segments })
}

mod admin;
mod answer;
mod diff;
mod environments;
mod health;
mod log;
mod promote;
mod reach;
mod records;
mod requests;
mod rollout;
mod sync;
#[cfg(test)]
mod tests;

pub use admin::{
    ApplyOutcome, Authorship, BackupTotals, BookmarkInfo, FlagState, HistoryPage, Killed, Listed,
    RestoreOutcome, Written, apply_response, backup_chunk, get_flag_response, history_response,
    kill_response, list_flags_response, list_segments_response, restore_response, write_response,
};
pub use answer::{Answer, AnswerReason, attribute_to_proto, attributes_from_proto, evaluate_response};
pub use diff::{DiffOutcome, Side, diff_request, diff_request_from_proto, diff_response};
pub use environments::{
    Deleted, EnvironmentInfo, create_environment_request, delete_environment_request,
    delete_environment_response, environments_from_proto,
};
pub use health::{report_ack_frame, report_request};
pub use log::{
    InvalidCursor, LogCursor, LogEnvironments, LogPage, LogQuery, MAX_LOG_PAGE, log_request,
    log_request_from_proto, log_response,
};
pub use promote::{
    Part, PromoteAsk, PromoteOutcome, promote_request, promote_request_from_proto, promote_response,
};
pub use reach::{Reach, Reaches, Touch};
pub use requests::{
    ApplyPlan, Point, Requests, Restore, RestorePlan, Rollout, backup_request, restore_request_from_proto,
};
pub use rollout::{
    CohortNow, RolloutChange, RolloutInfo, rollout_response, start_rollout_request_from_proto,
};
pub use sync::{
    AckCount, ClientMessage, EncodedChanges, EncodedSnapshot, Relayed, Snapshot, Subscription, SyncFrame,
    ack_request, changes_frame, heartbeat_frame, relay_acks_request, snapshot_frame, subscribe_request,
};
