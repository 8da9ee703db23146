//! What an evaluation answers — the variant, its value and the reason — and the typed
//! readings of it that the getters share. Borrowed from the snapshot; [`OwnedDetail`] for
//! holders that cannot lend it.

use crate::value::{Value, ValueKind};

/// The answer for one flag and one context, borrowed from the snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<'s> {
    /// The variant served; `None` when the flag is missing, evaluation failed, or the flag
    /// serves the caller's default (a reason that is not an error says which).
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

/// Which of a snapshot's variants an evaluation served: a snapshot numbers every (flag,
/// variant) pair densely from 0, in the order of [`Snapshot::variants`](crate::Snapshot::variants).
/// A holder that keeps one figure per variant (the SDK counts evaluations) finds it in a
/// plain array by this number, with no lookup by name or address on the hot path. It means
/// something only for the snapshot that answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VariantIndex(pub(crate) u32);

impl VariantIndex {
    /// The position, below [`Snapshot::variant_count`](crate::Snapshot::variant_count).
    #[inline]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Why an evaluation answered as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason<'s> {
    /// The flag is killed (`enabled = false`): the off variant, or the caller's default for
    /// a flag without one.
    Disabled,
    /// Rule `rule` (0-based) matched; `bucket` is set when it served a split.
    TargetMatch {
        /// Index of the rule in the flag.
        rule: usize,
        /// The context's bucket (of the split's total weight, 100 000 for percentages) when
        /// the rule served a split.
        bucket: Option<u32>,
    },
    /// No rule matched and the default split placed the context in `bucket` (of the split's
    /// total weight, 100 000 for percentages).
    Split {
        /// The context's bucket.
        bucket: u32,
    },
    /// No rule matched; the default serves one variant, or the caller's default.
    Default,
    /// A prerequisite flag did not resolve to its required variant: the off variant, or the
    /// caller's default for a flag without one.
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

impl<T> Detail<'_, T> {
    /// The same answer borrowing nothing (the variant name and a failed prerequisite's key
    /// copied), its value made owned by `owned`.
    pub fn into_owned<U>(self, owned: impl FnOnce(T) -> U) -> OwnedDetail<U> {
        OwnedDetail {
            value: owned(self.value),
            variant: self.variant.map(str::to_owned),
            reason: self.reason.into(),
        }
    }
}

/// A [`Detail`] that borrows nothing, from holders whose snapshot may be gone once the call
/// returns (the SDK's `Client`, whose one load ends with the call). Making it costs an
/// allocation for the variant name: where that matters, ask a holder that lends its snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedDetail<T> {
    /// The value to use.
    pub value: T,
    /// The variant served, if one was.
    pub variant: Option<String>,
    /// Why.
    pub reason: OwnedReason,
}

/// A [`Reason`] that borrows nothing; see [`OwnedDetail`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedReason {
    /// [`Reason::Disabled`].
    Disabled,
    /// [`Reason::TargetMatch`].
    TargetMatch {
        /// Index of the rule in the flag.
        rule: usize,
        /// The context's bucket (of the split's total weight, 100 000 for percentages) when
        /// the rule served a split.
        bucket: Option<u32>,
    },
    /// [`Reason::Split`].
    Split {
        /// The context's bucket.
        bucket: u32,
    },
    /// [`Reason::Default`].
    Default,
    /// [`Reason::PrerequisiteFailed`].
    PrerequisiteFailed {
        /// Key of the first prerequisite that failed.
        prerequisite: String,
    },
    /// [`Reason::FlagNotFound`].
    FlagNotFound,
    /// [`Reason::Error`].
    Error(EvalError),
}

impl From<Reason<'_>> for OwnedReason {
    fn from(reason: Reason<'_>) -> Self {
        match reason {
            Reason::Disabled => OwnedReason::Disabled,
            Reason::TargetMatch { rule, bucket } => OwnedReason::TargetMatch { rule, bucket },
            Reason::Split { bucket } => OwnedReason::Split { bucket },
            Reason::Default => OwnedReason::Default,
            Reason::PrerequisiteFailed { prerequisite } => {
                OwnedReason::PrerequisiteFailed { prerequisite: prerequisite.to_owned() }
            }
            Reason::FlagNotFound => OwnedReason::FlagNotFound,
            Reason::Error(error) => OwnedReason::Error(error),
        }
    }
}
