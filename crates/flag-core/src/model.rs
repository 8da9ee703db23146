//! The flag model as people write it (YAML or JSON) and as it travels between crates.
//!
//! These types are plain data: nothing here is checked until [`FlagSet::compile`] (or
//! [`FlagSet::validate`]) runs, which reports every problem with the path of its field.

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// Every flag and segment of one environment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSet {
    /// The flags, in any order; keys must be unique.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Named groups of users that rules refer to with `in_segment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
}

/// One feature flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// Unique within the environment: letters, digits, `_`, `.`, `-`; at most 128 bytes.
    pub key: String,
    /// What the flag guards, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The values the flag can serve, in order; all of one type.
    pub variants: Vec<Variant>,
    /// `false` kills the flag: everyone gets `off_variant`.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// What everyone gets while the flag is killed or a prerequisite fails; `None` serves
    /// no variant then, so each caller gets its own default (flagd's `DISABLED` flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<String>,
    /// Targeting rules; the first whose clauses all hold decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// What everyone else gets.
    pub default: Serve,
    /// Flags that must resolve to given variants before this one is evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// The stored version; 0 for a flag that was never stored.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
    /// Ownership and lifecycle facts; never affects evaluation.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

fn enabled_by_default() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A named value a flag can serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Unique within the flag.
    pub name: String,
    /// The value served.
    pub value: Value,
}

/// What a rule or the default serves: one variant, a split over several, or no variant.
///
/// Written as a map with exactly one key: `{ variant: on }`, `{ split: { weights: … } }` or
/// `{ caller_default: true }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ServeRepr", into = "ServeRepr")]
pub enum Serve {
    /// Everyone gets this variant.
    Variant(String),
    /// Users are bucketed over weighted variants.
    Split(Split),
    /// No variant: each caller gets the default it passed (flagd's flag without a
    /// `defaultVariant`).
    CallerDefault,
}

/// The written form of [`Serve`]: the same in every format (YAML's tagged enums are not
/// something people write by hand).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split: Option<Split>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller_default: Option<bool>,
}

impl TryFrom<ServeRepr> for Serve {
    type Error = &'static str;

    fn try_from(repr: ServeRepr) -> Result<Self, Self::Error> {
        match repr {
            ServeRepr { variant: Some(variant), split: None, caller_default: None } => {
                Ok(Serve::Variant(variant))
            }
            ServeRepr { variant: None, split: Some(split), caller_default: None } => Ok(Serve::Split(split)),
            ServeRepr { variant: None, split: None, caller_default: Some(true) } => Ok(Serve::CallerDefault),
            // `false` would read as "serve something else" without saying what.
            ServeRepr { caller_default: Some(false), .. } => {
                Err("expected `caller_default: true`; to serve a variant, write `variant` instead")
            }
            _ => Err("expected exactly one of `variant`, `split` or `caller_default`"),
        }
    }
}

impl From<Serve> for ServeRepr {
    fn from(serve: Serve) -> Self {
        let none = ServeRepr { variant: None, split: None, caller_default: None };
        match serve {
            Serve::Variant(variant) => ServeRepr { variant: Some(variant), ..none },
            Serve::Split(split) => ServeRepr { split: Some(split), ..none },
            Serve::CallerDefault => ServeRepr { caller_default: Some(true), ..none },
        }
    }
}

/// A weighted split. Weights may total any whole number from 1 to 2^31 − 1; percentages
/// are written in units of 1/1000 % totalling [`TOTAL_WEIGHT`](crate::TOTAL_WEIGHT)
/// (100 000), so `5000` is 5 % there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The attribute to bucket by; the targeting key when absent. Use a tenant id here to
    /// switch a feature on for whole organisations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Hashed in front of the bucket key; the flag key when absent. Two flags with the same
    /// salt put the same users in the same buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// In order: a user gets the first variant whose cumulative weight exceeds their bucket,
    /// so growing an earlier weight only ever moves users into it (ramps are monotonic).
    pub weights: Vec<Weight>,
    /// Which bytes are hashed; `flagd-v2` (today's cohorts) when absent.
    #[serde(default, skip_serializing_if = "Bucketing::is_default")]
    pub bucketing: Bucketing,
}

impl Split {
    /// The sum of the weights, which a bucket is taken out of (saturating, so that an
    /// unvalidated split cannot overflow).
    pub fn total_weight(&self) -> i64 {
        self.weights.iter().fold(0i64, |total, w| total.saturating_add(w.weight))
    }
}

/// Which bytes a [`Split`] hashes, named after the OpenFeature flagd rule each reproduces.
///
/// Exhaustive on purpose: a rule decides who gets what, so every crate that carries one
/// must be told of a new one at build time rather than fall back to another.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bucketing {
    /// murmur3 of `salt ++ bucket key`: flagd's `fractional` before its
    /// non-string-randomisation-unit change, and every cohort stored before this choice.
    #[default]
    #[serde(rename = "flagd-v2")]
    FlagdV2,
    /// murmur3 of the deterministic CBOR encoding of the bucketing value: the CBOR array
    /// `[flag key, targeting key]` when the split has no `by` and is salted with its flag
    /// key, otherwise the CBOR text string `salt ++ bucket key` (see docs/flag-model.md).
    #[serde(rename = "flagd-v3")]
    FlagdV3,
}

impl Bucketing {
    fn is_default(&self) -> bool {
        *self == Bucketing::default()
    }
}

/// One variant's share of a [`Split`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weight {
    /// The variant's name.
    pub variant: String,
    /// Its share of the split's total (signed so that a negative weight is reported, not
    /// misread); in 1/1000 % where the total is 100 000.
    pub weight: i64,
}

/// A targeting rule: when every clause holds, `serve` decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for people and evaluation reasons.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// All must hold; an empty list always holds.
    pub clauses: Vec<Clause>,
    /// What matching users get.
    pub serve: Serve,
}

/// One test on one context attribute.
///
/// The attribute matches when it matches any of `values`; `negate` inverts that. A clause on
/// an attribute the context lacks never holds, negated or not — except `exists`, which
/// is exactly the question "is it there?".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// The attribute tested; `key` is the targeting key.
    pub attribute: String,
    /// How it is tested.
    pub op: Operator,
    /// The literals it is tested against (written as strings or numbers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Literal>,
    /// Inverts the result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
}

/// How a [`Clause`] tests its attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operator {
    /// Equal to one of the values (numbers compare as numbers, bools as `true`/`false`).
    In,
    /// Equal to none of the values.
    NotIn,
    /// A string starting with one of the values.
    StartsWith,
    /// A string ending with one of the values.
    EndsWith,
    /// A string containing one of the values.
    Contains,
    /// A string matched by one of the regular expressions (unanchored; `regex` crate syntax).
    Regex,
    /// A number (or numeric string) equal to one of the values.
    NumberEq,
    /// A number less than one of the values.
    NumberLt,
    /// A number at most one of the values.
    NumberLte,
    /// A number greater than one of the values.
    NumberGt,
    /// A number at least one of the values.
    NumberGte,
    /// A semantic version (`1.2.3-beta.1`) of the same precedence as one of the values.
    SemverEq,
    /// A semantic version older than one of the values.
    SemverLt,
    /// A semantic version not newer than one of the values.
    SemverLte,
    /// A semantic version newer than one of the values.
    SemverGt,
    /// A semantic version not older than one of the values.
    SemverGte,
    /// A time (RFC 3339 string or Unix seconds) before one of the values.
    DateBefore,
    /// A time (RFC 3339 string or Unix seconds) after one of the values.
    DateAfter,
    /// The attribute is present (values must be empty).
    Exists,
    /// The context is in one of the named segments (the attribute is not consulted).
    InSegment,
}

/// A clause literal. Written as a string, number or bool; kept as text and parsed for
/// the clause's operator when the flag is compiled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "String")]
pub struct Literal(pub String);

impl TryFrom<serde_json::Value> for Literal {
    type Error = String;

    fn try_from(json: serde_json::Value) -> Result<Self, Self::Error> {
        match json {
            serde_json::Value::String(s) => Ok(Literal(s)),
            serde_json::Value::Number(n) => Ok(Literal(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Literal(b.to_string())),
            other => Err(format!("a clause value must be a string, number or bool, not {other}")),
        }
    }
}

impl From<Literal> for String {
    fn from(literal: Literal) -> Self {
        literal.0
    }
}

impl From<&str> for Literal {
    fn from(s: &str) -> Self {
        Literal(s.to_owned())
    }
}

/// This flag is only evaluated when flag `flag` resolves to `variant`; otherwise it serves
/// its off variant (or, without one, the caller's default). A flag answering the caller's
/// default resolves to no variant, so it never meets a prerequisite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    /// The key of the flag required.
    pub flag: String,
    /// The variant it must resolve to.
    pub variant: String,
}

/// Facts about a flag for the people who own it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Who to ask about the flag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Free-form labels for filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What the flag is for; decides how long it is expected to live.
    #[serde(default)]
    pub kind: FlagKind,
    /// When the flag was first stored (RFC 3339), set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the flag was last stored (RFC 3339), set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl Metadata {
    fn is_empty(&self) -> bool {
        *self == Metadata::default()
    }
}

/// What a flag is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlagKind {
    /// Guards a change on its way out; removed once fully rolled out.
    #[default]
    Release,
    /// Compares variants.
    Experiment,
    /// A long-lived switch for operations (kill switches, load shedding).
    Operational,
    /// Grants a capability to some users.
    Permission,
}

/// A named group of users, referred to by `in_segment` clauses.
///
/// A context is in the segment when its key is `included`; otherwise not when it is
/// `excluded`; otherwise when any rule holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Unique within the environment, same syntax as flag keys.
    pub key: String,
    /// What the group is, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Targeting keys always in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Targeting keys never in the segment (unless also included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// A context matching every clause of any rule is in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SegmentRule>,
}

/// A segment membership rule: every clause must hold. `in_segment` is not allowed here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    /// All must hold.
    pub clauses: Vec<Clause>,
}
