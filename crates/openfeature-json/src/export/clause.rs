//! One clause as a JSONLogic condition with exactly our meaning.
//!
//! Our rules: a clause on a missing attribute never holds, negated or not (except `exists`);
//! an attribute of the wrong type does not match (so a negated clause holds for it). So a
//! clause is `present ∧ (match ≠ negate)`, where `match` is false for every wrong type —
//! which the type guards of `expr` make so whatever JSONLogic would coerce. Number clauses
//! compare numbers only; a string attribute they read is answered before them (`numbers`).

use flag_core::{Clause, KEY_ATTRIBUTE, Literal, Operator};
use serde_json::{Value as Json, json};

use super::expr::{and, is_number, is_string, not, number, or, present, unreadable_attribute, var};

/// A clause as a condition, or why it has none that means exactly the same.
pub(crate) fn clause(clause: &Clause) -> Result<Json, String> {
    let Clause { attribute, op, values, negate } = clause;
    if *op == Operator::InSegment {
        // Membership does not read the attribute, so there is no missing case to guard.
        let member = or(values.iter().map(|segment| json!({ "$ref": segment.0 })).collect());
        return Ok(if *negate { not(member) } else { member });
    }
    if let Some(why) = unreadable_attribute(attribute) {
        return Err(why);
    }
    if is_number_operator(*op) && attribute == KEY_ATTRIBUTE {
        // The targeting key is always a string, which `numbers` never compares.
        return Err("a number clause on the targeting key compares a string as a number".into());
    }
    let x = var(attribute);
    if *op == Operator::Exists {
        let there = present(&x);
        return Ok(if *negate { not(there) } else { there });
    }
    // `not_in` is `in` negated, as in our compiler.
    let (op, negate) = match op {
        Operator::NotIn => (Operator::In, !*negate),
        op => (*op, *negate),
    };
    let matched = matcher(op, &x, values)?;
    Ok(and(vec![present(&x), if negate { not(matched) } else { matched }]))
}

/// Whether a present attribute matches any of the values, false for every wrong type.
fn matcher(op: Operator, x: &Json, values: &[Literal]) -> Result<Json, String> {
    let each = |build: &dyn Fn(&str) -> Json| or(values.iter().map(|v| build(&v.0)).collect());
    Ok(match op {
        Operator::In => json!({ "in": [x, in_list(values)] }),
        // flagd's string operators answer null (no match) for anything but two strings.
        Operator::StartsWith => each(&|v| json!({ "starts_with": [x, v] })),
        Operator::EndsWith => each(&|v| json!({ "ends_with": [x, v] })),
        Operator::Contains => and(vec![is_string(x), each(&|v| json!({ "in": [v, x] }))]),
        // A string never reaches these: the rule is preceded by the check of `numbers`.
        Operator::NumberEq => numbers(x, "==", values),
        Operator::NumberLt => numbers(x, "<", values),
        Operator::NumberLte => numbers(x, "<=", values),
        Operator::NumberGt => numbers(x, ">", values),
        Operator::NumberGte => numbers(x, ">=", values),
        Operator::SemverEq => semver(x, "=", values),
        Operator::SemverLt => semver(x, "<", values),
        Operator::SemverLte => semver(x, "<=", values),
        Operator::SemverGt => semver(x, ">", values),
        Operator::SemverGte => semver(x, ">=", values),
        Operator::Regex => return Err("JSONLogic has no regular expressions".into()),
        Operator::DateBefore | Operator::DateAfter => {
            return Err("JSONLogic cannot read RFC 3339 times, which date clauses compare".into());
        }
        other => return Err(format!("operator {other:?} has no JSONLogic form")),
    })
}

/// The list `in` searches. JSONLogic's `in` compares strictly, and ours matches a string
/// exactly, a number against the values that are numbers and a bool against the values
/// `true`/`false` — so each value is listed in every form that can match it.
fn in_list(values: &[Literal]) -> Json {
    let mut list: Vec<Json> = Vec::new();
    let mut push = |item: Json| {
        if !list.contains(&item) {
            list.push(item);
        }
    };
    for Literal(text) in values {
        push(Json::String(text.clone()));
        if let Some(n) = parse_number(text) {
            push(number(n));
        }
        match text.as_str() {
            "true" => push(Json::Bool(true)),
            "false" => push(Json::Bool(false)),
            _ => {}
        }
    }
    Json::Array(list)
}

/// Whether `op` compares the attribute as a number.
pub(crate) fn is_number_operator(op: Operator) -> bool {
    matches!(
        op,
        Operator::NumberEq
            | Operator::NumberLt
            | Operator::NumberLte
            | Operator::NumberGt
            | Operator::NumberGte
    )
}

/// A number attribute compared with any of the values; false for a bool or a missing one,
/// as ours. (Compilation has checked that every value reads as a number.)
fn numbers(x: &Json, op: &str, values: &[Literal]) -> Json {
    let tests = values.iter().filter_map(|v| parse_number(&v.0)).map(|n| json!({ op: [x, number(n)] }));
    and(vec![is_number(x), or(tests.collect())])
}

/// A strict semantic version compared with any value. flagd's `sem_ver` also accepts a
/// leading `v`, partial versions (`1.2`) and numbers, which ours refuses; prefixing `0.`
/// makes a three-part version four-part (refused: `null`), so only a version that already
/// has three parts passes.
fn semver(x: &Json, op: &str, values: &[Literal]) -> Json {
    let guard = and(vec![
        is_string(x),
        not(json!({ "starts_with": [x, "v"] })),
        not(json!({ "starts_with": [x, "V"] })),
        json!({ "===": [{ "sem_ver": [{ "cat": ["0.", x] }, "=", "0.0.0"] }, null] }),
    ]);
    let tests = or(values.iter().map(|v| json!({ "sem_ver": [x, op, v.0] })).collect());
    and(vec![guard, tests])
}

/// A number as our compiler reads a literal: finite, surrounding whitespace ignored.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}
