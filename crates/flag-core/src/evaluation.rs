//! What an evaluation answers, and the typed ways to ask.

use crate::eval::Resolution;
use crate::snapshot::{FlagRef, Snapshot};
use crate::value::{Context, Value, ValueKind};

/// The answer for one flag and one context, borrowed from the snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<'s> {
    /// The variant served; `None` when the flag is missing or evaluation failed.
    pub variant: Option<&'s str>,
    /// Its value; `None` exactly when `variant` is.
    pub value: Option<&'s Value>,
    /// Why — what an operator needs to answer "why did user 42 get this?".
    pub reason: Reason<'s>,
}

impl<'s> Evaluation<'s> {
    /// As a boolean answer: the value, or `default` with `TypeMismatch` when the flag serves
    /// another type (or the reason it served nothing). Evaluators that do something between
    /// evaluating and typing (the SDK counts) share this rule with the typed helpers.
    #[inline]
    pub fn into_bool(self, default: bool) -> Detail<'s, bool> {
        self.typed(default, ValueKind::Bool, |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// As a string answer; see [`Evaluation::into_bool`].
    #[inline]
    pub fn into_string(self, default: &'s str) -> Detail<'s, &'s str> {
        self.typed(default, ValueKind::String, |v| match v {
            Value::String(s) => Some(&**s),
            _ => None,
        })
    }

    /// As a number answer; see [`Evaluation::into_bool`].
    #[inline]
    pub fn into_number(self, default: f64) -> Detail<'s, f64> {
        self.typed(default, ValueKind::Number, |v| match v {
            Value::Number(n) => Some(*n),
            _ => None,
        })
    }

    /// As a JSON answer; see [`Evaluation::into_bool`].
    #[inline]
    pub fn into_json(self, default: &'s serde_json::Value) -> Detail<'s, &'s serde_json::Value> {
        self.typed(default, ValueKind::Json, |v| match v {
            Value::Json(json) => Some(&**json),
            _ => None,
        })
    }

    #[inline]
    fn typed<T>(
        self,
        default: T,
        expected: ValueKind,
        extract: impl FnOnce(&'s Value) -> Option<T>,
    ) -> Detail<'s, T> {
        let Some(value) = self.value else {
            return Detail { value: default, variant: None, reason: self.reason };
        };
        match extract(value) {
            Some(typed) => Detail { value: typed, variant: self.variant, reason: self.reason },
            None => Detail {
                value: default,
                variant: None,
                reason: Reason::Error(EvalError::TypeMismatch { expected, found: value.kind() }),
            },
        }
    }
}

/// Why an evaluation answered as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason<'s> {
    /// The flag is killed (`enabled = false`): the off variant.
    Disabled,
    /// Rule `rule` (0-based) matched; `bucket` is set when it served a split.
    TargetMatch {
        /// Index of the rule in the flag.
        rule: usize,
        /// The context's bucket (of 100 000) when the rule served a split.
        bucket: Option<u32>,
    },
    /// No rule matched and the default split placed the context in `bucket` (of 100 000).
    Split {
        /// The context's bucket.
        bucket: u32,
    },
    /// No rule matched; the default serves one variant.
    Default,
    /// A prerequisite flag did not resolve to its required variant: the off variant.
    PrerequisiteFailed {
        /// Key of the first prerequisite that failed.
        prerequisite: &'s str,
    },
    /// No flag has this key: the caller's default.
    FlagNotFound,
    /// Evaluation could not answer: the caller's default.
    Error(EvalError),
}

/// Why an evaluation fell back to the caller's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A typed helper asked for one type and the flag serves another.
    #[error("flag serves {found} values, not {expected}")]
    TypeMismatch {
        /// The type asked for.
        expected: ValueKind,
        /// The type the flag serves.
        found: ValueKind,
    },
    /// A split buckets by an attribute that the context lacks (or that is not a string or
    /// whole number below 2^63 in magnitude).
    #[error("the context lacks the attribute the split buckets by")]
    MissingBucketAttribute,
    /// The snapshot contradicted an invariant of compilation; never expected.
    #[error("internal evaluation error")]
    Internal,
}

/// A typed answer: the value (the caller's default unless a variant was served), and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detail<'s, T> {
    /// The value to use.
    pub value: T,
    /// The variant served, if one was.
    pub variant: Option<&'s str>,
    /// Why.
    pub reason: Reason<'s>,
}

impl Snapshot {
    /// Evaluates a flag (by key or [`FlagHandle`](crate::FlagHandle)) for a context.
    #[inline]
    pub fn evaluate<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        let Some(index) = flag.position_in(self) else {
            return Evaluation { variant: None, value: None, reason: Reason::FlagNotFound };
        };
        let compiled = &self.flags[index];
        let resolution: Resolution<'_> = self.resolve(compiled, ctx);
        match resolution.and_then(|(v, reason)| {
            compiled.variants.get(v as usize).map(|v| (v, reason)).ok_or(EvalError::Internal)
        }) {
            Ok((variant, reason)) => {
                Evaluation { variant: Some(&variant.name), value: Some(&variant.value), reason }
            }
            Err(error) => Evaluation { variant: None, value: None, reason: Reason::Error(error) },
        }
    }

    /// Whether the flag serves `true` for this context. False for missing or non-boolean
    /// flags, and for the `dark` cohort of a dark launch.
    #[inline]
    pub fn is_enabled<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> bool {
        matches!(self.evaluate(flag, ctx).value, Some(Value::Bool(true)))
    }

    /// A boolean flag's value with the reason, or `default`.
    pub fn bool_detail<F: FlagRef + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: bool,
    ) -> Detail<'_, bool> {
        self.evaluate(flag, ctx).into_bool(default)
    }

    /// A string flag's value with the reason, or `default`.
    pub fn string_detail<'a, F: FlagRef + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> Detail<'a, &'a str> {
        self.evaluate(flag, ctx).into_string(default)
    }

    /// A number flag's value with the reason, or `default`.
    pub fn number_detail<F: FlagRef + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
        default: f64,
    ) -> Detail<'_, f64> {
        self.evaluate(flag, ctx).into_number(default)
    }

    /// A JSON flag's value with the reason, or `default`.
    pub fn json_detail<'a, F: FlagRef + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> Detail<'a, &'a serde_json::Value> {
        self.evaluate(flag, ctx).into_json(default)
    }

    /// A boolean flag's value, or `default` (missing flag, other type, error).
    pub fn bool_value<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>, default: bool) -> bool {
        self.bool_detail(flag, ctx, default).value
    }

    /// A string flag's value, or `default`.
    pub fn string_value<'a, F: FlagRef + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a str,
    ) -> &'a str {
        self.string_detail(flag, ctx, default).value
    }

    /// A number flag's value, or `default`.
    pub fn number_value<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>, default: f64) -> f64 {
        self.number_detail(flag, ctx, default).value
    }

    /// A JSON flag's value, or `default`.
    pub fn json_value<'a, F: FlagRef + ?Sized>(
        &'a self,
        flag: &F,
        ctx: &Context<'_>,
        default: &'a serde_json::Value,
    ) -> &'a serde_json::Value {
        self.json_detail(flag, ctx, default).value
    }
}
