//! Segments as flagd `$evaluators`, which `in_segment` clauses name with `{"$ref": key}`.
//!
//! A context is in a segment when its key is included; otherwise not when it is excluded;
//! otherwise when every clause of some rule holds.

use flag_core::{KEY_ATTRIBUTE, Segment, SegmentRule};
use serde_json::{Value as Json, json};

use super::clause::clause;
use super::expr::{and, not, or, var};

/// The membership condition of a segment, or why it has none that is exact.
pub(crate) fn evaluator(segment: &Segment) -> Result<Json, String> {
    let Segment { key: _, description: _, included, excluded, rules } = segment;
    let mut by_rules = Vec::with_capacity(rules.len());
    for (i, SegmentRule { clauses }) in rules.iter().enumerate() {
        let mut all = Vec::with_capacity(clauses.len());
        for (j, c) in clauses.iter().enumerate() {
            all.push(clause(c).map_err(|why| format!("rules[{i}].clauses[{j}]: {why}"))?);
        }
        by_rules.push(and(all));
    }
    let key = var(KEY_ATTRIBUTE);
    let mut otherwise = Vec::with_capacity(2);
    if !excluded.is_empty() {
        otherwise.push(not(json!({ "in": [key, excluded] })));
    }
    otherwise.push(or(by_rules));
    let mut member = Vec::with_capacity(2);
    if !included.is_empty() {
        member.push(json!({ "in": [key, included] }));
    }
    member.push(and(otherwise));
    Ok(or(member))
}
