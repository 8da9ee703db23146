//! `Admin.Evaluate`: one flag for one context, with the evaluator the SDKs run, so an
//! operator can ask "why did user 42 get this?" of the server's current state.

use flag_core::{AttrValue, Context, FlagSet, Reason, ValidationError};
use flag_proto::v1::{self, attribute_value, evaluation_reason::Kind};

/// Evaluates `key` in `set` (at `revision`) for the context of `request`. The stored set was
/// validated when written, so an error means a store that contradicts its own checks.
pub(crate) fn evaluate(
    set: FlagSet,
    revision: u64,
    key: &str,
    targeting_key: &str,
    attributes: &[(String, v1::AttributeValue)],
) -> Result<v1::EvaluateResponse, ValidationError> {
    let flag_version = set.flags.iter().find(|f| f.key == key).map_or(0, |f| f.version);
    let snapshot = set.compile()?;
    let attributes: Vec<(&str, AttrValue<'_>)> = attributes
        .iter()
        .filter_map(|(name, value)| {
            let value = match value.kind.as_ref()? {
                attribute_value::Kind::StringValue(s) => AttrValue::Str(s),
                attribute_value::Kind::NumberValue(n) => AttrValue::Number(*n),
                attribute_value::Kind::BoolValue(b) => AttrValue::Bool(*b),
            };
            Some((name.as_str(), value))
        })
        .collect();
    let context = Context::new(targeting_key).with_attributes(&attributes);
    let evaluation = snapshot.evaluate(key, &context);
    Ok(v1::EvaluateResponse {
        variant: evaluation.variant.unwrap_or_default().to_owned(),
        value: evaluation.value.map(v1::Value::from),
        reason: Some(reason(evaluation.reason)),
        flag_version,
        revision,
    })
}

fn reason(reason: Reason<'_>) -> v1::EvaluationReason {
    let of = |kind: Kind| v1::EvaluationReason { kind: kind as i32, ..Default::default() };
    match reason {
        Reason::Disabled => of(Kind::Disabled),
        Reason::TargetMatch { rule, bucket } => v1::EvaluationReason {
            rule: u32::try_from(rule).unwrap_or(u32::MAX),
            bucket,
            ..of(Kind::TargetMatch)
        },
        Reason::Split { bucket } => v1::EvaluationReason { bucket: Some(bucket), ..of(Kind::Split) },
        Reason::Default => of(Kind::Default),
        Reason::PrerequisiteFailed { prerequisite } => {
            v1::EvaluationReason { prerequisite: prerequisite.to_owned(), ..of(Kind::PrerequisiteFailed) }
        }
        Reason::FlagNotFound => of(Kind::FlagNotFound),
        Reason::Error(error) => v1::EvaluationReason { error: error.to_string(), ..of(Kind::Error) },
        // A reason added to flag-core later reads as an error until it is mapped here.
        other => v1::EvaluationReason { error: format!("{other:?}"), ..of(Kind::Error) },
    }
}

#[cfg(test)]
mod tests {
    use flag_core::Flag;

    use super::*;

    fn answer(set: FlagSet, key: &str, user: &str) -> v1::EvaluateResponse {
        evaluate(set, 7, key, user, &[]).unwrap()
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
}
