//! Import: a flagd flag file as our flag set, flag by flag; what has no exact translation
//! is refused with its JSON Pointer and why, and the rest is imported.
//!
//! flagd's meanings come along: `state`, `defaultVariant`, `targeting` (see `targeting`),
//! `$evaluators` as segments (a `$ref` becomes `in_segment`), and of a flag's `metadata`
//! the fields we have (`owner`, `tags` as a comma-separated string, `kind`). Other metadata
//! and the flag set's own metadata have no field here and are not kept.

mod atom;
mod condition;
mod operators;
mod path;
mod targeting;

use std::collections::BTreeMap;

use flag_core::{Flag, FlagKind, FlagSet, Metadata, Segment, SegmentRule, Variant};
use serde_json::{Map, Value as Json};

use condition::{Evaluators, parse};
pub use path::Refusal;
use path::at;
use targeting::{FlagCx, rules};

/// A flagd file as our flag set, and what of it was not imported.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The flags (in the file's key order) and the segments the evaluators became.
    pub set: FlagSet,
    /// Every refused flag or part of the file, each with its JSON Pointer.
    pub refused: Vec<Refusal>,
}

/// Reads a flagd flag file: `flags` as a map (or flagd's list with `key`s), `$evaluators`,
/// `metadata`, `$schema`.
pub fn from_flagd(json: &Json) -> Imported {
    let mut refused = Vec::new();
    let mut set = FlagSet::default();
    let Some(file) = json.as_object() else {
        refused.push(Refusal { path: String::new(), why: "a flagd file is a JSON object".into() });
        return Imported { set, refused };
    };
    for key in file.keys() {
        if !matches!(key.as_str(), "$schema" | "flags" | "$evaluators" | "metadata") {
            refused.push(Refusal { path: at("", key), why: "not a field of flagd files".into() });
        }
    }
    let empty = Map::new();
    let evaluator_json = file.get("$evaluators").and_then(Json::as_object).unwrap_or(&empty);
    let mut evaluators: Evaluators<'_> = BTreeMap::new();
    for (name, definition) in evaluator_json {
        let path = at("/$evaluators", name);
        let segment = evaluator(name, definition, &path);
        evaluators.insert(name.as_str(), segment.as_ref().map(|_| ()).map_err(|r| r.why.clone()));
        if let Ok(segment) = segment {
            set.segments.push(segment);
        }
    }
    let flags: Vec<(String, &Json, String)> = match file.get("flags") {
        Some(Json::Object(flags)) => flags.iter().map(|(k, f)| (k.clone(), f, at("/flags", k))).collect(),
        Some(Json::Array(flags)) => flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let key = f.get("key").and_then(Json::as_str).unwrap_or_default().to_owned();
                (key, f, at("/flags", &i.to_string()))
            })
            .collect(),
        _ => {
            refused.push(Refusal { path: "/flags".into(), why: "expected an object of flags".into() });
            vec![]
        }
    };
    for (key, definition, path) in flags {
        match flag(&key, definition, &path, &evaluators)
            .and_then(|f| check(f, &set.segments).map_err(|why| Refusal { path: path.clone(), why }))
        {
            Ok(flag) => set.flags.push(flag),
            Err(refusal) => refused.push(refusal),
        }
    }
    Imported { set, refused }
}

/// The flag must be valid on its own (with the segments it may use).
fn check(flag: Flag, segments: &[Segment]) -> Result<Flag, String> {
    let alone = FlagSet { flags: vec![flag], segments: segments.to_vec() };
    alone.validate().map_err(|e| e.to_string())?;
    alone.flags.into_iter().next().ok_or_else(|| "lost".into())
}

fn evaluator(name: &str, definition: &Json, path: &str) -> Result<Segment, Refusal> {
    let alternatives =
        parse(definition, path, None)?.to_dnf(false).map_err(|why| Refusal { path: path.to_owned(), why })?;
    Ok(Segment {
        key: name.to_owned(),
        description: String::new(),
        included: vec![],
        excluded: vec![],
        rules: alternatives.into_iter().map(|clauses| SegmentRule { clauses }).collect(),
    })
}

fn flag(key: &str, definition: &Json, path: &str, evaluators: &Evaluators<'_>) -> Result<Flag, Refusal> {
    let refuse = |field: &str, why: String| Refusal { path: at(path, field), why };
    let Some(definition) = definition.as_object() else {
        return Err(Refusal { path: path.to_owned(), why: "a flag is a JSON object".into() });
    };
    for field in definition.keys() {
        if !matches!(
            field.as_str(),
            "key" | "state" | "variants" | "defaultVariant" | "targeting" | "metadata"
        ) {
            return Err(refuse(field, "not a field of flagd flags".into()));
        }
    }
    let Some(Json::Object(variant_json)) = definition.get("variants") else {
        return Err(refuse("variants", "expected an object of variants".into()));
    };
    let mut variants = Vec::with_capacity(variant_json.len());
    for (name, value) in variant_json {
        let value =
            value.clone().try_into().map_err(|why: String| refuse(&format!("variants/{name}"), why))?;
        variants.push(Variant { name: name.clone(), value });
    }
    // DISABLED serves the caller's default: a killed flag without an off variant.
    let enabled = match definition.get("state").and_then(Json::as_str) {
        Some("ENABLED") => true,
        Some("DISABLED") => false,
        _ => return Err(refuse("state", "expected ENABLED or DISABLED".into())),
    };
    let default = match definition.get("defaultVariant") {
        None | Some(Json::Null) => None,
        Some(Json::String(name)) => Some(name.as_str()),
        Some(_) => return Err(refuse("defaultVariant", "expected a variant name or null".into())),
    };
    let cx =
        FlagCx { key, variants: variants.iter().map(|v| v.name.as_str()).collect(), default, evaluators };
    let (rules, default) =
        rules(definition.get("targeting").unwrap_or(&Json::Null), &at(path, "targeting"), &cx)?;
    let metadata = metadata(definition.get("metadata"), path)?;
    Ok(Flag {
        key: key.to_owned(),
        description: String::new(),
        variants,
        enabled,
        // Killing an imported flag serves the caller's default, as flagd's DISABLED does.
        off_variant: None,
        rules,
        default,
        prerequisites: vec![],
        version: 0,
        metadata,
    })
}

fn metadata(json: Option<&Json>, path: &str) -> Result<Metadata, Refusal> {
    let mut metadata = Metadata::default();
    let Some(json) = json else { return Ok(metadata) };
    let Some(fields) = json.as_object() else {
        return Err(Refusal { path: at(path, "metadata"), why: "expected an object".into() });
    };
    if let Some(owner) = fields.get("owner").and_then(Json::as_str) {
        metadata.owner = owner.to_owned();
    }
    if let Some(tags) = fields.get("tags").and_then(Json::as_str) {
        metadata.tags = tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    }
    if let Some(kind) = fields.get("kind") {
        metadata.kind = serde_json::from_value::<FlagKind>(kind.clone()).map_err(|_| Refusal {
            path: at(&at(path, "metadata"), "kind"),
            why: "expected release, experiment, operational or permission".into(),
        })?;
    }
    Ok(metadata)
}
