// HOT PATH: everything in this module runs on every flag evaluation. No allocation
// (`format!`, `String`, `Vec` growth, `Box`), no locks, no shared atomics, no logging.
// `tests/zero_alloc.rs` counts allocations to hold this line.

//! A snapshot as evaluation reads it: the key table and the layout that handles trust, the
//! key lookup, and [`Snapshot::evaluate`] (and [`Snapshot::evaluate_indexed`]) — resolving
//! a compiled flag for a context to a variant and a reason. Building a snapshot and what
//! else it offers are in `snapshot.rs`; what an evaluation answers is in `answer.rs`; the
//! typed getters are in `typed.rs`.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::answer::{EvalError, Evaluation, Reason, VariantIndex};
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

    // The layout check in line (it is the whole cost of a handle), the rest out of line.
    #[inline(always)]
    fn position_in(&self, snapshot: &Snapshot) -> Option<usize> {
        if Arc::ptr_eq(&self.layout, &snapshot.layout) {
            return self.index.map(|i| i as usize);
        }
        self.position_in_other_layout(snapshot)
    }
}

impl FlagHandle {
    /// Where the flag is in a snapshot laid out differently from the handle's: at the same
    /// index if the key there is the handle's, else wherever the key lookup finds it.
    #[inline(never)]
    fn position_in_other_layout(&self, snapshot: &Snapshot) -> Option<usize> {
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
        self.evaluate_indexed(flag, ctx).0
    }

    /// [`evaluate`](Self::evaluate), also answering which of the snapshot's variants was
    /// served — `None` exactly when the evaluation's `variant` is — for holders that keep
    /// figures per variant (the SDK's evaluation counts). Where the index is not used it
    /// costs nothing: it is one addition to a field of the flag already read.
    // Inlined into every caller, so that the common flag's answer is read in registers, not
    // written to memory and read back; kept small for that by resolving flags with targeting
    // out of line.
    #[inline(always)]
    pub fn evaluate_indexed<F: FlagRef + ?Sized>(
        &self,
        flag: &F,
        ctx: &Context<'_>,
    ) -> (Evaluation<'_>, Option<VariantIndex>) {
        let Some(index) = flag.position_in(self) else {
            return (Evaluation { variant: None, value: None, reason: Reason::FlagNotFound }, None);
        };
        let compiled = &self.flags[index];
        let resolution: Resolution<'_> = if compiled.enabled && compiled.targeting.is_none() {
            // What `resolve` does for a flag that is on and has neither prerequisites nor
            // rules: its default serve.
            serve(&compiled.default, ctx).map(|(variant, bucket)| {
                (variant, bucket.map_or(Reason::Default, |bucket| Reason::Split { bucket }))
            })
        } else {
            self.resolve_targeted(compiled, ctx)
        };
        let failed = |error| Evaluation { variant: None, value: None, reason: Reason::Error(error) };
        match resolution {
            Ok((served, reason)) => match served.index() {
                Some(v) => match compiled.variants.get(v as usize) {
                    Some(variant) => (
                        Evaluation { variant: Some(&variant.name), value: Some(&variant.value), reason },
                        Some(VariantIndex(compiled.first_variant + v)),
                    ),
                    None => (failed(EvalError::Internal), None),
                },
                // No variant, and not an error: the typed readings answer the caller's default.
                None => (Evaluation { variant: None, value: None, reason }, None),
            },
            Err(error) => (failed(error), None),
        }
    }

    /// The position of the flag with this key.
    #[inline]
    pub(crate) fn index_of(&self, key: &str) -> Option<usize> {
        let found = self.by_key.find(hash_key(key), |&i| same_key(&self.flags[i as usize].key, key));
        found.map(|&i| i as usize)
    }

    /// `resolve` for flags that are off or have targeting, out of line so that
    /// [`evaluate_indexed`](Self::evaluate_indexed) stays small.
    #[inline(never)]
    fn resolve_targeted(&self, flag: &CompiledFlag, ctx: &Context<'_>) -> Resolution<'_> {
        self.resolve(flag, ctx)
    }

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
    let hash = match &split.by {
        None => split.input.hash(ctx.key()),
        Some(attribute) => hash_by_attribute(split, attribute, ctx)?,
    };
    let bucket = bucket_of(hash, split.total);
    // The range holding the bucket is picked without branching on the bucket: which range
    // a user falls in is as random as their key, so a search that branches on it
    // mispredicts as often as a rollout is partial (half the time at 50 %), and an index
    // computed from the bucket would make the variant's load wait for it. Each range's
    // variant is selected over the previous when the bucket reaches the range's start
    // (`select_unpredictable`: a conditional move, which the compiler otherwise turns into
    // a branch).
    let Some((&(mut start, mut variant), rest)) = split.ranges.split_first() else {
        return Err(EvalError::Internal);
    };
    for &(upper, next) in rest {
        variant = std::hint::select_unpredictable(bucket >= start, next, variant);
        start = upper;
    }
    // The last range ends at the total and bucket < total, so the last variant selected
    // is the range holding the bucket.
    Ok((variant, bucket))
}

/// The split's hash of the context's `attribute`; out of line, as most splits bucket by the
/// targeting key.
#[inline(never)]
fn hash_by_attribute(split: &CompiledSplit, attribute: &str, ctx: &Context<'_>) -> Result<u32, EvalError> {
    // Whole numbers bucket like their decimal text, formatted here, on the stack.
    let mut digits = itoa::Buffer::new();
    let key = match named_attribute(ctx, attribute) {
        Some(AttrValue::Str(s)) => s,
        // Below 2^63 the conversion to i64 is exact.
        Some(AttrValue::Number(n)) if n.fract() == 0.0 && n.abs() < 9_223_372_036_854_775_808.0 => {
            digits.format(n as i64)
        }
        _ => return Err(EvalError::MissingBucketAttribute),
    };
    Ok(split.input.hash(key))
}

#[cfg(test)]
mod tests {
    use super::same_key;
    use crate::{Context, Flag, FlagSet};

    #[test]
    fn the_variant_index_is_the_served_variant_in_the_order_of_variants() {
        let mut killed = Flag::rollout("killed", 50.0).unwrap();
        killed.enabled = false;
        let mut no_off_variant = killed.clone();
        (no_off_variant.key, no_off_variant.off_variant) = ("no-off-variant".into(), None);
        let flags = vec![
            Flag::rollout("half", 50.0).unwrap(),
            Flag::rollout("all", 100.0).unwrap(),
            killed,
            no_off_variant,
        ];
        let snapshot = FlagSet { flags, segments: vec![] }.compile().unwrap();
        let variants: Vec<(&str, &str)> = snapshot.variants().collect();
        assert_eq!(variants.len(), snapshot.variant_count());
        assert_eq!(variants.len(), 12, "three variants per flag");
        let mut served = std::collections::HashSet::new();
        for user in (0..200).map(|i| format!("user-{i}")) {
            for key in ["half", "all", "killed"] {
                let (evaluation, index) = snapshot.evaluate_indexed(key, &Context::new(&user));
                let index = index.unwrap().get();
                assert_eq!(variants[index], (key, evaluation.variant.unwrap()), "{key} for {user}");
                assert_eq!(evaluation, snapshot.evaluate(key, &Context::new(&user)));
                served.insert(index);
            }
            for key in ["no-off-variant", "missing"] {
                let (evaluation, index) = snapshot.evaluate_indexed(key, &Context::new(&user));
                assert_eq!((evaluation.variant, index), (None, None), "{key} serves no variant");
            }
        }
        // half: on and off; all: on; killed: off.
        assert_eq!(served.len(), 4);
    }

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
