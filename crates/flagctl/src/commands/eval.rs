//! Evaluate a flag for a user on the server, with the reason.

use std::collections::HashMap;

use flag_proto::v1::{self, attribute_value, evaluation_reason::Kind};
use serde::Serialize;

use super::Output;
use crate::cli::EvalArgs;
use crate::connect::{Call, Server};
use crate::failure::Failure;
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
    let mut named = HashMap::new();
    for text in &attributes {
        let (name, value) = attribute(text)?;
        if named.insert(name.clone(), value).is_some() {
            return Err(Failure::Invalid(format!("--attr {name:?} is given twice")).into());
        }
    }
    let request = v1::EvaluateRequest {
        environment: server.environment.clone(),
        key: key.clone(),
        targeting_key: user.clone(),
        attributes: named,
    };
    let v1::EvaluateResponse { variant, value, reason, flag_version, revision } = server
        .admin
        .clone()
        .evaluate(server.request(request))
        .await
        .called(server, &format!("evaluating {key}"))?;
    let reason = reason.unwrap_or_default();
    let kind = Kind::try_from(reason.kind).unwrap_or(Kind::Unspecified);
    if kind == Kind::FlagNotFound {
        return Err(Failure::NotFound(format!("no flag {key:?} in {}", server.environment)).into());
    }
    let value = render::proto_value(value.as_ref());
    let evaluated = Evaluated {
        key,
        user,
        variant,
        value,
        reason: reason_name(kind),
        rule: (kind == Kind::TargetMatch).then_some(reason.rule + 1),
        bucket: reason.bucket,
        prerequisite: (kind == Kind::PrerequisiteFailed).then(|| reason.prerequisite.clone()),
        error: (kind == Kind::Error).then(|| reason.error.clone()),
        flag_version,
        revision,
    };
    out.print(&evaluated, || {
        let why = explain(kind, &reason);
        let Evaluated { key, user, variant, value, .. } = &evaluated;
        format!("{key} for {user}: {variant} = {value} ({why})")
    })
}

/// `name=value`: `true`/`false` are booleans, numbers are numbers, `str:` forces a string.
fn attribute(text: &str) -> Result<(String, v1::AttributeValue), Failure> {
    let Some((name, raw)) = text.split_once('=').filter(|(name, _)| !name.is_empty()) else {
        return Err(Failure::Invalid(format!("--attr {text:?}: expected NAME=VALUE, e.g. country=NZ")));
    };
    let kind = if let Some(forced) = raw.strip_prefix("str:") {
        attribute_value::Kind::StringValue(forced.to_owned())
    } else if let Ok(flag) = raw.parse::<bool>() {
        attribute_value::Kind::BoolValue(flag)
    } else if let Some(number) = raw.parse::<f64>().ok().filter(|n| n.is_finite()) {
        attribute_value::Kind::NumberValue(number)
    } else {
        attribute_value::Kind::StringValue(raw.to_owned())
    };
    Ok((name.to_owned(), v1::AttributeValue { kind: Some(kind) }))
}

fn reason_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Disabled => "disabled",
        Kind::TargetMatch => "target_match",
        Kind::Split => "split",
        Kind::Default => "default",
        Kind::PrerequisiteFailed => "prerequisite_failed",
        Kind::FlagNotFound => "flag_not_found",
        Kind::Error => "error",
        Kind::Unspecified => "unknown",
    }
}

fn explain(kind: Kind, reason: &v1::EvaluationReason) -> String {
    let bucket =
        |b: Option<u32>| b.map(|b| format!("bucket {b} of {}", flag_core::TOTAL_WEIGHT)).unwrap_or_default();
    match kind {
        Kind::Disabled => "the flag is killed: its off variant".into(),
        Kind::TargetMatch if reason.bucket.is_some() => {
            format!("rule {} matched and split: {}", reason.rule + 1, bucket(reason.bucket))
        }
        Kind::TargetMatch => format!("rule {} matched", reason.rule + 1),
        Kind::Split => format!("no rule matched; default split: {}", bucket(reason.bucket)),
        Kind::Default => "no rule matched; the default".into(),
        Kind::PrerequisiteFailed => {
            format!("prerequisite {:?} not met: the off variant", reason.prerequisite)
        }
        Kind::FlagNotFound => "no such flag".into(),
        Kind::Error => format!("evaluation failed: {}", reason.error),
        Kind::Unspecified => "no reason given".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> attribute_value::Kind {
        attribute(text).unwrap().1.kind.unwrap()
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
