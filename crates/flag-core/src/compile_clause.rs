//! Compiling one clause: parse each literal for its operator, once, and report the literals
//! that do not parse with their paths.

use regex::Regex;
use rustc_hash::FxHashMap;

use crate::compiled::{AttributeRef, Comparison, CompiledClause, StringSet, Test};
use crate::date::parse_rfc3339_millis;
use crate::error::Problems;
use crate::model::{Clause, Literal, Operator};
use crate::semver;
use crate::value::KEY_ATTRIBUTE;

/// Where a clause appears: segment rules may not refer to other segments.
#[derive(Clone, Copy)]
pub(crate) enum ClauseSite<'a> {
    Flag { segments: &'a FxHashMap<&'a str, u32> },
    Segment,
}

pub(crate) fn compile_clause(
    clause: &Clause,
    site: ClauseSite<'_>,
    p: &mut Problems,
) -> Option<CompiledClause> {
    let Clause { attribute, op, values, negate } = clause;
    let before = p.count();
    let op = *op;
    if attribute.is_empty() && op != Operator::InSegment {
        p.report_in("attribute", "expected an attribute name (`key` for the targeting key)");
    }
    match (op, values.is_empty()) {
        (Operator::Exists, false) => p.report_in("values", "expected no values for `exists`"),
        (Operator::Exists, true) => {}
        (_, true) => p.report_in("values", "expected at least one value"),
        (_, false) => {}
    }
    if op == Operator::InSegment && matches!(site, ClauseSite::Segment) {
        p.report_in(
            "op",
            "expected an operator other than `in_segment` inside a segment (segments do not nest)",
        );
    }
    let test = p.field("values", |p| compile_test(op, values, site, p));
    let attribute = if attribute == KEY_ATTRIBUTE {
        AttributeRef::Key
    } else {
        AttributeRef::Named(attribute.as_str().into())
    };
    // `not_in` is `in` negated; the missing-attribute rule is the same for both.
    let negate = *negate != (op == Operator::NotIn);
    (p.count() == before).then_some(CompiledClause { attribute, negate, test })
}

fn compile_test(op: Operator, values: &[Literal], site: ClauseSite<'_>, p: &mut Problems) -> Test {
    let strings = || values.iter().map(|v| Box::<str>::from(v.0.as_str())).collect::<Vec<_>>();
    match op {
        Operator::In | Operator::NotIn => Test::In {
            strings: StringSet::new(strings()),
            numbers: values.iter().filter_map(|v| parse_number(&v.0)).collect(),
        },
        Operator::StartsWith => Test::StartsWith(strings().into()),
        Operator::EndsWith => Test::EndsWith(strings().into()),
        Operator::Contains => Test::Contains(strings().into()),
        Operator::Regex => Test::Regex(parse_each(values, p, |text| {
            Regex::new(text).map_err(|e| {
                let detail = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
                format!("expected a valid regular expression, found {text:?} ({detail})")
            })
        })),
        Operator::NumberEq => number(Comparison::Eq, values, p),
        Operator::NumberLt => number(Comparison::Lt, values, p),
        Operator::NumberLte => number(Comparison::Lte, values, p),
        Operator::NumberGt => number(Comparison::Gt, values, p),
        Operator::NumberGte => number(Comparison::Gte, values, p),
        Operator::SemverEq => semver(Comparison::Eq, values, p),
        Operator::SemverLt => semver(Comparison::Lt, values, p),
        Operator::SemverLte => semver(Comparison::Lte, values, p),
        Operator::SemverGt => semver(Comparison::Gt, values, p),
        Operator::SemverGte => semver(Comparison::Gte, values, p),
        Operator::DateBefore => Test::Before(dates(values, p)),
        Operator::DateAfter => Test::After(dates(values, p)),
        Operator::Exists => Test::Exists,
        Operator::InSegment => Test::InSegment(match site {
            ClauseSite::Flag { segments } => parse_each(values, p, |key| {
                segments.get(key).copied().ok_or_else(|| format!("expected a known segment, found {key:?}"))
            }),
            // Reported at `op` by the caller.
            ClauseSite::Segment => Box::default(),
        }),
    }
}

/// Parses each literal, reporting failures at `values[i]`.
fn parse_each<T>(
    values: &[Literal],
    p: &mut Problems,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Box<[T]> {
    let mut parsed = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match parse(&value.0) {
            Ok(item) => parsed.push(item),
            Err(message) => p.index(i, |p| p.report(message)),
        }
    }
    parsed.into_boxed_slice()
}

/// A finite number; `inf` and `NaN` are refused because they make comparisons meaningless.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn number(comparison: Comparison, values: &[Literal], p: &mut Problems) -> Test {
    Test::Number(
        comparison,
        parse_each(values, p, |text| {
            parse_number(text).ok_or_else(|| format!("expected a number, found {text:?}"))
        }),
    )
}

fn semver(comparison: Comparison, values: &[Literal], p: &mut Problems) -> Test {
    Test::Semver(
        comparison,
        parse_each(values, p, |text| {
            semver::parse(text).map(semver::Semver::to_owned_semver).ok_or_else(|| {
                format!("expected a semantic version like 1.2.3 or 2.0.0-rc.1, found {text:?}")
            })
        }),
    )
}

fn dates(values: &[Literal], p: &mut Problems) -> Box<[i64]> {
    parse_each(values, p, |text| {
        parse_rfc3339_millis(text).ok_or_else(|| {
            format!("expected an RFC 3339 date like 2025-01-31 or 2025-01-31T09:00:00Z, found {text:?}")
        })
    })
}
