//! A deliberately naive reference evaluator, written from the doc comments of the model
//! (`model.rs`, `value.rs`, `answer.rs`) and the bucketing rule of docs/architecture.md —
//! not from the compiled evaluator.
//!
//! It walks the [`FlagSet`] on every call: a linear search for the flag, clause literals
//! parsed anew each time, regexes built each time, and the bucketing input concatenated into
//! a `String` (or encoded by `ciborium`, for `flagd-v3`) and hashed by the `murmur3` crate.
//! Slow and allocating on purpose: it shares no code, and as few ideas as possible, with the
//! optimised path it checks.

use flag_core::{AttrValue, Bucketing, Context, EvalError, FlagSet, Operator, Reason, Segment, Serve, Split};

/// Why the reference answered as it did: [`flag_core::Reason`] with owned data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefReason {
    /// The flag is killed.
    Disabled,
    /// Rule `rule` matched; `bucket` when it served a split.
    TargetMatch { rule: usize, bucket: Option<u32> },
    /// The default split placed the context in `bucket`.
    Split { bucket: u32 },
    /// The default serves one variant.
    Default,
    /// This prerequisite (the first that failed) did not resolve to its variant.
    PrerequisiteFailed(String),
    /// No flag has the key.
    FlagNotFound,
    /// No answer.
    Error(EvalError),
    /// A reason the reference does not know (the compiled enum is `#[non_exhaustive]`).
    Unknown(String),
}

impl From<Reason<'_>> for RefReason {
    fn from(reason: Reason<'_>) -> Self {
        match reason {
            Reason::Disabled => RefReason::Disabled,
            Reason::TargetMatch { rule, bucket } => RefReason::TargetMatch { rule, bucket },
            Reason::Split { bucket } => RefReason::Split { bucket },
            Reason::Default => RefReason::Default,
            Reason::PrerequisiteFailed { prerequisite } => RefReason::PrerequisiteFailed(prerequisite.into()),
            Reason::FlagNotFound => RefReason::FlagNotFound,
            Reason::Error(error) => RefReason::Error(error),
            other => RefReason::Unknown(format!("{other:?}")),
        }
    }
}

/// Evaluates flag `key` of `set` for `ctx`: the variant served (if any) and why.
pub(crate) fn evaluate(set: &FlagSet, key: &str, ctx: &Context<'_>) -> (Option<String>, RefReason) {
    let Some(flag) = set.flags.iter().find(|flag| flag.key == key) else {
        return (None, RefReason::FlagNotFound);
    };
    if !flag.enabled {
        return (flag.off_variant.clone(), RefReason::Disabled);
    }
    for prerequisite in &flag.prerequisites {
        let (variant, _) = evaluate(set, &prerequisite.flag, ctx);
        if variant.as_deref() != Some(prerequisite.variant.as_str()) {
            return (flag.off_variant.clone(), RefReason::PrerequisiteFailed(prerequisite.flag.clone()));
        }
    }
    for (index, rule) in flag.rules.iter().enumerate() {
        if rule.clauses.iter().all(|clause| clause_holds(set, clause, ctx)) {
            return match serve(&flag.key, &rule.serve, ctx) {
                Ok((variant, bucket)) => (variant, RefReason::TargetMatch { rule: index, bucket }),
                Err(error) => (None, RefReason::Error(error)),
            };
        }
    }
    match serve(&flag.key, &flag.default, ctx) {
        Ok((variant, Some(bucket))) => (variant, RefReason::Split { bucket }),
        Ok((variant, None)) => (variant, RefReason::Default),
        Err(error) => (None, RefReason::Error(error)),
    }
}

/// The variant a serve gives (none: the caller's default), with the bucket when it is a split.
fn serve(
    flag_key: &str,
    serve: &Serve,
    ctx: &Context<'_>,
) -> Result<(Option<String>, Option<u32>), EvalError> {
    match serve {
        Serve::Variant(name) => Ok((Some(name.clone()), None)),
        Serve::Split(split) => split_variant(flag_key, split, ctx).map(|(v, b)| (Some(v), Some(b))),
        Serve::CallerDefault => Ok((None, None)),
    }
}

fn split_variant(flag_key: &str, split: &Split, ctx: &Context<'_>) -> Result<(String, u32), EvalError> {
    let bucket_key = match &split.by {
        None => ctx.key().to_owned(),
        Some(attribute) => match attribute_of(ctx, attribute) {
            Some(AttrValue::Str(s)) => s.to_owned(),
            Some(AttrValue::Number(n)) if n.is_finite() && n.fract() == 0.0 => {
                // "Whole numbers bucket as their decimal text": 42.0 is "42".
                format!("{}", n as i64)
            }
            _ => return Err(EvalError::MissingBucketAttribute),
        },
    };
    let salt = split.salt.as_deref().unwrap_or(flag_key);
    let total: i64 = split.weights.iter().map(|w| w.weight).sum();
    let hash = match split.bucketing {
        Bucketing::FlagdV2 => murmur(format!("{salt}{bucket_key}").as_bytes()),
        // What a flagd provider hashes for `fractional` without a bucketing expression…
        Bucketing::FlagdV3 if split.by.is_none() && salt == flag_key => {
            cbor_hash(&ciborium::Value::Array(vec![
                ciborium::Value::Text(flag_key.to_owned()),
                ciborium::Value::Text(bucket_key),
            ]))
        }
        // …and for `{"cat": [salt, {"var": attribute}]}`, which evaluates to a string.
        Bucketing::FlagdV3 => cbor_hash(&ciborium::Value::Text(format!("{salt}{bucket_key}"))),
    };
    let bucket = ((u64::from(hash) * total as u64) >> 32) as u32;
    let mut cumulative: i64 = 0;
    for weight in &split.weights {
        cumulative += weight.weight;
        if cumulative > i64::from(bucket) {
            return Ok((weight.variant.clone(), bucket));
        }
    }
    Err(EvalError::Internal)
}

/// The bucket (of 100 000) of a string, by the murmur3 crate rather than flag-core's.
pub(crate) fn bucket_of(text: &str) -> u32 {
    ((u64::from(murmur(text.as_bytes())) * 100_000) >> 32) as u32
}

/// The murmur3 crate's hash (seed 0).
pub(crate) fn murmur(bytes: &[u8]) -> u32 {
    murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0)
        .unwrap_or_else(|error| panic!("reading from memory cannot fail: {error}"))
}

/// The hash of ciborium's encoding of `value` (shortest form, as RFC 8949 §4.2.1 asks).
pub(crate) fn cbor_hash(value: &ciborium::Value) -> u32 {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).unwrap_or_else(|error| panic!("encoding to memory: {error}"));
    murmur(&bytes)
}

/// The value rules see for `name`: the targeting key for `key`, else the first attribute so
/// named.
fn attribute_of<'a>(ctx: &Context<'a>, name: &str) -> Option<AttrValue<'a>> {
    if name == "key" {
        return Some(AttrValue::Str(ctx.key()));
    }
    ctx.attributes().iter().find(|(attribute, _)| *attribute == name).map(|(_, value)| *value)
}

fn clause_holds(set: &FlagSet, clause: &flag_core::Clause, ctx: &Context<'_>) -> bool {
    let literals: Vec<&str> = clause.values.iter().map(|literal| literal.0.as_str()).collect();
    match clause.op {
        // The attribute is not consulted, so a missing one does not matter.
        Operator::InSegment => {
            let inside = literals.iter().any(|name| {
                let segment = set.segments.iter().find(|segment| segment.key == *name);
                segment.is_some_and(|segment| in_segment(segment, ctx))
            });
            inside != clause.negate
        }
        Operator::Exists => attribute_of(ctx, &clause.attribute).is_some() != clause.negate,
        op => {
            let Some(value) = attribute_of(ctx, &clause.attribute) else {
                return false; // never holds on a missing attribute, negated or not
            };
            let matched = match op {
                Operator::NotIn => !literals.iter().any(|literal| equals(value, literal)),
                _ => literals.iter().any(|literal| matches(op, value, literal)),
            };
            matched != clause.negate
        }
    }
}

fn in_segment(segment: &Segment, ctx: &Context<'_>) -> bool {
    if segment.included.iter().any(|key| key == ctx.key()) {
        return true;
    }
    if segment.excluded.iter().any(|key| key == ctx.key()) {
        return false;
    }
    segment.rules.iter().any(|rule| rule.clauses.iter().all(|clause| clause_holds_in_segment(clause, ctx)))
}

/// Segment rules may not use `in_segment`, so they need no flag set.
fn clause_holds_in_segment(clause: &flag_core::Clause, ctx: &Context<'_>) -> bool {
    clause_holds(&FlagSet::default(), clause, ctx)
}

/// `in`: strings equal as text, numbers equal numerically to the literals that are numbers,
/// bools equal to `true`/`false`.
fn equals(value: AttrValue<'_>, literal: &str) -> bool {
    match value {
        AttrValue::Str(s) => s == literal,
        AttrValue::Number(n) => literal.parse::<f64>().is_ok_and(|lit| lit == n),
        AttrValue::Bool(b) => (b && literal == "true") || (!b && literal == "false"),
    }
}

/// Whether `value` matches one literal under `op` (before negation).
fn matches(op: Operator, value: AttrValue<'_>, literal: &str) -> bool {
    match op {
        Operator::In => equals(value, literal),
        Operator::StartsWith => as_str(value).is_some_and(|s| s.starts_with(literal)),
        Operator::EndsWith => as_str(value).is_some_and(|s| s.ends_with(literal)),
        Operator::Contains => as_str(value).is_some_and(|s| s.contains(literal)),
        Operator::Regex => {
            let regex = regex::Regex::new(literal)
                .unwrap_or_else(|error| panic!("the generator only writes valid regexes: {error}"));
            as_str(value).is_some_and(|s| regex.is_match(s))
        }
        Operator::NumberEq
        | Operator::NumberLt
        | Operator::NumberLte
        | Operator::NumberGt
        | Operator::NumberGte => {
            let (Some(n), Ok(lit)) = (as_number(value), literal.parse::<f64>()) else {
                return false;
            };
            match op {
                Operator::NumberEq => n == lit,
                Operator::NumberLt => n < lit,
                Operator::NumberLte => n <= lit,
                Operator::NumberGt => n > lit,
                _ => n >= lit,
            }
        }
        Operator::SemverEq
        | Operator::SemverLt
        | Operator::SemverLte
        | Operator::SemverGt
        | Operator::SemverGte => {
            let Some(version) = as_str(value).and_then(|s| semver::Version::parse(s).ok()) else {
                return false;
            };
            let Ok(lit) = semver::Version::parse(literal) else {
                return false;
            };
            let ordering = version.cmp_precedence(&lit);
            match op {
                Operator::SemverEq => ordering.is_eq(),
                Operator::SemverLt => ordering.is_lt(),
                Operator::SemverLte => ordering.is_le(),
                Operator::SemverGt => ordering.is_gt(),
                _ => ordering.is_ge(),
            }
        }
        Operator::DateBefore | Operator::DateAfter => {
            let time = match value {
                AttrValue::Str(s) => rfc3339_millis(s).map(|ms| ms as f64),
                AttrValue::Number(seconds) => Some(seconds * 1000.0),
                AttrValue::Bool(_) => None,
            };
            let lit = rfc3339_millis(literal)
                .map(|ms| ms as f64)
                .or_else(|| literal.parse::<f64>().ok().map(|seconds| seconds * 1000.0));
            let (Some(time), Some(lit)) = (time, lit) else {
                return false;
            };
            if op == Operator::DateBefore { time < lit } else { time > lit }
        }
        other => panic!("the reference does not know operator {other:?}"),
    }
}

fn as_str(value: AttrValue<'_>) -> Option<&str> {
    match value {
        AttrValue::Str(s) => Some(s),
        _ => None,
    }
}

/// A number, or a string that holds one (surrounding whitespace allowed).
fn as_number(value: AttrValue<'_>) -> Option<f64> {
    match value {
        AttrValue::Number(n) => Some(n),
        AttrValue::Str(s) => s.trim().parse::<f64>().ok(),
        AttrValue::Bool(_) => None,
    }
}

/// Unix milliseconds of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (the forms the generator
/// writes), by counting days year by year and month by month.
fn rfc3339_millis(text: &str) -> Option<i64> {
    if !text.is_ascii() {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = match text.len() {
        10 | 20 if &text[4..5] == "-" && &text[7..8] == "-" => (number(0..4)?, number(5..7)?, number(8..10)?),
        _ => return None,
    };
    let (hour, minute, second) = if text.len() == 20 {
        if &text[10..11] != "T" || &text[13..14] != ":" || &text[16..17] != ":" || &text[19..20] != "Z" {
            return None;
        }
        (number(11..13)?, number(14..16)?, number(17..19)?)
    } else {
        (0, 0, 0)
    };
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month) || !(1..=month_days(year, month)).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut days: i64 = 0;
    if year >= 1970 {
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
    } else {
        for y in year..1970 {
            days -= if leap(y) { 366 } else { 365 };
        }
    }
    for m in 1..month {
        days += month_days(year, m);
    }
    days += day - 1;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}
