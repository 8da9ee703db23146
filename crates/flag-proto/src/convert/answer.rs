//! `Admin.Evaluate` ⇄ flag-core: the context's attributes in, the evaluation and its reason
//! out, and back again for the operator's side.

use std::collections::HashMap;

use flag_core as core;

use super::{InvalidMessage, Path, value_from_proto, value_to_proto};
use crate::v1::{self, attribute_value, evaluation_reason::Kind};

/// A request's attributes as a context's: borrowed from the request, no copies.
pub fn attributes_from_proto(
    attributes: &HashMap<String, v1::AttributeValue>,
) -> Vec<(&str, core::AttrValue<'_>)> {
    attributes
        .iter()
        .filter_map(|(name, v1::AttributeValue { kind })| {
            let value = match kind.as_ref()? {
                attribute_value::Kind::StringValue(s) => core::AttrValue::Str(s),
                attribute_value::Kind::NumberValue(n) => core::AttrValue::Number(*n),
                attribute_value::Kind::BoolValue(b) => core::AttrValue::Bool(*b),
            };
            Some((name.as_str(), value))
        })
        .collect()
}

/// One attribute for a request.
pub fn attribute_to_proto(value: core::AttrValue<'_>) -> v1::AttributeValue {
    let kind = match value {
        core::AttrValue::Str(s) => attribute_value::Kind::StringValue(s.to_owned()),
        core::AttrValue::Number(n) => attribute_value::Kind::NumberValue(n),
        core::AttrValue::Bool(b) => attribute_value::Kind::BoolValue(b),
    };
    v1::AttributeValue { kind: Some(kind) }
}

/// The answer to `Admin.Evaluate`: `evaluation` of a flag at `flag_version`, in an
/// environment at `revision`.
pub fn evaluate_response(
    evaluation: &core::Evaluation<'_>,
    flag_version: u64,
    revision: u64,
) -> v1::EvaluateResponse {
    let core::Evaluation { variant, value, reason } = evaluation;
    v1::EvaluateResponse {
        variant: variant.unwrap_or_default().to_owned(),
        value: value.map(value_to_proto),
        reason: Some(reason_to_proto(reason)),
        flag_version,
        revision,
    }
}

fn reason_to_proto(reason: &core::Reason<'_>) -> v1::EvaluationReason {
    use core::Reason;
    let of = |kind: Kind| v1::EvaluationReason {
        kind: kind as i32,
        rule: 0,
        bucket: None,
        prerequisite: String::new(),
        error: String::new(),
    };
    match reason {
        Reason::Disabled => of(Kind::Disabled),
        Reason::TargetMatch { rule, bucket } => v1::EvaluationReason {
            rule: u32::try_from(*rule).unwrap_or(u32::MAX),
            bucket: *bucket,
            ..of(Kind::TargetMatch)
        },
        Reason::Split { bucket } => v1::EvaluationReason { bucket: Some(*bucket), ..of(Kind::Split) },
        Reason::Default => of(Kind::Default),
        Reason::PrerequisiteFailed { prerequisite } => {
            v1::EvaluationReason { prerequisite: (*prerequisite).to_owned(), ..of(Kind::PrerequisiteFailed) }
        }
        Reason::FlagNotFound => of(Kind::FlagNotFound),
        Reason::Error(error) => v1::EvaluationReason { error: error.to_string(), ..of(Kind::Error) },
        // A reason added to flag-core later reads as an error until it is mapped here.
        other => v1::EvaluationReason { error: format!("{other:?}"), ..of(Kind::Error) },
    }
}

/// Why the server's evaluation answered as it did, owned (flag-core's [`core::Reason`]
/// borrows from a snapshot, which a client does not hold).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AnswerReason {
    /// The flag is killed: its off variant.
    Disabled,
    /// Rule `rule` (0-based) matched; `bucket` is set when it served a split.
    TargetMatch {
        /// Index of the rule.
        rule: u32,
        /// The context's bucket of 100 000, when the rule served a split.
        bucket: Option<u32>,
    },
    /// No rule matched and the default split placed the context in `bucket`.
    Split {
        /// The context's bucket of 100 000.
        bucket: Option<u32>,
    },
    /// No rule matched; the default serves one variant.
    Default,
    /// A prerequisite did not resolve to its required variant.
    PrerequisiteFailed {
        /// The prerequisite flag.
        prerequisite: String,
    },
    /// No flag has the key.
    FlagNotFound,
    /// Evaluation failed.
    Error {
        /// What went wrong.
        error: String,
    },
    /// The server gave no reason (or one this client does not know).
    Unspecified,
}

/// The server's answer to `Admin.Evaluate`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Answer {
    /// The variant served; empty when none was.
    pub variant: String,
    /// Its value; `None` when none was served.
    pub value: Option<core::Value>,
    /// Why.
    pub reason: AnswerReason,
    /// The flag's version that was evaluated.
    pub flag_version: u64,
    /// The environment's revision that was evaluated.
    pub revision: u64,
}

impl TryFrom<v1::EvaluateResponse> for Answer {
    type Error = InvalidMessage;

    fn try_from(response: v1::EvaluateResponse) -> Result<Self, Self::Error> {
        let v1::EvaluateResponse { variant, value, reason, flag_version, revision } = response;
        let value = value.map(|value| value_from_proto(value, &Path::Root("value"))).transpose()?;
        let v1::EvaluationReason { kind, rule, bucket, prerequisite, error } = reason.unwrap_or_default();
        let reason = match Kind::try_from(kind).unwrap_or(Kind::Unspecified) {
            Kind::Disabled => AnswerReason::Disabled,
            Kind::TargetMatch => AnswerReason::TargetMatch { rule, bucket },
            Kind::Split => AnswerReason::Split { bucket },
            Kind::Default => AnswerReason::Default,
            Kind::PrerequisiteFailed => AnswerReason::PrerequisiteFailed { prerequisite },
            Kind::FlagNotFound => AnswerReason::FlagNotFound,
            Kind::Error => AnswerReason::Error { error },
            Kind::Unspecified => AnswerReason::Unspecified,
        };
        Ok(Answer { variant, value, reason, flag_version, revision })
    }
}

#[cfg(test)]
mod tests {
    use flag_core::{Flag, FlagSet};

    use super::*;

    fn answer(set: FlagSet, key: &str, user: &str) -> v1::EvaluateResponse {
        let snapshot = set.compile().unwrap();
        let evaluation = snapshot.evaluate(key, &core::Context::new(user));
        evaluate_response(&evaluation, 0, 7)
    }

    #[test]
    fn a_split_answers_with_the_bucket_of_the_reference_table() {
        let set = FlagSet { flags: vec![Flag::rollout("chat", 10.0).unwrap()], segments: vec![] };
        let response = answer(set.clone(), "chat", "user-1");
        assert_eq!(response.variant, "on");
        let reason = response.reason.unwrap();
        assert_eq!((reason.kind, reason.bucket), (Kind::Split as i32, Some(8328)));
        assert_eq!(response.revision, 7);
        let response = answer(set, "chat", "user-42");
        assert_eq!((response.variant.as_str(), response.reason.unwrap().bucket), ("off", Some(68275)));
    }

    #[test]
    fn a_missing_flag_says_so() {
        let response = answer(FlagSet::default(), "nope", "user-1");
        assert_eq!(response.reason.unwrap().kind, Kind::FlagNotFound as i32);
        assert!(response.value.is_none());
    }

    #[test]
    fn an_answer_reads_back_as_it_was_given() {
        let set = FlagSet { flags: vec![Flag::rollout("chat", 10.0).unwrap()], segments: vec![] };
        let answer = Answer::try_from(answer(set, "chat", "user-1")).unwrap();
        assert_eq!(answer.reason, AnswerReason::Split { bucket: Some(8328) });
        assert_eq!((answer.variant.as_str(), answer.value), ("on", Some(core::Value::Bool(true))));
    }
}
