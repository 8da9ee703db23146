//! One flag-core evaluation as OpenFeature's answer: the value read as the type asked, the
//! variant, the reason and the flag metadata — or the error code saying why there is none.
//! The mapping of reasons and errors is tabled in the crate docs; this is its one place.

use flag_core::{EvalError, Evaluation, Flag, Reason, Value};
use open_feature::provider::ResolutionDetails;
use open_feature::{EvaluationError, EvaluationErrorCode, EvaluationReason, FlagMetadata, StructValue};

use crate::structure::to_struct;

/// Reads a variant's value as the type asked, or refuses it with `TYPE_MISMATCH`.
pub(crate) type Read<T> = fn(&Value) -> Result<T, EvaluationError>;

/// What was evaluated: the answer, the definition it came from, and the revision served.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Served<'s> {
    pub(crate) key: &'s str,
    pub(crate) evaluation: Evaluation<'s>,
    pub(crate) definition: Option<&'s Flag>,
    pub(crate) revision: u64,
}

/// The OpenFeature answer for `served`, its value read by `read`.
pub(crate) fn answer<T>(served: Served<'_>, read: Read<T>) -> Result<ResolutionDetails<T>, EvaluationError> {
    let Served { key, evaluation, definition, revision } = served;
    let reason = reason(key, evaluation.reason, definition)?;
    let (Some(variant), Some(value)) = (evaluation.variant, evaluation.value) else {
        return Err(error(
            general(),
            format!("flag `{key}` served no variant ({:?}): the caller's default applies", evaluation.reason),
        ));
    };
    Ok(ResolutionDetails {
        value: read(value)?,
        variant: Some(variant.to_owned()),
        reason: Some(reason),
        flag_metadata: Some(metadata(evaluation.reason, definition, revision)),
    })
}

/// flag-core's reason as OpenFeature's, or the error it stands for.
fn reason(
    key: &str,
    reason: Reason<'_>,
    definition: Option<&Flag>,
) -> Result<EvaluationReason, EvaluationError> {
    Ok(match reason {
        Reason::Disabled => EvaluationReason::Disabled,
        // flagd reports its `fractional` splits, which bucket as ours do, as targeting
        // matches; the bucket is in the flag metadata.
        Reason::TargetMatch { .. } | Reason::Split { .. } => EvaluationReason::TargetingMatch,
        // STATIC: nothing about the context could have changed the answer.
        Reason::Default
            if definition.is_some_and(|flag| flag.rules.is_empty() && flag.prerequisites.is_empty()) =>
        {
            EvaluationReason::Static
        }
        Reason::Default => EvaluationReason::Default,
        Reason::PrerequisiteFailed { .. } => EvaluationReason::Other("PREREQUISITE_FAILED".to_owned()),
        Reason::FlagNotFound => {
            return Err(error(EvaluationErrorCode::FlagNotFound, format!("no flag `{key}`")));
        }
        Reason::Error(cause) => {
            let code = match cause {
                EvalError::TypeMismatch { .. } => EvaluationErrorCode::TypeMismatch,
                EvalError::MissingBucketAttribute => EvaluationErrorCode::InvalidContext,
                _ => general(),
            };
            return Err(error(code, format!("flag `{key}`: {cause}")));
        }
        // A reason added to flag-core later: the answer stands, its reason is not known here.
        _ => EvaluationReason::Unknown,
    })
}

/// The flag metadata: the revision served, the flag's stored version and what it says about
/// its owner, and what placed the context (rule, bucket, failed prerequisite).
fn metadata(reason: Reason<'_>, definition: Option<&Flag>, revision: u64) -> FlagMetadata {
    let mut metadata = FlagMetadata::default().with_value("revision", saturating_i64(revision));
    match reason {
        Reason::TargetMatch { rule, bucket } => {
            metadata.add_value("rule", saturating_i64(rule as u64));
            if let Some(bucket) = bucket {
                metadata.add_value("bucket", bucket);
            }
        }
        Reason::Split { bucket } => metadata.add_value("bucket", bucket),
        Reason::PrerequisiteFailed { prerequisite } => metadata.add_value("prerequisite", prerequisite),
        _ => {}
    }
    if let Some(flag) = definition {
        metadata.add_value("version", saturating_i64(flag.version));
        let about = &flag.metadata;
        if !about.owner.is_empty() {
            metadata.add_value("owner", about.owner.as_str());
        }
        if !about.tags.is_empty() {
            metadata.add_value("tags", about.tags.join(","));
        }
        if let Ok(serde_json::Value::String(kind)) = serde_json::to_value(about.kind) {
            metadata.add_value("kind", kind);
        }
    }
    metadata
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError { code, message: Some(message) }
}

/// OpenFeature's `GENERAL` code, which the crate spells as a string.
fn general() -> EvaluationErrorCode {
    EvaluationErrorCode::General("GENERAL".to_owned())
}

fn mismatch(value: &Value, asked: &str) -> EvaluationError {
    error(EvaluationErrorCode::TypeMismatch, format!("flag serves {} values, not {asked}", value.kind()))
}

/// [`Read`] for `resolve_bool_value`.
pub(crate) fn bool_of(value: &Value) -> Result<bool, EvaluationError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(mismatch(other, "bool")),
    }
}

/// [`Read`] for `resolve_int_value`: a number flag's value when it is whole and fits `i64`.
pub(crate) fn int_of(value: &Value) -> Result<i64, EvaluationError> {
    // 2^63: the first double above i64's range; -2^63 is i64::MIN itself.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Value::Number(n) if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(n) => Ok(*n as i64),
        Value::Number(n) => Err(error(
            EvaluationErrorCode::TypeMismatch,
            format!("flag serves {n}, which is not a whole number in i64's range"),
        )),
        other => Err(mismatch(other, "int")),
    }
}

/// [`Read`] for `resolve_float_value`.
pub(crate) fn float_of(value: &Value) -> Result<f64, EvaluationError> {
    match value {
        Value::Number(n) => Ok(*n),
        other => Err(mismatch(other, "float")),
    }
}

/// [`Read`] for `resolve_string_value`.
pub(crate) fn string_of(value: &Value) -> Result<String, EvaluationError> {
    match value {
        Value::String(s) => Ok(s.to_string()),
        other => Err(mismatch(other, "string")),
    }
}

/// [`Read`] for `resolve_struct_value`: a JSON flag's object.
pub(crate) fn struct_of(value: &Value) -> Result<StructValue, EvaluationError> {
    match value {
        Value::Json(json) => to_struct(json),
        other => Err(mismatch(other, "struct")),
    }
}
