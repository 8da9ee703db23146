//! One flag evaluated for OpenFeature: our evaluator's answer in OpenFeature's terms — the
//! reason names, the value checked against the type the provider asked for, and the errors
//! its providers tell apart (not found, type mismatch, general).

use flag_core::{Context, EvalError, Reason, Value};

use crate::openfeature::current::Current;

/// An answer with a value, or without one: then the provider uses the caller's default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    /// `None` when the flag serves no variant here (our `caller_default`): flagd's answer
    /// for a disabled flag or one without a default variant.
    pub(crate) value: Option<Value>,
    pub(crate) variant: Option<String>,
    /// `STATIC`, `TARGETING_MATCH`, `DEFAULT` or `DISABLED`.
    pub(crate) reason: &'static str,
}

/// Why a flag has no answer at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum Unresolved {
    #[error("flag {0:?} not found")]
    NotFound(String),
    #[error("{0}")]
    TypeMismatch(String),
    #[error("{0}")]
    General(String),
}

/// Evaluates `key` in `current` for `ctx` (lent once by an `OwnedContext` for all the flags
/// of a request).
pub(crate) fn resolve(current: &Current, key: &str, ctx: &Context<'_>) -> Result<Resolved, Unresolved> {
    let evaluation = current.snapshot.evaluate(key, ctx);
    let reason = match evaluation.reason {
        Reason::Disabled => "DISABLED",
        // Splits are targeting in flagd's words (its `fractional` is a targeting rule).
        Reason::TargetMatch { .. } | Reason::Split { .. } | Reason::PrerequisiteFailed { .. } => {
            "TARGETING_MATCH"
        }
        Reason::Default if current.fixed.contains(key) => "STATIC",
        Reason::Default => "DEFAULT",
        Reason::FlagNotFound => return Err(Unresolved::NotFound(key.to_owned())),
        Reason::Error(EvalError::MissingBucketAttribute) => {
            return Err(Unresolved::General(format!(
                "flag {key:?} splits by an attribute the context lacks (or holds as neither a string nor a whole number)"
            )));
        }
        Reason::Error(error) => return Err(Unresolved::General(format!("flag {key:?}: {error}"))),
        // A reason added to flag-core later: said plainly rather than guessed at.
        _ => "UNKNOWN",
    };
    Ok(Resolved { value: evaluation.value.cloned(), variant: evaluation.variant.map(str::to_owned), reason })
}

/// The type a provider asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    Bool,
    String,
    Float,
    Int,
    Object,
}

impl Asked {
    fn name(self) -> &'static str {
        match self {
            Asked::Bool => "a boolean",
            Asked::String => "a string",
            Asked::Float => "a float",
            Asked::Int => "an integer",
            Asked::Object => "an object",
        }
    }
}

/// A value of the type asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed {
    Bool(bool),
    String(String),
    Float(f64),
    Int(i64),
    Object(serde_json::Map<String, serde_json::Value>),
}

impl Typed {
    pub(crate) fn into_bool(self) -> Option<bool> {
        if let Typed::Bool(b) = self { Some(b) } else { None }
    }

    pub(crate) fn into_string(self) -> Option<String> {
        if let Typed::String(s) = self { Some(s) } else { None }
    }

    pub(crate) fn into_float(self) -> Option<f64> {
        if let Typed::Float(n) = self { Some(n) } else { None }
    }

    pub(crate) fn into_int(self) -> Option<i64> {
        if let Typed::Int(n) = self { Some(n) } else { None }
    }

    pub(crate) fn into_object(self) -> Option<serde_json::Map<String, serde_json::Value>> {
        if let Typed::Object(map) = self { Some(map) } else { None }
    }
}

/// The largest magnitude a double holds every integer up to: beyond it, "whole" means little.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// `value` as `asked`, or the type mismatch a provider reports.
pub(crate) fn typed(key: &str, value: Value, asked: Asked) -> Result<Typed, Unresolved> {
    let found = value.kind();
    let typed = match (value, asked) {
        (Value::Bool(b), Asked::Bool) => Typed::Bool(b),
        (Value::String(s), Asked::String) => Typed::String(s.into()),
        (Value::Number(n), Asked::Float) => Typed::Float(n),
        (Value::Number(n), Asked::Int) if n.fract() == 0.0 && n.abs() <= EXACT_INTEGERS => {
            Typed::Int(n as i64)
        }
        (Value::Number(n), Asked::Int) => {
            return Err(Unresolved::TypeMismatch(format!(
                "flag {key:?} serves {n}, which is not an integer"
            )));
        }
        (Value::Json(json), Asked::Object) => match *json {
            serde_json::Value::Object(map) => Typed::Object(map),
            _ => {
                return Err(Unresolved::TypeMismatch(format!(
                    "flag {key:?} serves a JSON array, which an object resolution cannot carry"
                )));
            }
        },
        (_, asked) => {
            return Err(Unresolved::TypeMismatch(format!(
                "flag {key:?} serves {found} values, not {}",
                asked.name()
            )));
        }
    };
    Ok(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_the_asked_type_pass_and_others_are_mismatches() {
        assert_eq!(typed("f", Value::Number(3.0), Asked::Int), Ok(Typed::Int(3)));
        assert_eq!(typed("f", Value::Number(3.5), Asked::Float), Ok(Typed::Float(3.5)));
        assert!(matches!(typed("f", Value::Number(3.5), Asked::Int), Err(Unresolved::TypeMismatch(_))));
        assert!(matches!(typed("f", Value::Bool(true), Asked::String), Err(Unresolved::TypeMismatch(_))));
        let array = Value::Json(Box::new(serde_json::json!([1, 2])));
        assert!(matches!(typed("f", array, Asked::Object), Err(Unresolved::TypeMismatch(_))));
    }
}
