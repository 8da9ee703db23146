//! Each JSONLogic operator we translate, as an [`Atom`]: what it says for a missing
//! attribute, a string, a number and a bool, following JSONLogic's coercions (`==` and
//! `<` read strings and bools as numbers, a missing attribute as `null`, which `<` reads
//! as 0) and flagd's operators (`null`, so no match, for anything they cannot read).

use flag_core::{KEY_ATTRIBUTE, Operator};
use serde_json::Value as Json;

use super::atom::{Atom, Dnf};
use super::condition::Node;

/// A bare `{"var": …}` tested for truthiness: a non-empty string, a non-zero number, `true`.
pub(crate) fn truthy(var_arg: &Json) -> Result<Atom, String> {
    let mut atom = Atom::never(&attribute(var_arg)?);
    atom.string = vec![vec![negated(atom.clause(Operator::In, &[""]))]];
    atom.number = vec![vec![negated(atom.clause(Operator::In, &["0"]))]];
    atom.boolean = vec![vec![atom.clause(Operator::In, &["true"])]];
    Ok(atom)
}

/// An operator applied to its arguments.
pub(crate) fn test(op: &str, args: &[&Json]) -> Result<Node, String> {
    match (op, args) {
        ("in", [needle, Json::Array(list)]) => Ok(Node::Test(in_list(var_of(needle)?, list)?)),
        ("in", [Json::String(part), haystack]) => {
            let mut atom = Atom::never(&var_of(haystack)?);
            atom.string = vec![vec![atom.clause(Operator::Contains, &[part])]];
            Ok(Node::Test(atom))
        }
        ("==" | "===" | "!=" | "!==", [a, b]) => {
            let is_var = |j: &Json| j.get("var").is_some();
            let (attribute, literal) = match (is_var(a), is_var(b)) {
                (true, false) => (var_of(a)?, *b),
                (false, true) => (var_of(b)?, *a),
                _ => return Err(format!("`{op}` needs one `var` and one literal")),
            };
            let atom = if op.len() == 3 {
                strictly_equal(&attribute, literal)?
            } else {
                equal(&attribute, literal)?
            };
            Ok(if op.starts_with('!') { Node::Not(Box::new(Node::Test(atom))) } else { Node::Test(atom) })
        }
        ("<" | "<=" | ">" | ">=", [a, b]) => match (var_of(a), number_of(b), number_of(a), var_of(b)) {
            (Ok(attribute), Some(n), _, _) => Ok(Node::Test(compare(&attribute, op, n))),
            (_, _, Some(n), Ok(attribute)) => Ok(Node::Test(compare(&attribute, flip(op), n))),
            _ => Err(format!("`{op}` needs a `var` and a number")),
        },
        ("<" | "<=", [low, x, high]) => match (number_of(low), var_of(x), number_of(high)) {
            (Some(low), Ok(attribute), Some(high)) => Ok(Node::All(vec![
                Node::Test(compare(&attribute, flip(op), low)),
                Node::Test(compare(&attribute, op, high)),
            ])),
            _ => Err(format!("a three-part `{op}` needs a number, a `var` and a number")),
        },
        ("starts_with" | "ends_with", [x, Json::String(affix)]) => {
            let mut atom = Atom::never(&var_of(x)?);
            let op = if op == "starts_with" { Operator::StartsWith } else { Operator::EndsWith };
            atom.string = vec![vec![atom.clause(op, &[affix])]];
            Ok(Node::Test(atom))
        }
        ("sem_ver", [x, Json::String(op), Json::String(version)]) => {
            Ok(Node::Test(semver(&var_of(x)?, op, version)?))
        }
        _ => Err(format!("`{op}` with these arguments has no exact translation")),
    }
}

/// The attribute `{"var": name}` reads, in our names.
fn var_of(json: &Json) -> Result<String, String> {
    match json.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("var")) {
        Some(arg) => attribute(arg),
        None => Err("expected a `var`".into()),
    }
}

pub(crate) fn attribute(var_arg: &Json) -> Result<String, String> {
    let name = match var_arg {
        Json::String(name) => name,
        Json::Array(items) => match items.as_slice() {
            [Json::String(name)] => name,
            _ => return Err("a `var` with a default (or no name) has no clause form".into()),
        },
        _ => return Err("expected a `var` naming a context field".into()),
    };
    match name.as_str() {
        "targetingKey" => Ok(KEY_ATTRIBUTE.into()),
        KEY_ATTRIBUTE => Err("our clauses read `key` as the targeting key, not a context field".into()),
        "" => Err("an empty `var` reads the whole context".into()),
        n if n.contains('.') => Err(format!("`var` {n:?} reads a nested field; our attributes are flat")),
        n if n.starts_with('$') => Err(format!("`var` {n:?} reads flagd's own context")),
        n => Ok(n.to_owned()),
    }
}

fn number_of(json: &Json) -> Option<f64> {
    json.as_f64().filter(|n| n.is_finite())
}

/// A literal as our clauses write it.
fn text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 { (n as i64).to_string() } else { n.to_string() }
}

fn negated(clause: flag_core::Clause) -> flag_core::Clause {
    flag_core::Clause { negate: true, ..clause }
}

/// `in` a list of literals: strict equality, so each type matches only its own literals.
fn in_list(attribute: String, list: &[Json]) -> Result<Atom, String> {
    let mut atom = Atom::never(&attribute);
    let (mut strings, mut numbers, mut bools) = (Vec::new(), Vec::new(), Vec::new());
    for item in list {
        match item {
            Json::String(s) => strings.push(s.clone()),
            Json::Number(n) => {
                numbers.push(n.as_f64().map(text).ok_or("a number that does not fit a double")?)
            }
            Json::Bool(b) => bools.push(b.to_string()),
            _ => return Err("`in` lists of strings, numbers and bools only".into()),
        }
    }
    let one = |values: &[String]| -> Dnf {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        if values.is_empty() { vec![] } else { vec![vec![atom.clause(Operator::In, &values)]] }
    };
    let (string, number, boolean) = (one(&strings), one(&numbers), one(&bools));
    atom.string = string;
    atom.number = number;
    atom.boolean = boolean;
    Ok(atom)
}

/// `===`: the same type and value.
fn strictly_equal(attribute: &str, literal: &Json) -> Result<Atom, String> {
    let mut atom = Atom::never(attribute);
    match literal {
        Json::Null => atom.missing = true,
        Json::String(s) => atom.string = vec![vec![atom.clause(Operator::In, &[s])]],
        Json::Number(n) => {
            let n = n.as_f64().ok_or("a number that does not fit a double")?;
            atom.number = vec![vec![atom.clause(Operator::In, &[&text(n)])]];
        }
        Json::Bool(b) => atom.boolean = vec![vec![atom.clause(Operator::In, &[&b.to_string()])]],
        _ => return Err("compare with a string, number, bool or null".into()),
    }
    Ok(atom)
}

/// `==`: JavaScript's loose equality. A string equals a number or bool when it reads as
/// that number (bools read as 0 and 1); `null` equals only a missing attribute.
fn equal(attribute: &str, literal: &Json) -> Result<Atom, String> {
    let mut atom = Atom::never(attribute);
    let as_number = match literal {
        Json::Null => {
            atom.missing = true;
            return Ok(atom);
        }
        Json::String(s) => {
            atom.string = vec![vec![atom.clause(Operator::In, &[s])]];
            js_number(s)
        }
        Json::Number(n) => {
            let n = n.as_f64().ok_or("a number that does not fit a double")?;
            atom.string = vec![vec![atom.clause(Operator::NumberEq, &[&text(n)])]];
            if n == 0.0 {
                atom.string.push(vec![atom.clause(Operator::In, &[""])]);
            }
            Some(n)
        }
        Json::Bool(b) => {
            atom.string = vec![vec![atom.clause(Operator::NumberEq, &[if *b { "1" } else { "0" }])]];
            if !*b {
                atom.string.push(vec![atom.clause(Operator::In, &[""])]);
            }
            atom.boolean = vec![vec![atom.clause(Operator::In, &[&b.to_string()])]];
            Some(if *b { 1.0 } else { 0.0 })
        }
        _ => return Err("compare with a string, number, bool or null".into()),
    };
    if let Some(n) = as_number.filter(|n| n.is_finite()) {
        // `in` compares a number attribute numerically, like `==`.
        atom.number = vec![vec![atom.clause(Operator::In, &[&text(n)])]];
        if !literal.is_boolean() {
            atom.boolean = [(1.0, "true"), (0.0, "false")]
                .iter()
                .filter(|(value, _)| *value == n)
                .map(|(_, name)| vec![atom.clause(Operator::In, &[name])])
                .collect();
        }
    }
    Ok(atom)
}

/// `<`, `<=`, `>`, `>=` with a number: strings and bools are read as numbers, a missing
/// attribute as 0.
fn compare(attribute: &str, op: &str, n: f64) -> Atom {
    let holds = |x: f64| match op {
        "<" => x < n,
        "<=" => x <= n,
        ">" => x > n,
        _ => x >= n,
    };
    let ours = match op {
        "<" => Operator::NumberLt,
        "<=" => Operator::NumberLte,
        ">" => Operator::NumberGt,
        _ => Operator::NumberGte,
    };
    let mut atom = Atom::never(attribute);
    let test = vec![vec![atom.clause(ours, &[&text(n)])]];
    atom.missing = holds(0.0);
    atom.string = test.clone();
    if holds(0.0) {
        // `""` reads as 0 (other blank strings too, which our clauses cannot single out).
        atom.string.push(vec![atom.clause(Operator::In, &[""])]);
    }
    atom.number = test;
    let bools: Vec<&str> =
        [(1.0, "true"), (0.0, "false")].iter().filter(|(x, _)| holds(*x)).map(|(_, b)| *b).collect();
    if !bools.is_empty() {
        atom.boolean = vec![vec![atom.clause(Operator::In, &bools)]];
    }
    atom
}

fn flip(op: &str) -> &'static str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        _ => "<=",
    }
}

/// flagd's `sem_ver`: `null` (no match) for anything that is not a version. `^` is the
/// same major version and `~` the same major and minor: ranges from the lowest version
/// with those numbers (`M.0.0-0`) to the next.
fn semver(attribute: &str, op: &str, version: &str) -> Result<Atom, String> {
    let mut atom = Atom::never(attribute);
    let one = |op: Operator, v: &str| atom.clause(op, &[v]);
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let numbers: Vec<u64> = core.split('.').map(str::parse).collect::<Result<_, _>>().map_err(|_| {
        format!("{version:?} is not a version like 1.2.3 (flagd's `v` prefix and partial versions have no clause form)")
    })?;
    let [major, minor, _patch] = numbers[..] else {
        return Err(format!("{version:?} is not a version like 1.2.3"));
    };
    let next = |n: u64| n.checked_add(1).ok_or_else(|| format!("{version:?} has no next version"));
    let all = match op {
        "=" => vec![one(Operator::SemverEq, version)],
        // A version (every version is at least 0.0.0-0) other than this one.
        "!=" => vec![negated(one(Operator::SemverEq, version)), one(Operator::SemverGte, "0.0.0-0")],
        "<" => vec![one(Operator::SemverLt, version)],
        "<=" => vec![one(Operator::SemverLte, version)],
        ">" => vec![one(Operator::SemverGt, version)],
        ">=" => vec![one(Operator::SemverGte, version)],
        "^" => vec![
            one(Operator::SemverGte, &format!("{major}.0.0-0")),
            one(Operator::SemverLt, &format!("{}.0.0-0", next(major)?)),
        ],
        "~" => vec![
            one(Operator::SemverGte, &format!("{major}.{minor}.0-0")),
            one(Operator::SemverLt, &format!("{major}.{}.0-0", next(minor)?)),
        ],
        other => return Err(format!("`sem_ver` operator {other:?} is not one flagd defines")),
    };
    atom.string = vec![all];
    Ok(atom)
}

/// A string as JavaScript's `Number` reads it, which JSONLogic's `==` uses: surrounding
/// whitespace ignored, blank is 0, `0x`/`0o`/`0b` literals, `Infinity`.
pub(crate) fn js_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Some(0.0);
    }
    match t {
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return u64::from_str_radix(digits, radix).ok().map(|n| n as f64);
        }
    }
    let decimal = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mantissa, exponent) = match decimal.find(['e', 'E']) {
        Some(i) => (&decimal[..i], Some(&decimal[i + 1..])),
        None => (decimal, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (digits(whole) || whole.is_empty())
                && (digits(fraction) || fraction.is_empty())
                && mantissa != "."
        }
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if mantissa_ok && exponent_ok { t.parse().ok() } else { None }
}
