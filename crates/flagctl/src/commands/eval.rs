//! Evaluate a flag for a user on the server, with the reason.

use anyhow::Context as _;
use flag_core::AttrValue;
use flag_proto::{Answer, AnswerReason};
use serde::Serialize;

use crate::cli::EvalArgs;
use crate::connect::{Call, Server};
use crate::failure::Failure;
use crate::output::Output;
use crate::reads::MALFORMED;
use crate::render;

#[derive(Debug, Serialize)]
struct Evaluated {
    key: String,
    user: String,
    variant: String,
    value: serde_json::Value,
    reason: &'static str,
    rule: Option<u32>,
    bucket: Option<u32>,
    prerequisite: Option<String>,
    error: Option<String>,
    flag_version: u64,
    revision: u64,
}

pub(crate) async fn eval(server: &Server, out: &Output, args: EvalArgs) -> anyhow::Result<()> {
    let EvalArgs { key, user, attributes } = args;
    let mut named: Vec<(&str, AttrValue<'_>)> = Vec::with_capacity(attributes.len());
    for text in &attributes {
        let (name, value) = attribute(text)?;
        if named.iter().any(|(seen, _)| *seen == name) {
            return Err(Failure::Invalid(format!("--attr {name:?} is given twice")).into());
        }
        named.push((name, value));
    }
    let request = server.requests().evaluate(&key, &user, &named);
    let response = server
        .admin
        .clone()
        .evaluate(server.request(request))
        .await
        .called(server, &format!("evaluating {key}"))?;
    let Answer { variant, value, reason, flag_version, revision, .. } =
        Answer::try_from(response).context(MALFORMED)?;
    if reason == AnswerReason::FlagNotFound {
        return Err(Failure::NotFound(format!("no flag {key:?} in {}", server.environment)).into());
    }
    let value = render::value_json(value.as_ref());
    let evaluated = Evaluated {
        key,
        user,
        variant,
        value,
        reason: reason_name(&reason),
        rule: match reason {
            AnswerReason::TargetMatch { rule, .. } => Some(rule + 1),
            _ => None,
        },
        bucket: match reason {
            AnswerReason::TargetMatch { bucket, .. } | AnswerReason::Split { bucket } => bucket,
            _ => None,
        },
        prerequisite: match &reason {
            AnswerReason::PrerequisiteFailed { prerequisite } => Some(prerequisite.clone()),
            _ => None,
        },
        error: match &reason {
            AnswerReason::Error { error } => Some(error.clone()),
            _ => None,
        },
        flag_version,
        revision,
    };
    out.print(&evaluated, || {
        let why = explain(&reason, !evaluated.variant.is_empty());
        let Evaluated { key, user, variant, value, .. } = &evaluated;
        format!("{key} for {user}: {variant} = {value} ({why})")
    })
}

/// `name=value`: `true`/`false` are booleans, numbers are numbers, `str:` forces a string.
fn attribute(text: &str) -> Result<(&str, AttrValue<'_>), Failure> {
    let Some((name, raw)) = text.split_once('=').filter(|(name, _)| !name.is_empty()) else {
        return Err(Failure::Invalid(format!("--attr {text:?}: expected NAME=VALUE, e.g. country=NZ")));
    };
    let value = if let Some(forced) = raw.strip_prefix("str:") {
        AttrValue::Str(forced)
    } else if let Ok(flag) = raw.parse::<bool>() {
        AttrValue::Bool(flag)
    } else if let Some(number) = raw.parse::<f64>().ok().filter(|n| n.is_finite()) {
        AttrValue::Number(number)
    } else {
        AttrValue::Str(raw)
    };
    Ok((name, value))
}

fn reason_name(reason: &AnswerReason) -> &'static str {
    match reason {
        AnswerReason::Disabled => "disabled",
        AnswerReason::TargetMatch { .. } => "target_match",
        AnswerReason::Split { .. } => "split",
        AnswerReason::Default => "default",
        AnswerReason::PrerequisiteFailed { .. } => "prerequisite_failed",
        AnswerReason::FlagNotFound => "flag_not_found",
        AnswerReason::Error { .. } => "error",
        _ => "unknown",
    }
}

/// Why, in words; `served` is whether a variant was (not the caller's default).
fn explain(reason: &AnswerReason, served: bool) -> String {
    let off = if served { "its off variant" } else { "no off variant, so the caller's default" };
    // Of the split's total weight, which the answer does not carry (100 000 for percentages).
    let bucket = |b: Option<u32>| b.map(|b| format!("bucket {b}")).unwrap_or_default();
    match reason {
        AnswerReason::Disabled => format!("the flag is killed: {off}"),
        AnswerReason::TargetMatch { rule, bucket: Some(b) } => {
            format!("rule {} matched and split: {}", rule + 1, bucket(Some(*b)))
        }
        AnswerReason::TargetMatch { rule, bucket: None } => format!("rule {} matched", rule + 1),
        AnswerReason::Split { bucket: b } => format!("no rule matched; default split: {}", bucket(*b)),
        AnswerReason::Default => "no rule matched; the default".into(),
        AnswerReason::PrerequisiteFailed { prerequisite } => {
            format!("prerequisite {prerequisite:?} not met: {}", off.replacen("its", "the", 1))
        }
        AnswerReason::FlagNotFound => "no such flag".into(),
        AnswerReason::Error { error } => format!("evaluation failed: {error}"),
        _ => "no reason given".into(),
    }
}

#[cfg(test)]
mod tests {
    use flag_proto::attribute_to_proto;
    use flag_proto::v1::attribute_value;

    use super::*;

    fn kind_of(text: &str) -> attribute_value::Kind {
        attribute_to_proto(attribute(text).unwrap().1).kind.unwrap()
    }

    #[test]
    fn attributes_are_typed_as_a_person_would_expect() {
        use attribute_value::Kind::*;
        assert_eq!(kind_of("country=NZ"), StringValue("NZ".into()));
        assert_eq!(kind_of("age=42"), NumberValue(42.0));
        assert_eq!(kind_of("beta=true"), BoolValue(true));
        assert_eq!(kind_of("zip=str:0042"), StringValue("0042".into()));
        assert_eq!(kind_of("v=1.2.3"), StringValue("1.2.3".into()));
        assert!(matches!(attribute("novalue"), Err(Failure::Invalid(_))));
        assert!(matches!(attribute("=x"), Err(Failure::Invalid(_))));
    }
}
