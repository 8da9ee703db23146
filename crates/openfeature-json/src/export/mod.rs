//! Export: a flag set as flagd's flag JSON, each flag meaning exactly what it means to our
//! evaluator, or left out.
//!
//! A flag that cannot be written exactly (a `regex` or date clause, an attribute name `var`
//! cannot read, a segment or prerequisite that cannot be written) is left out of `flags`, so
//! an in-process provider answers `FLAG_NOT_FOUND` — the caller's default, never a wrong
//! value — and is named in `left_out` and in the top-level metadata (`flagsLeftOut`).
//! One case is answered with an error instead, also the caller's default: a string where a
//! number clause is about to read a number (see `numbers`).

mod clause;
mod expr;
mod numbers;
mod segments;
mod serve;

use std::collections::{BTreeMap, HashMap};

use flag_core::{Clause, Flag, FlagSet, Metadata, Operator, Prerequisite, Rule, Segment, Serve};
use serde_json::{Map, Value as Json, json};

use numbers::ReadAsNumbers;
pub use serve::NO_VARIANT;

/// The schema flagd files name; providers ignore it, editors validate with it.
pub const FLAGD_SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

/// How deep prerequisites may nest before a flag is left out (compilation refuses cycles;
/// this bounds the size of the inlined expression).
const MAX_PREREQUISITE_DEPTH: usize = 8;

/// The flagd JSON of a flag set, and the flags it leaves out.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    /// `{"$schema", "$evaluators", "flags", "metadata"?}`, every object's keys sorted, so the
    /// same set always gives the same bytes.
    pub json: Json,
    /// The flags not in `json`, by key, each with the reason.
    pub left_out: Vec<LeftOut>,
}

/// A flag that has no exact flagd form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    /// The flag's key.
    pub flag: String,
    /// Which part of it cannot be written, and why.
    pub why: String,
}

/// Writes a flag set as flagd flag JSON. The set is expected to be valid
/// ([`FlagSet::validate`]); flags are exported in key order.
pub fn to_flagd(set: &FlagSet) -> Exported {
    let segments: BTreeMap<&str, Result<Json, String>> =
        set.segments.iter().map(|s| (s.key.as_str(), segments::evaluator(s))).collect();
    let definitions: HashMap<&str, &Segment> = set.segments.iter().map(|s| (s.key.as_str(), s)).collect();
    let by_key: HashMap<&str, &Flag> = set.flags.iter().map(|f| (f.key.as_str(), f)).collect();
    let cx = Cx { segments: &segments, definitions: &definitions, flags: &by_key };

    let mut sorted: Vec<&Flag> = set.flags.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut flags = Map::new();
    let mut left_out = Vec::new();
    for flag in sorted {
        match cx.flag(flag) {
            Ok(json) => {
                flags.insert(flag.key.clone(), json);
            }
            Err(why) => left_out.push(LeftOut { flag: flag.key.clone(), why }),
        }
    }
    let evaluators: Map<String, Json> = segments
        .iter()
        .filter_map(|(key, evaluator)| evaluator.as_ref().ok().map(|e| ((*key).to_owned(), e.clone())))
        .collect();
    let mut json = json!({ "$schema": FLAGD_SCHEMA, "$evaluators": evaluators, "flags": flags });
    if !left_out.is_empty() {
        let keys: Vec<&str> = left_out.iter().map(|l| l.flag.as_str()).collect();
        json["metadata"] = json!({ "flagsLeftOut": keys.join(",") });
    }
    Exported { json, left_out }
}

/// What exporting one flag looks up.
struct Cx<'a> {
    segments: &'a BTreeMap<&'a str, Result<Json, String>>,
    definitions: &'a HashMap<&'a str, &'a Segment>,
    flags: &'a HashMap<&'a str, &'a Flag>,
}

impl<'a> Cx<'a> {
    fn flag(&self, flag: &'a Flag) -> Result<Json, String> {
        let variants: Map<String, Json> =
            flag.variants.iter().map(|v| (v.name.clone(), Json::from(v.value.clone()))).collect();
        let mut out =
            json!({ "state": "ENABLED", "variants": variants, "metadata": metadata(&flag.metadata) });
        if !flag.enabled {
            // flagd's own convention for a switched-off flag, so an in-process provider
            // reports the kill as `DISABLED` (and serves the caller's default, where our
            // SDK, RPC and OFREP serve the off variant). The off variant is kept as the
            // default variant, which flagd does not read while the flag is disabled.
            out["state"] = Json::String("DISABLED".into());
            let kept = flag.off_variant.as_ref().or(match &flag.default {
                Serve::Variant(default) => Some(default),
                _ => None,
            });
            if let Some(kept) = kept {
                out["defaultVariant"] = Json::String(kept.clone());
            }
            return Ok(out);
        }
        let default = match &flag.default {
            Serve::Variant(variant) => Some(variant),
            // Never used: a split always answers a variant (or an error).
            Serve::Split(_) => flag.off_variant.as_ref(),
            // Absent: flagd then answers the caller's default for `null`.
            Serve::CallerDefault => None,
        };
        if let Some(default) = default {
            out["defaultVariant"] = Json::String(default.clone());
        }
        let targeting = self.resolution(flag, 0, true)?;
        if !targeting.is_null() {
            out["targeting"] = targeting;
        }
        Ok(out)
    }

    /// The expression a flag resolves to: its variant's name, or [`NO_VARIANT`] where ours
    /// answers an error. With `default_as_null`, the default variant is `null` (flagd then
    /// serves `defaultVariant`, with reason `DEFAULT`), and a flag that only serves its
    /// default has no expression at all (`null`).
    /// A rule with number clauses is preceded by "any attribute they read is a string →
    /// [`NO_VARIANT`]" (see `numbers`), and so are prerequisites whose rules have them.
    fn resolution(&self, flag: &'a Flag, depth: usize, default_as_null: bool) -> Result<Json, String> {
        let off = Json::String(flag.off_variant.clone().unwrap_or_else(|| NO_VARIANT.into()));
        if !flag.enabled {
            return Ok(off);
        }
        let mut chain = Vec::with_capacity(flag.rules.len() * 2 + 1);
        for (i, Rule { description: _, clauses, serve }) in flag.rules.iter().enumerate() {
            let mut all = Vec::with_capacity(clauses.len());
            for (j, c) in clauses.iter().enumerate() {
                all.push(self.clause(c).map_err(|why| format!("rules[{i}].clauses[{j}]: {why}"))?);
            }
            let mut read_as_numbers = ReadAsNumbers::default();
            read_as_numbers.clauses(clauses, self.definitions);
            if let Some(any_string) = read_as_numbers.any_string() {
                chain.extend([any_string, Json::String(NO_VARIANT.into())]);
            }
            chain.push(expr::and(all));
            chain.push(
                serve::serve(serve, &flag.key, depth > 0)
                    .map_err(|why| format!("rules[{i}].serve: {why}"))?,
            );
        }
        let default = match &flag.default {
            Serve::Variant(_) | Serve::CallerDefault if default_as_null => Json::Null,
            other => serve::serve(other, &flag.key, depth > 0).map_err(|why| format!("default: {why}"))?,
        };
        let mut resolved = if chain.is_empty() {
            default
        } else {
            chain.push(default);
            json!({ "if": chain })
        };
        if !flag.prerequisites.is_empty() {
            let mut hold = Vec::with_capacity(flag.prerequisites.len());
            for (i, Prerequisite { flag: required, variant }) in flag.prerequisites.iter().enumerate() {
                let required = self
                    .flags
                    .get(required.as_str())
                    .ok_or_else(|| format!("prerequisites[{i}]: no flag {required:?} in the set"))?;
                if depth >= MAX_PREREQUISITE_DEPTH {
                    return Err(format!("prerequisites nest deeper than {MAX_PREREQUISITE_DEPTH}"));
                }
                let theirs = self
                    .resolution(required, depth + 1, false)
                    .map_err(|why| format!("prerequisites[{i}] (flag {:?}): {why}", required.key))?;
                hold.push(json!({ "===": [theirs, variant] }));
            }
            let mut read_as_numbers = ReadAsNumbers::default();
            for required in flag.prerequisites.iter().filter_map(|p| self.flags.get(p.flag.as_str())) {
                read_as_numbers.flag(required, self.flags, self.definitions, MAX_PREREQUISITE_DEPTH);
            }
            resolved = match read_as_numbers.any_string() {
                None => json!({ "if": [expr::and(hold), resolved, off] }),
                Some(any_string) => json!({ "if": [any_string, NO_VARIANT, expr::and(hold), resolved, off] }),
            };
        }
        Ok(resolved)
    }

    fn clause(&self, c: &Clause) -> Result<Json, String> {
        if c.op == Operator::InSegment {
            for segment in &c.values {
                match self.segments.get(segment.0.as_str()) {
                    Some(Ok(_)) => {}
                    Some(Err(why)) => return Err(format!("segment {:?}: {why}", segment.0)),
                    None => return Err(format!("no segment {:?} in the set", segment.0)),
                }
            }
        }
        clause::clause(c)
    }
}

/// What providers can show of our metadata: flagd metadata values are strings, numbers or
/// bools, so tags travel as one comma-separated string.
fn metadata(metadata: &Metadata) -> Json {
    let Metadata { owner, tags, kind, created_at: _, updated_at: _ } = metadata;
    let mut out = Map::new();
    out.insert("kind".into(), serde_json::to_value(kind).unwrap_or(Json::Null));
    if !owner.is_empty() {
        out.insert("owner".into(), Json::String(owner.clone()));
    }
    if !tags.is_empty() {
        out.insert("tags".into(), Json::String(tags.join(",")));
    }
    Json::Object(out)
}
