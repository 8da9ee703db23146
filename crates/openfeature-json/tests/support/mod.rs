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

/// flagd's `fractional` v3 (ADR "fractional non-string randomisation units"): murmur3 of
/// the CBOR encoding (here ciborium's) of the bucketing value, or of the pair
/// `[flagKey, targetingKey]` when `fractional` has none; then `(hash * total) >> 32` over
/// the cumulative weights, as v2.
struct FractionalV3;

impl CustomOperator for FractionalV3 {
    fn evaluate<'a>(
        &self,
        args: &[&'a DataValue<'a>],
        ctx: &mut EvalContext<'_, 'a>,
        arena: &'a Bump,
    ) -> datalogic_rs::Result<&'a DataValue<'a>> {
        let text = |s: &str| ciborium::Value::Text(s.to_owned());
        let (value, weights) = match args.split_first() {
            Some((DataValue::String(bucketing), weights)) => (text(bucketing), weights),
            _ => {
                let root = ctx.root_input();
                let (Some(flag_key), Some(key)) =
                    (root["$flagd"]["flagKey"].as_str(), root["targetingKey"].as_str())
                else {
                    return Ok(arena.null());
                };
                (ciborium::Value::Array(vec![text(flag_key), text(key)]), args)
            }
        };
        let mut bytes = Vec::new();
        if ciborium::into_writer(&value, &mut bytes).is_err() {
            return Ok(arena.null());
        }
        let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(&bytes), 0).unwrap_or_default();
        let entries: Option<Vec<(&str, u64)>> = weights
            .iter()
            .map(|entry| {
                let entry = entry.as_array()?;
                Some((entry.first()?.as_str()?, u64::try_from(entry.get(1)?.as_i64()?).ok()?))
            })
            .collect();
        let Some(entries) = entries else { return Ok(arena.null()) };
        let total: u64 = entries.iter().map(|(_, weight)| weight).sum();
        let bucket = (u64::from(hash) * total) >> 32;
        let mut below = 0;
        for (variant, weight) in entries {
            below += weight;
            if bucket < below {
                return Ok(arena.string(variant));
            }
        }
        Ok(arena.null())
    }
}

/// The JSONLogic engine a flagd provider runs.
pub(crate) fn engine() -> Engine {
    Engine::builder()
        .add_operator("starts_with", Affix { starts: true })
        .add_operator("ends_with", Affix { starts: false })
        .build()
}

/// The engine of a provider that buckets by flagd-v3; evaluate with it a file passed
/// through [`as_v3`].
pub(crate) fn engine_v3() -> Engine {
    Engine::builder()
        .add_operator("starts_with", Affix { starts: true })
        .add_operator("ends_with", Affix { starts: false })
        .add_operator(FRACTIONAL_V3, FractionalV3)
        .build()
}

const FRACTIONAL_V3: &str = "fractional_v3";

/// `json` with every `fractional` naming [`FractionalV3`], so that the engine's own (v2)
/// operator is not the one that runs.
pub(crate) fn as_v3(json: &Json) -> Json {
    match json {
        Json::Object(object) => Json::Object(
            object
                .iter()
                .map(|(k, v)| {
                    (if k == "fractional" { FRACTIONAL_V3.to_owned() } else { k.clone() }, as_v3(v))
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(as_v3).collect()),
        other => other.clone(),
    }
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
    match answer(engine, file, key, targeting_key, attributes) {
        Ok(Answer::Variant(name)) => Some(name),
        _ => None,
    }
}

/// How a provider answers: with a variant, with the caller's default and no error (a flag
/// missing or disabled, no default variant), or with an error (a result naming no variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Variant(String),
    CallerDefault,
    Error,
}

impl Answer {
    /// The variant, `None` for the caller's default however it came.
    pub(crate) fn variant(self) -> Option<String> {
        match self {
            Answer::Variant(name) => Some(name),
            Answer::CallerDefault | Answer::Error => None,
        }
    }
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
    answer(engine, file, key, targeting_key, attributes).map(Answer::variant)
}

/// The provider's [`Answer`]; `Err` when the JSONLogic engine throws.
pub(crate) fn answer(
    engine: &Engine,
    file: &Json,
    key: &str,
    targeting_key: &str,
    attributes: &Map<String, Json>,
) -> Result<Answer, datalogic_rs::Error> {
    let Some(flag) = file["flags"].get(key) else { return Ok(Answer::CallerDefault) };
    if flag["state"] == "DISABLED" {
        return Ok(Answer::CallerDefault);
    }
    let Some(variants) = flag["variants"].as_object() else { return Ok(Answer::Error) };
    let default = match flag.get("defaultVariant").and_then(Json::as_str) {
        None => Answer::CallerDefault,
        Some(name) if variants.contains_key(name) => Answer::Variant(name.to_owned()),
        Some(_) => Answer::Error,
    };
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
        _ => return Ok(Answer::Error),
    };
    Ok(if variants.contains_key(&name) { Answer::Variant(name) } else { Answer::Error })
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
