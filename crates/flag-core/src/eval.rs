// HOT PATH: everything in this module runs on every flag evaluation. No allocation
// (`format!`, `String`, `Vec` growth, `Box`), no locks, no shared atomics, no logging.
// `tests/zero_alloc.rs` counts allocations to hold this line.

//! Resolving a compiled flag for a context to a variant and a reason.

use crate::compiled::{AttributeRef, CompiledClause, CompiledFlag, CompiledServe, CompiledSplit, Test};
use crate::date::parse_rfc3339_millis;
use crate::evaluation::{EvalError, Reason};
use crate::murmur::{TOTAL_WEIGHT, bucket_of};
use crate::semver;
use crate::snapshot::Snapshot;
use crate::value::{AttrValue, Context};

/// Which variant a flag resolved to, and why.
pub(crate) type Resolution<'s> = Result<(u32, Reason<'s>), EvalError>;

impl Snapshot {
    // Inlined into every caller: the common flag (no prerequisites, no rules) is then a
    // few branches and a hash, without a call.
    #[inline(always)]
    pub(crate) fn resolve(&self, flag: &CompiledFlag, ctx: &Context<'_>) -> Resolution<'_> {
        if !flag.enabled {
            return Ok((flag.off_variant, Reason::Disabled));
        }
        for prerequisite in flag.prerequisites() {
            let Some(required) = self.flags.get(prerequisite.flag as usize) else {
                return Err(EvalError::Internal);
            };
            if !self.prerequisite_holds(required, prerequisite.variant, ctx) {
                return Ok((flag.off_variant, Reason::PrerequisiteFailed { prerequisite: &required.key }));
            }
        }
        for (index, rule) in flag.rules().iter().enumerate() {
            if rule.clauses.iter().all(|clause| self.clause_holds(clause, ctx)) {
                let (variant, bucket) = serve(&rule.serve, ctx)?;
                return Ok((variant, Reason::TargetMatch { rule: index, bucket }));
            }
        }
        match serve(&flag.default, ctx)? {
            (variant, Some(bucket)) => Ok((variant, Reason::Split { bucket })),
            (variant, None) => Ok((variant, Reason::Default)),
        }
    }

    /// Out of line, so that the recursion does not stop `resolve` from being inlined.
    /// Compilation rejects prerequisite cycles, so the recursion ends.
    #[inline(never)]
    fn prerequisite_holds(&self, required: &CompiledFlag, variant: u32, ctx: &Context<'_>) -> bool {
        matches!(self.resolve(required, ctx), Ok((v, _)) if v == variant)
    }

    #[inline]
    fn clause_holds(&self, clause: &CompiledClause, ctx: &Context<'_>) -> bool {
        let attribute = match &clause.attribute {
            AttributeRef::Key => Some(AttrValue::Str(ctx.key())),
            AttributeRef::Named(name) => named_attribute(ctx, name),
        };
        let matched = match (&clause.test, attribute) {
            (Test::Exists, attribute) => attribute.is_some(),
            (Test::InSegment(segments), _) => segments.iter().any(|&s| self.in_segment(s, ctx)),
            // A clause on a missing attribute never holds, negated or not.
            (_, None) => return false,
            (test, Some(value)) => test_value(test, value),
        };
        matched != clause.negate
    }

    fn in_segment(&self, segment: u32, ctx: &Context<'_>) -> bool {
        let Some(segment) = self.segments.get(segment as usize) else {
            return false;
        };
        if segment.included.contains(ctx.key()) {
            return true;
        }
        if segment.excluded.contains(ctx.key()) {
            return false;
        }
        segment.rules.iter().any(|rule| rule.iter().all(|clause| self.clause_holds(clause, ctx)))
    }
}

/// Like [`Context::attribute`] for a name already known not to be `key`.
#[inline]
fn named_attribute<'a>(ctx: &Context<'a>, name: &str) -> Option<AttrValue<'a>> {
    ctx.attributes().iter().find(|(attr, _)| *attr == name).map(|(_, value)| *value)
}

#[inline]
fn as_number(value: AttrValue<'_>) -> Option<f64> {
    match value {
        AttrValue::Number(n) => Some(n),
        AttrValue::Str(s) => s.trim().parse().ok(),
        AttrValue::Bool(_) => None,
    }
}

/// Unix milliseconds as a double, so numeric attributes keep their sub-millisecond part.
#[inline]
fn as_millis(value: AttrValue<'_>) -> Option<f64> {
    match value {
        AttrValue::Number(seconds) if seconds.is_finite() => Some(seconds * 1000.0),
        AttrValue::Str(s) => parse_rfc3339_millis(s).map(|millis| millis as f64),
        _ => None,
    }
}

fn test_value(test: &Test, value: AttrValue<'_>) -> bool {
    match (test, value) {
        (Test::In { strings, .. }, AttrValue::Str(s)) => strings.contains(s),
        (Test::In { numbers, .. }, AttrValue::Number(n)) => numbers.contains(&n),
        (Test::In { strings, .. }, AttrValue::Bool(b)) => strings.contains(if b { "true" } else { "false" }),
        (Test::StartsWith(prefixes), AttrValue::Str(s)) => prefixes.iter().any(|p| s.starts_with(&**p)),
        (Test::EndsWith(suffixes), AttrValue::Str(s)) => suffixes.iter().any(|p| s.ends_with(&**p)),
        (Test::Contains(parts), AttrValue::Str(s)) => parts.iter().any(|p| s.contains(&**p)),
        (Test::Regex(patterns), AttrValue::Str(s)) => patterns.iter().any(|r| r.is_match(s)),
        (Test::Number(comparison, numbers), value) => as_number(value)
            .is_some_and(|n| numbers.iter().any(|v| n.partial_cmp(v).is_some_and(|o| comparison.holds(o)))),
        (Test::Semver(comparison, versions), AttrValue::Str(s)) => semver::parse(s)
            .is_some_and(|version| versions.iter().any(|v| comparison.holds(version.cmp(&v.as_semver())))),
        (Test::Before(limits), value) => {
            as_millis(value).is_some_and(|t| limits.iter().any(|&l| t < l as f64))
        }
        (Test::After(limits), value) => {
            as_millis(value).is_some_and(|t| limits.iter().any(|&l| t > l as f64))
        }
        _ => false,
    }
}

/// The variant a serve picks, with the bucket when it was a split.
#[inline(always)]
fn serve(serve: &CompiledServe, ctx: &Context<'_>) -> Result<(u32, Option<u32>), EvalError> {
    match serve {
        CompiledServe::Variant(variant) => Ok((*variant, None)),
        CompiledServe::Split(split) => split_variant(split, ctx).map(|(v, b)| (v, Some(b))),
    }
}

#[inline(always)]
fn split_variant(split: &CompiledSplit, ctx: &Context<'_>) -> Result<(u32, u32), EvalError> {
    let mut state = split.seeded;
    match &split.by {
        None => state.write(ctx.key().as_bytes()),
        Some(attribute) => match named_attribute(ctx, attribute) {
            Some(AttrValue::Str(s)) => state.write(s.as_bytes()),
            // Whole numbers bucket like their decimal text, formatted on the stack. Below 2^63
            // the conversion to i64 is exact.
            Some(AttrValue::Number(n)) if n.fract() == 0.0 && n.abs() < 9_223_372_036_854_775_808.0 => {
                state.write(itoa::Buffer::new().format(n as i64).as_bytes())
            }
            _ => return Err(EvalError::MissingBucketAttribute),
        },
    }
    let bucket = bucket_of(state.finish(), TOTAL_WEIGHT);
    let variant = split.ranges.iter().find(|&&(upper, _)| bucket < upper).map(|&(_, variant)| variant);
    // Weights total TOTAL_WEIGHT and bucket < TOTAL_WEIGHT, so some range always holds it.
    variant.map(|v| (v, bucket)).ok_or(EvalError::Internal)
}
