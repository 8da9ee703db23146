//! An in-process flagd provider's evaluation, built on an independent JSONLogic engine
//! (datalogic-rs, whose `flagd` feature brings `fractional` and `sem_ver` as flagd's Go
//! evaluator defines them) plus flagd's `starts_with`/`ends_with` and flag-level rules.

#![allow(dead_code)]

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::operator::EvalContext;
use datalogic_rs::{ArenaExt, CustomOperator, DataValue, Engine};
use serde_json::{Map, Value as Json, json};

/// flagd's `starts_with`/`ends_with`: two strings, else `null`.
struct Affix {
    starts: bool,
}

impl CustomOperator for Affix {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        _ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        match (args, args.first().and_then(|a| a.as_str()), args.get(1).and_then(|a| a.as_str())) {
            ([_, _], Some(s), Some(affix)) => {
                Ok(arena.bool(if self.starts { s.starts_with(affix) } else { s.ends_with(affix) }))
            }
            _ => Ok(arena.null()),
        }
    }
}

/// The JSONLogic engine a flagd provider runs.
pub(crate) fn engine() -> Engine {
    Engine::builder()
        .add_operator("starts_with", Affix { starts: true })
        .add_operator("ends_with", Affix { starts: false })
        .build()
}

/// What a provider answers for `key`: the variant name, or `None` for the caller's
/// default (flag missing or disabled, no default variant, or an error).
pub(crate) fn evaluate(
    engine: &Engine,
    file: &Json,
    key: &str,
    targeting_key: &str,
    attributes: &Map<String, Json>,
) -> Option<String> {
    evaluate_or_throw(engine, file, key, targeting_key, attributes).unwrap_or(None)
}

/// [`evaluate`], telling apart the JSONLogic engine throwing (datalogic throws where
/// JavaScript's engine coerces to NaN, e.g. `2 == "gold"`): `Err` then.
pub(crate) fn evaluate_or_throw(
    engine: &Engine,
    file: &Json,
    key: &str,
    targeting_key: &str,
    attributes: &Map<String, Json>,
) -> Result<Option<String>, datalogic_rs::Error> {
    let Some(flag) = file["flags"].get(key) else { return Ok(None) };
    if flag["state"] == "DISABLED" {
        return Ok(None);
    }
    let Some(variants) = flag["variants"].as_object() else { return Ok(None) };
    let default = flag.get("defaultVariant").and_then(Json::as_str).map(str::to_owned);
    let targeting = match flag.get("targeting") {
        None | Some(Json::Null) => return Ok(default),
        Some(targeting) => substitute_refs(targeting, &file["$evaluators"]),
    };
    let mut data = attributes.clone();
    data.insert("targetingKey".into(), Json::String(targeting_key.into()));
    data.insert("$flagd".into(), json!({ "flagKey": key, "timestamp": 0 }));
    let result: Json = engine.eval_into(&targeting, &Json::Object(data))?;
    let name = match result {
        Json::Null => return Ok(default),
        Json::String(name) => name,
        Json::Bool(b) => b.to_string(),
        _ => return Ok(None),
    };
    Ok(variants.contains_key(&name).then_some(name))
}

/// flagd replaces each `{"$ref": name}` by the evaluator's JSON before evaluating.
pub(crate) fn substitute_refs(json: &Json, evaluators: &Json) -> Json {
    match json {
        Json::Object(object) => {
            if let (1, Some(Json::String(name))) = (object.len(), object.get("$ref")) {
                return evaluators.get(name).cloned().unwrap_or(Json::Null);
            }
            Json::Object(object.iter().map(|(k, v)| (k.clone(), substitute_refs(v, evaluators))).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(|v| substitute_refs(v, evaluators)).collect()),
        other => other.clone(),
    }
}
