//! The compiled form of flags and segments: everything parsed, resolved to indices and
//! laid out for evaluation. Built only by `compile.rs`; read by `evaluate.rs` (and by
//! `snapshot.rs`, for keys and kinds).

use regex::Regex;
use rustc_hash::FxHashSet;

use crate::bucketing::BucketInput;
use crate::semver::OwnedSemver;
use crate::value::{Value, ValueKind};

#[derive(Debug)]
pub(crate) struct CompiledFlag {
    pub(crate) key: Box<str>,
    pub(crate) kind: ValueKind,
    pub(crate) enabled: bool,
    pub(crate) off_variant: Served,
    pub(crate) variants: Box<[CompiledVariant]>,
    /// The [`VariantIndex`](crate::VariantIndex) of `variants[0]`: a flag's variants are
    /// numbered consecutively across the snapshot. Set by `Snapshot::new`, which sees every
    /// flag.
    pub(crate) first_variant: u32,
    /// `None` for the many flags without prerequisites or rules: one pointer instead of two
    /// empty slices keeps large snapshots small.
    pub(crate) targeting: Option<Box<Targeting>>,
    pub(crate) default: CompiledServe,
}

/// A variant index, or no variant — the caller's default. A niche rather than an
/// `Option<u32>`, so a flag is no larger for being able to serve nothing: `u32::MAX` is
/// never an index, as a flag cannot hold 2^32 − 1 variants in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Served(u32);

impl Served {
    pub(crate) const CALLER_DEFAULT: Served = Served(u32::MAX);

    pub(crate) fn variant(index: u32) -> Served {
        Served(index)
    }

    /// The variant's index; `None` for the caller's default.
    #[inline(always)]
    pub(crate) fn index(self) -> Option<u32> {
        (self != Served::CALLER_DEFAULT).then_some(self.0)
    }
}

#[derive(Debug)]
pub(crate) struct Targeting {
    pub(crate) prerequisites: Box<[CompiledPrerequisite]>,
    pub(crate) rules: Box<[CompiledRule]>,
}

impl CompiledFlag {
    pub(crate) fn prerequisites(&self) -> &[CompiledPrerequisite] {
        self.targeting.as_ref().map_or(&[], |t| &t.prerequisites)
    }

    pub(crate) fn rules(&self) -> &[CompiledRule] {
        self.targeting.as_ref().map_or(&[], |t| &t.rules)
    }
}

#[derive(Debug)]
pub(crate) struct CompiledVariant {
    pub(crate) name: Box<str>,
    pub(crate) value: Value,
}

#[derive(Debug)]
pub(crate) struct CompiledPrerequisite {
    /// Index of the required flag in the snapshot.
    pub(crate) flag: u32,
    /// Index of the required variant in that flag.
    pub(crate) variant: u32,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) clauses: Box<[CompiledClause]>,
    pub(crate) serve: CompiledServe,
}

#[derive(Debug)]
pub(crate) enum CompiledServe {
    /// One variant for everyone, or the caller's default for everyone.
    Variant(Served),
    // Boxed: most serves are a single variant, and the split is much larger.
    Split(Box<CompiledSplit>),
}

#[derive(Debug)]
pub(crate) struct CompiledSplit {
    /// Bucket by this attribute instead of the targeting key.
    pub(crate) by: Option<Box<str>>,
    /// The bytes hashed around the bucket key, as much of them consumed as compilation can.
    pub(crate) input: BucketInput,
    /// The sum of the weights (1 to 2^31 − 1): buckets are `0..total`.
    pub(crate) total: u32,
    /// (exclusive upper bound of the cumulative weight, variant index); zero weights
    /// dropped, the last bound equal to `total`.
    pub(crate) ranges: Box<[(u32, u32)]>,
}

#[derive(Debug)]
pub(crate) struct CompiledClause {
    pub(crate) attribute: AttributeRef,
    pub(crate) negate: bool,
    pub(crate) test: Test,
}

#[derive(Debug)]
pub(crate) enum AttributeRef {
    /// The context's targeting key, without a name lookup.
    Key,
    Named(Box<str>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Comparison {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Comparison {
    #[inline]
    pub(crate) fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Comparison::Eq => ordering == Equal,
            Comparison::Lt => ordering == Less,
            Comparison::Lte => ordering != Greater,
            Comparison::Gt => ordering == Greater,
            Comparison::Gte => ordering != Less,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Test {
    /// Equality with any literal: strings as a set, plus the literals that are numbers.
    In {
        strings: StringSet,
        numbers: Box<[f64]>,
    },
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    Contains(Box<[Box<str>]>),
    Regex(Box<[Regex]>),
    Number(Comparison, Box<[f64]>),
    Semver(Comparison, Box<[OwnedSemver]>),
    /// Unix milliseconds.
    Before(Box<[i64]>),
    After(Box<[i64]>),
    Exists,
    InSegment(Box<[u32]>),
}

/// Beyond this many values a hash set beats a linear scan of short strings.
pub(crate) const LINEAR_SCAN_LIMIT: usize = 16;

#[derive(Debug)]
pub(crate) enum StringSet {
    Few(Box<[Box<str>]>),
    Many(FxHashSet<Box<str>>),
}

impl StringSet {
    pub(crate) fn new(values: Vec<Box<str>>) -> Self {
        if values.len() <= LINEAR_SCAN_LIMIT {
            StringSet::Few(values.into_boxed_slice())
        } else {
            StringSet::Many(values.into_iter().collect())
        }
    }

    #[inline]
    pub(crate) fn contains(&self, candidate: &str) -> bool {
        match self {
            StringSet::Few(values) => values.iter().any(|value| &**value == candidate),
            StringSet::Many(values) => values.contains(candidate),
        }
    }
}

#[derive(Debug)]
pub(crate) struct CompiledSegment {
    pub(crate) included: StringSet,
    pub(crate) excluded: StringSet,
    /// Each rule is a conjunction of clauses; any rule admits.
    pub(crate) rules: Box<[Box<[CompiledClause]>]>,
}
