//! JSONLogic building blocks: connectives that stay small for one operand, and the type
//! guards that keep JSONLogic's coercions from deciding what a clause means.
//!
//! JSONLogic has no `typeof`; the guards use operators whose results differ in type from
//! their operand unless the operand already had that type (`cat` of a string is the string,
//! `+` of a number is the number), compared with `===`, which never coerces.

use flag_core::KEY_ATTRIBUTE;
use serde_json::{Value as Json, json};

/// Where a context attribute is read from: our `key` is OpenFeature's targeting key.
pub(crate) fn var(attribute: &str) -> Json {
    if attribute == KEY_ATTRIBUTE { json!({ "var": "targetingKey" }) } else { json!({ "var": attribute }) }
}

/// Why an attribute name cannot be read by `var` exactly, if it cannot.
pub(crate) fn unreadable_attribute(attribute: &str) -> Option<String> {
    if attribute.contains('.') {
        // `var` reads `a.b` as the field `b` of the object `a`.
        Some(format!("attribute {attribute:?} contains `.`, which JSONLogic's `var` reads as a nested path"))
    } else if attribute == "targetingKey" || attribute.starts_with('$') {
        Some(format!("attribute {attribute:?} is a name flagd reserves for its own context fields"))
    } else if attribute.is_empty() {
        Some("an empty attribute name reads the whole context in JSONLogic".into())
    } else {
        None
    }
}

/// All of `parts`; `true` for none.
pub(crate) fn and(mut parts: Vec<Json>) -> Json {
    match parts.len() {
        0 => Json::Bool(true),
        1 => parts.remove(0),
        _ => json!({ "and": parts }),
    }
}

/// Any of `parts`; `false` for none.
pub(crate) fn or(mut parts: Vec<Json>) -> Json {
    match parts.len() {
        0 => Json::Bool(false),
        1 => parts.remove(0),
        _ => json!({ "or": parts }),
    }
}

pub(crate) fn not(part: Json) -> Json {
    json!({ "!": part })
}

/// The attribute is in the context (a missing `var` reads as `null`). Strict, because
/// loose `!=` says `"" == null` in some engines.
pub(crate) fn present(x: &Json) -> Json {
    json!({ "!==": [x, null] })
}

/// The attribute is a string: `cat` turns anything else into a string, which `===` tells
/// apart from the original.
pub(crate) fn is_string(x: &Json) -> Json {
    json!({ "===": [{ "cat": [x] }, x] })
}

/// The attribute is a bool: `!!` turns anything else into a bool.
pub(crate) fn is_bool(x: &Json) -> Json {
    json!({ "===": [{ "!!": [x] }, x] })
}

/// The attribute is a number (context values are strings, numbers or bools). No arithmetic:
/// some engines throw on a string that is not a number, which would fail the whole flag.
pub(crate) fn is_number(x: &Json) -> Json {
    and(vec![present(x), not(is_string(x)), not(is_bool(x))])
}

/// A number as JSON: whole numbers as integers, which strictly typed providers need (a
/// Python provider refuses `100.0` where an integer is expected).
pub(crate) fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Below 2^53 the conversion to i64 is exact.
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}
