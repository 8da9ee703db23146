//! A JSONLogic condition (what `if` tests for truthiness) as alternatives of our clauses.
//!
//! `and`/`or`/`!` are pushed down to single tests (De Morgan), each test is translated per
//! type of its attribute (`atom`), and the result is a list of all-of clause lists: a rule
//! per alternative. Whatever is outside the subset is refused with its JSON path.

use std::collections::BTreeMap;

use flag_core::{Clause, KEY_ATTRIBUTE, Literal, Operator};
use serde_json::Value as Json;

use super::atom::{Atom, Dnf, product, union};
use super::path::{Refusal, at};

/// A condition, parsed: connectives over tests.
#[derive(Debug)]
pub(crate) enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Test(Atom),
    Segment(String),
    Constant(bool),
}

/// What `$ref` may name: the evaluators that became segments, and why the others did not.
pub(crate) type Evaluators<'a> = BTreeMap<&'a str, Result<(), String>>;

impl Node {
    /// The alternatives under which the node (or, `negated`, its negation) holds.
    pub(crate) fn to_dnf(&self, negated: bool) -> Result<Dnf, String> {
        match (self, negated) {
            (Node::All(parts), false) | (Node::Any(parts), true) => {
                let mut out: Dnf = vec![vec![]];
                for part in parts {
                    out = product(&out, &part.to_dnf(negated)?)?;
                }
                Ok(out)
            }
            (Node::Any(parts), false) | (Node::All(parts), true) => {
                let mut out: Dnf = vec![];
                for part in parts {
                    out = union(out, part.to_dnf(negated)?)?;
                }
                Ok(out)
            }
            (Node::Not(inner), _) => inner.to_dnf(!negated),
            (Node::Test(atom), false) => Ok(atom.to_dnf()),
            (Node::Test(atom), true) => Ok(atom.negated()?.to_dnf()),
            (Node::Segment(key), _) => Ok(vec![vec![Clause {
                attribute: KEY_ATTRIBUTE.into(),
                op: Operator::InSegment,
                values: vec![Literal(key.clone())],
                negate: negated,
            }]]),
            (Node::Constant(holds), _) => Ok(if *holds != negated { vec![vec![]] } else { vec![] }),
        }
    }
}

/// Parses a condition; `evaluators` says which `$ref`s may be followed (none inside an
/// evaluator: flagd does not nest them).
pub(crate) fn parse(json: &Json, path: &str, evaluators: Option<&Evaluators<'_>>) -> Result<Node, Refusal> {
    let refuse = |why: String| Refusal { path: path.to_owned(), why };
    let object = match json {
        Json::Bool(b) => return Ok(Node::Constant(*b)),
        Json::Null => return Ok(Node::Constant(false)),
        Json::Number(n) => return Ok(Node::Constant(n.as_f64() != Some(0.0))),
        Json::String(s) => return Ok(Node::Constant(!s.is_empty())),
        Json::Array(_) => return Err(refuse("an array is not a condition".into())),
        Json::Object(object) => object,
    };
    let mut entries = object.iter();
    let (Some((op, raw)), None) = (entries.next(), entries.next()) else {
        return Err(refuse("expected an object with exactly one operator".into()));
    };
    let here = at(path, op);
    let args: Vec<&Json> = match raw {
        Json::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let arg_path = |i: usize| if raw.is_array() { at(&here, &i.to_string()) } else { here.clone() };
    let children = |args: &[&Json]| -> Result<Vec<Node>, Refusal> {
        args.iter().enumerate().map(|(i, a)| parse(a, &arg_path(i), evaluators)).collect()
    };
    let refuse_here = |why: String| Refusal { path: here.clone(), why };
    match op.as_str() {
        "and" | "or" if args.is_empty() => Err(refuse_here(format!("`{op}` of nothing"))),
        "and" => Ok(Node::All(children(&args)?)),
        "or" => Ok(Node::Any(children(&args)?)),
        "!" if args.len() == 1 => Ok(Node::Not(Box::new(children(&args)?.remove(0)))),
        "!!" if args.len() == 1 => Ok(Node::Not(Box::new(Node::Not(Box::new(children(&args)?.remove(0)))))),
        "$ref" => {
            let Some(Json::String(name)) = args.first() else {
                return Err(refuse_here("expected the name of an evaluator".into()));
            };
            match evaluators.and_then(|e| e.get(name.as_str())) {
                Some(Ok(())) => Ok(Node::Segment(name.clone())),
                Some(Err(why)) => Err(refuse_here(format!("evaluator {name:?}: {why}"))),
                None if evaluators.is_none() => {
                    Err(refuse_here("an evaluator cannot refer to another".into()))
                }
                None => Err(refuse_here(format!("no evaluator {name:?} in $evaluators"))),
            }
        }
        "var" => super::operators::truthy(raw).map(Node::Test).map_err(refuse_here),
        _ => super::operators::test(op, &args).map_err(refuse_here),
    }
}
