// HOT PATH: everything in this module runs on every flag evaluation. No allocation
// (`format!`, `String`, `Vec` growth, `Box`), no locks, no shared atomics, no logging.
// `tests/zero_alloc.rs` counts allocations to hold this line.

//! A snapshot as evaluation reads it: the key table and the layout that handles trust, the
//! key lookup, and [`Snapshot::evaluate`] — resolving a compiled flag for a context to a
//! variant and a reason. Building a snapshot and what else it offers are in `snapshot.rs`;
//! what an evaluation answers is in `answer.rs`; the typed getters are in `typed.rs`.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::answer::{EvalError, Evaluation, Reason};
use crate::compiled::{
    AttributeRef, CompiledClause, CompiledFlag, CompiledSegment, CompiledServe, CompiledSplit, Served, Test,
};
use crate::date::parse_rfc3339_millis;
use crate::murmur::bucket_of;
use crate::semver;
use crate::value::{AttrValue, Context};

/// Every flag of an environment compiled for evaluation. Built by
/// [`FlagSet::compile`](crate::FlagSet::compile); never changes afterwards, so one can be
/// shared by every thread (an SDK swaps in a new one when flags change).
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) flags: Box<[CompiledFlag]>,
    pub(crate) segments: Box<[CompiledSegment]>,
    /// Indices into `flags`, found by the FxHash of the key and confirmed against the key
    /// stored in the flag: a table of bare `u32`s keeps each key in memory once. FxHash is
    /// the right trade because keys are short and were validated when the set was written.
    pub(crate) by_key: HashTable<u32>,
    /// Shared by snapshots whose flags have the same keys in the same order, so a handle
    /// can trust its index after one pointer comparison. Held in an `Arc` by the handles
    /// too, so the address cannot be reused by another layout while a handle exists.
    pub(crate) layout: Arc<Layout>,
}

/// The identity of an order of flag keys; see [`Snapshot::keep_layout_of`].
#[derive(Debug)]
pub(crate) struct Layout;

/// A pre-resolved flag: its position in the snapshot it came from, and its key to check
/// that position (and to look it up again in a snapshot laid out differently).
#[derive(Clone, Debug)]
pub struct FlagHandle {
    /// Position in snapshots of `layout`; `None` when the flag did not exist there.
    pub(crate) index: Option<u32>,
    pub(crate) layout: Arc<Layout>,
    pub(crate) key: Arc<str>,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for super::FlagHandle {}
}

/// What names a flag for evaluation: its key (`&str`, `&String`) or a [`FlagHandle`].
pub trait FlagRef: sealed::Sealed {
    /// The flag's key (an SDK labels its evaluation counts with it).
    fn flag_key(&self) -> &str;

    #[doc(hidden)]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize>;
}

impl FlagRef for str {
    #[inline]
    fn flag_key(&self) -> &str {
        self
    }

    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        snapshot.index_of(self)
    }
}

impl FlagRef for String {
    #[inline]
    fn flag_key(&self) -> &str {
        self
    }

    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        snapshot.index_of(self)
    }
}

impl FlagRef for FlagHandle {
    #[inline]
    fn flag_key(&self) -> &str {
        &self.key
    }

    #[inline]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        if Arc::ptr_eq(&self.layout, &snapshot.layout) {
            return self.index.map(|i| i as usize);
        }
        match self.index.and_then(|i| snapshot.flags.get(i as usize)) {
            Some(flag) if *flag.key == *self.key => self.index.map(|i| i as usize),
            _ => snapshot.index_of(&self.key),
        }
    }
}

/// The hash the key table is built and searched with.
pub(crate) fn hash_key(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Key equality, compared eight bytes at a time in line: flag keys are short, and the call
/// to `memcmp` that `==` makes costs more than the comparison itself.
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let words_equal = a_words.by_ref().zip(b_words.by_ref()).all(|(x, y)| {
        u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])
            == u64::from_ne_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]])
    });
    words_equal && a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

/// Which variant a flag resolved to (or the caller's default), and why.
type Resolution<'s> = Result<(Served, Reason<'s>), EvalError>;

impl Snapshot {
    /// Evaluates a flag (by key or [`FlagHandle`]) for a context: the one entry point of
    /// evaluation, which every typed getter ([`Evaluate`](crate::Evaluate)) goes through.
    #[inline]
    pub fn evaluate<F: FlagRef + ?Sized>(&self, flag: &F, ctx: &Context<'_>) -> Evaluation<'_> {
        let Some(index) = flag.position_in(self) else {
            return Evaluation { variant: None, value: None, reason: Reason::FlagNotFound };
        };
        let compiled = &self.flags[index];
        let resolution: Resolution<'_> = self.resolve(compiled, ctx);
        match resolution.and_then(|(served, reason)| match served.index() {
            Some(v) => {
                compiled.variants.get(v as usize).map(|v| (Some(v), reason)).ok_or(EvalError::Internal)
            }
            None => Ok((None, reason)),
        }) {
            Ok((Some(variant), reason)) => {
                Evaluation { variant: Some(&variant.name), value: Some(&variant.value), reason }
            }
            // No variant, and not an error: the typed readings answer the caller's default.
            Ok((None, reason)) => Evaluation { variant: None, value: None, reason },
            Err(error) => Evaluation { variant: None, value: None, reason: Reason::Error(error) },
        }
    }

    /// The position of the flag with this key.
    #[inline]
    pub(crate) fn index_of(&self, key: &str) -> Option<usize> {
        let found = self.by_key.find(hash_key(key), |&i| same_key(&self.flags[i as usize].key, key));
        found.map(|&i| i as usize)
    }

    // Inlined into every caller: the common flag (no prerequisites, no rules) is then a
    // few branches and a hash, without a call.
    #[inline(always)]
    fn resolve(&self, flag: &CompiledFlag, ctx: &Context<'_>) -> Resolution<'_> {
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
        // The caller's default is no variant, so it never equals the one required.
        matches!(self.resolve(required, ctx), Ok((served, _)) if served.index() == Some(variant))
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
fn serve(serve: &CompiledServe, ctx: &Context<'_>) -> Result<(Served, Option<u32>), EvalError> {
    match serve {
        CompiledServe::Variant(served) => Ok((*served, None)),
        CompiledServe::Split(split) => split_variant(split, ctx).map(|(v, b)| (Served::variant(v), Some(b))),
    }
}

#[inline(always)]
fn split_variant(split: &CompiledSplit, ctx: &Context<'_>) -> Result<(u32, u32), EvalError> {
    // Whole numbers bucket like their decimal text, formatted here, on the stack.
    let mut digits = itoa::Buffer::new();
    let key = match &split.by {
        None => ctx.key(),
        Some(attribute) => match named_attribute(ctx, attribute) {
            Some(AttrValue::Str(s)) => s,
            // Below 2^63 the conversion to i64 is exact.
            Some(AttrValue::Number(n)) if n.fract() == 0.0 && n.abs() < 9_223_372_036_854_775_808.0 => {
                digits.format(n as i64)
            }
            _ => return Err(EvalError::MissingBucketAttribute),
        },
    };
    let bucket = bucket_of(split.input.hash(key), split.total);
    let variant = split.ranges.iter().find(|&&(upper, _)| bucket < upper).map(|&(_, variant)| variant);
    // The last range ends at the total and bucket < total, so some range always holds it.
    variant.map(|v| (v, bucket)).ok_or(EvalError::Internal)
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn same_key_compares_every_byte() {
        for (a, b) in
            [("", ""), ("chat", "chat"), ("flag-500", "flag-500"), ("checkout.v2-beta", "checkout.v2-beta")]
        {
            assert!(same_key(a, b), "{a} == {b}");
        }
        for (a, b) in [
            ("chat", "chad"),
            ("flag-500", "flag-501"),
            ("flag-5000", "flag-5001"),
            ("xlag-5000", "flag-5000"),
            ("flag-500", "flag-5000"),
            ("checkout.v2-betb", "checkout.v2-beta"),
        ] {
            assert!(!same_key(a, b), "{a} != {b}");
        }
    }
}
