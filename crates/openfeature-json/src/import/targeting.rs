//! A flag's `targeting` as our rules: `if` chains flattened in order, each condition's
//! alternatives a rule, results as serves (a variant, `null` for the default, `fractional`).
//!
//! `if [c1, r1, c2, r2, …, else]` tries `c1`, then `c2`…: with first-match-wins rules that
//! is `c1 → r1, c2 → r2, …, → else`, and a nested `if` in a result extends its conditions.

use flag_core::{
    Bucketing, Clause, MAX_TOTAL_WEIGHT, Operator, Rule, Serve, Split, Weight, bucket_of, murmur3_32,
};
use serde_json::Value as Json;

use super::atom::Atom;
use super::condition::{Evaluators, parse};
use super::operators::attribute;
use super::path::{Refusal, at};

/// How many rules one flag may flatten to before it is refused.
const MAX_RULES: usize = 1000;

/// What translating one flag's targeting looks up.
pub(crate) struct FlagCx<'a> {
    pub(crate) key: &'a str,
    pub(crate) variants: Vec<&'a str>,
    pub(crate) default: Option<&'a str>,
    pub(crate) evaluators: &'a Evaluators<'a>,
}

/// The rules and the default serve that `targeting` means.
pub(crate) fn rules(targeting: &Json, path: &str, cx: &FlagCx<'_>) -> Result<(Vec<Rule>, Serve), Refusal> {
    let mut out = Vec::new();
    tree(targeting, &[], path, cx, &mut out)?;
    // The outermost `else` (or its absence, `null`) always ends in a rule without clauses;
    // anything after the first such rule is never reached.
    let Some(last) = out.iter().position(|r| r.clauses.is_empty()) else {
        return Err(Refusal { path: path.to_owned(), why: "targeting has no final result".into() });
    };
    out.truncate(last + 1);
    let default = out.pop().map(|r| r.serve);
    Ok((out, default.unwrap_or_else(|| Serve::Variant(String::new()))))
}

fn tree(
    expr: &Json,
    prefix: &[Clause],
    path: &str,
    cx: &FlagCx<'_>,
    out: &mut Vec<Rule>,
) -> Result<(), Refusal> {
    let refuse = |why: String| Refusal { path: path.to_owned(), why };
    if out.len() > MAX_RULES {
        return Err(refuse(format!("targeting flattens to more than {MAX_RULES} rules")));
    }
    let mut leaf =
        |clauses: Vec<Clause>, serve: Serve| out.push(Rule { description: String::new(), clauses, serve });
    match expr {
        Json::Null => leaf(prefix.to_vec(), default(cx).map_err(refuse)?),
        Json::String(name) => leaf(prefix.to_vec(), variant(cx, name).map_err(refuse)?),
        // flagd reads `true`/`false` results as the variants named so.
        Json::Bool(b) => leaf(prefix.to_vec(), variant(cx, &b.to_string()).map_err(refuse)?),
        Json::Object(object) if object.len() == 1 && object.contains_key("if") => {
            let here = at(path, "if");
            let Some(Json::Array(args)) = object.get("if") else {
                return Err(Refusal { path: here, why: "expected a list".into() });
            };
            if args.len() < 2 {
                return Err(Refusal { path: here, why: "expected a condition and a result".into() });
            }
            for i in (0..args.len() - 1).step_by(2) {
                let condition = parse(&args[i], &at(&here, &i.to_string()), Some(cx.evaluators))?;
                let alternatives = condition
                    .to_dnf(false)
                    .map_err(|why| Refusal { path: at(&here, &i.to_string()), why })?;
                for all in alternatives {
                    let clauses: Vec<Clause> = prefix.iter().chain(&all).cloned().collect();
                    tree(&args[i + 1], &clauses, &at(&here, &(i + 1).to_string()), cx, out)?;
                }
            }
            if args.len() % 2 == 1 {
                tree(&args[args.len() - 1], prefix, &at(&here, &(args.len() - 1).to_string()), cx, out)?;
            } else {
                out.push(Rule {
                    description: String::new(),
                    clauses: prefix.to_vec(),
                    serve: default(cx).map_err(refuse)?,
                });
            }
        }
        Json::Object(object) if object.len() == 1 && object.contains_key("fractional") => {
            let here = at(path, "fractional");
            let serves = fractional(&object["fractional"], cx).map_err(|why| Refusal { path: here, why })?;
            for (extra, serve) in serves {
                leaf(prefix.iter().chain(&extra).cloned().collect(), serve);
            }
        }
        _ => {
            return Err(refuse(
                "a result must be a variant name, null, `if` or `fractional` (a condition as the result \
                 — flagd's bool shorthand — can answer null, which our rules cannot say)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// `null`: the default variant, or with none the caller's default.
fn default(cx: &FlagCx<'_>) -> Result<Serve, String> {
    Ok(cx.default.map_or(Serve::CallerDefault, |d| Serve::Variant(d.to_owned())))
}

/// A variant name; flagd answers one the flag does not have with an error, so the caller's
/// default.
fn variant(cx: &FlagCx<'_>, name: &str) -> Result<Serve, String> {
    Ok(if cx.variants.contains(&name) { Serve::Variant(name.to_owned()) } else { Serve::CallerDefault })
}

/// flagd's `fractional` as a split, with the rules that come first where flagd buckets a
/// context our split would refuse (a missing, bool or number `by` attribute).
fn fractional(args: &Json, cx: &FlagCx<'_>) -> Result<Vec<(Vec<Clause>, Serve)>, String> {
    let Json::Array(args) = args else { return Err("expected a list".into()) };
    let (bucketing, buckets) = match args.split_first() {
        Some((first, rest)) if !first.is_array() => (Some(first), rest),
        _ => (None, &args[..]),
    };
    let mut weights = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let (name, weight) = match bucket.as_array().map(Vec::as_slice) {
            Some([Json::String(name)]) => (name, 1),
            Some([Json::String(name), weight]) => {
                let weight = weight.as_u64().filter(|w| *w <= i64::MAX as u64).ok_or_else(|| {
                    format!("the weight of {name:?} is not a whole number ≥ 0 (providers round others differently)")
                })?;
                (name, weight as i64)
            }
            _ => return Err("expected buckets like [\"variant\", weight]".into()),
        };
        if !cx.variants.contains(&name.as_str()) {
            return Err(format!("no variant {name:?} in the flag"));
        }
        weights.push(Weight { variant: name.clone(), weight });
    }
    let total: i64 = weights.iter().map(|w| w.weight).sum();
    if total <= 0 || total > i64::from(MAX_TOTAL_WEIGHT) {
        return Err(format!("the weights total {total}; a split's total is 1 to {MAX_TOTAL_WEIGHT}"));
    }
    let pick = |bucketing: &str| -> Serve {
        let bucket = i64::from(bucket_of(murmur3_32(bucketing.as_bytes()), total as u32));
        let mut upper = 0;
        let chosen = weights.iter().find(|w| {
            upper += w.weight;
            bucket < upper
        });
        Serve::Variant(chosen.map(|w| w.variant.clone()).unwrap_or_default())
    };
    let split = |by: Option<String>, salt: Option<String>| {
        Serve::Split(Split { by, salt, weights: weights.clone(), bucketing: Bucketing::FlagdV2 })
    };
    let Some(bucketing) = bucketing else {
        // flagd hashes flagKey ++ targetingKey: our split's default salt and key.
        return Ok(vec![(vec![], split(None, None))]);
    };
    let cat = bucketing.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("cat"));
    if let Some(Json::Array(parts)) = cat {
        let [salt, key] = parts.as_slice() else { return Err("expected `cat` of a salt and a `var`".into()) };
        let salt = match salt {
            Json::String(salt) => salt.clone(),
            s if s == &serde_json::json!({ "var": "$flagd.flagKey" }) => cx.key.to_owned(),
            _ => return Err("expected a string or `$flagd.flagKey` as the salt".into()),
        };
        let attribute = key
            .get("var")
            .ok_or("expected a `var` after the salt")
            .and_then(|a| attribute(a).map_err(|_| "a `var` that our attributes cannot name"))?;
        let salt_field = (salt != cx.key).then(|| salt.clone());
        if attribute == flag_core::KEY_ATTRIBUTE {
            return Ok(vec![(vec![], split(None, salt_field))]);
        }
        // `cat` writes a missing field as "" and a bool as its name; our split refuses those.
        let atom = Atom::never(&attribute);
        let not_string = Clause { negate: true, ..atom.clause(Operator::StartsWith, &[""]) };
        return Ok(vec![
            (vec![Clause { negate: true, ..atom.clause(Operator::Exists, &[]) }], pick(&salt)),
            (vec![atom.clause(Operator::In, &["true"]), not_string.clone()], pick(&format!("{salt}true"))),
            (vec![atom.clause(Operator::In, &["false"]), not_string], pick(&format!("{salt}false"))),
            (vec![], split(Some(attribute), salt_field)),
        ]);
    }
    Err("expected no bucketing expression, or `cat` of a salt and a `var`".into())
}
