//! Generators of valid random flag sets and contexts, with a small vocabulary so that
//! generated literals and context values meet often.

use flag_core::{
    AttrValue, Bucketing, Clause, Flag, FlagSet, Literal, Metadata, Operator, Prerequisite, Rule, Segment,
    SegmentRule, Serve, Split, Value, Variant, Weight,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Vocabulary. Small on purpose, so that generated literals and context values meet often.

pub(crate) const FLAG_KEYS: [&str; 6] = ["chat", "checkout", "search.v2", "beta_ui", "dark-mode", "pricing"];
pub(crate) const SEGMENT_KEYS: [&str; 2] = ["staff", "eu-users"];
pub(crate) const VARIANT_NAMES: [&str; 4] = ["on", "off", "dark", "blue"];
pub(crate) const TARGETING_KEYS: [&str; 6] =
    ["user-1", "user-2", "user-42", "alice@example.com", "us-east", ""];
/// Attributes rules test; `tenant` is never in a context, `key` is the targeting key.
pub(crate) const ATTRIBUTES: [&str; 8] =
    ["country", "plan", "age", "app_version", "signup", "beta", "key", "tenant"];
pub(crate) const CONTEXT_ATTRIBUTES: [&str; 7] =
    ["country", "plan", "age", "app_version", "signup", "beta", "key"];

pub(crate) const COUNTRIES: &[&str] = &["us-east", "us-west", "nz", "NZ", "de", "uk-london", ""];
pub(crate) const PLANS: &[&str] = &["free", "pro", "enterprise", "pro-trial", "user-1"];
pub(crate) const NUMERIC_STRINGS: &[&str] =
    &["30", " 42 ", "18.5", "abc", "-1", "1e1", "", "+42", "\t65\n", "NaN"];
pub(crate) const VERSIONS: &[&str] = &[
    "1.2.3",
    "1.2.3-beta.1",
    "1.2.3-beta.11",
    "1.2.3-alpha",
    "1.2.3-01",
    "1.10.0",
    "2.0.0",
    "2.0.0-rc.1",
    "1.2.3+build.5",
    "0.9.9",
    "v1.2.3",
    "01.2.3",
    "1.2",
];
pub(crate) const DATES: &[&str] = &[
    "2024-01-15",
    "2024-01-15T12:00:00Z",
    "2023-12-31T23:59:59Z",
    "2024-02-29T00:00:00Z",
    "2023-06-01",
    "1969-12-31T23:59:59Z",
    "2024-02-30",
    "1705320000",
    "yesterday",
];
pub(crate) const BOOL_STRINGS: &[&str] = &["true", "false", "TRUE"];
pub(crate) const NUMBERS: &[f64] = &[
    17.0,
    18.0,
    30.0,
    30.5,
    65.0,
    -1.0,
    0.0,
    -0.0,
    42.0,
    10.0,
    1_705_276_800.0, // 2024-01-15T00:00:00Z
    1_705_320_000.0, // 2024-01-15T12:00:00Z
    1_705_319_999.5,
    1_685_577_600.0, // 2023-06-01
];

/// Literals for `in`, `not_in`, `starts_with`, `ends_with`, `contains`, by attribute.
pub(crate) fn text_literals(attribute: &str) -> &'static [&'static str] {
    match attribute {
        "country" => &["us-", "us-east", "nz", "NZ", "east", "-west", "de", "-"],
        "plan" => &["pro", "free", "pro-trial", "enterprise", "-trial", "r"],
        "key" => &["user-1", "user-42", "user-", "alice@", ".com", "2", "us-east"],
        "age" => &["30", "30.0", "42", "18.5", "1e1", "abc", "-1", "0"],
        "beta" => &["true", "false", "TRUE", "1"],
        "app_version" => &["1.2.3", "1.2", "-beta", "2.", "v1.2.3"],
        _ => &["2024-01-15", "1705320000", "us-east", "pro", "30", "true"],
    }
}
pub(crate) const REGEX_LITERALS: &[&str] = &[
    "^us-",
    "^pro(-|$)",
    r"^\d+(\.\d+)?$",
    "-beta",
    "east$",
    "^[a-z]+$",
    "pro",
    r"^1\.",
    r"\d",
    "^user-[0-9]$",
    "(?i)^nz$",
    "^$",
    r"@example\.com$",
];
pub(crate) const NUMBER_LITERALS: &[&str] = &["18", "30", "30.5", "65", "-1", "0", "42", "1e1"];
pub(crate) const SEMVER_LITERALS: &[&str] =
    &["1.2.3", "1.10.0", "2.0.0-rc.1", "1.2.3-beta.1", "1.2.3-beta.2", "1.2.3-alpha", "0.9.9", "1.2.3+meta"];
pub(crate) const DATE_LITERALS: &[&str] =
    &["2024-01-15", "2024-01-15T12:00:00Z", "2023-06-01", "2024-02-29T00:00:00Z", "1970-01-01"];

pub(crate) const OPERATORS: [Operator; 20] = [
    Operator::In,
    Operator::NotIn,
    Operator::StartsWith,
    Operator::EndsWith,
    Operator::Contains,
    Operator::Regex,
    Operator::NumberEq,
    Operator::NumberLt,
    Operator::NumberLte,
    Operator::NumberGt,
    Operator::NumberGte,
    Operator::SemverEq,
    Operator::SemverLt,
    Operator::SemverLte,
    Operator::SemverGt,
    Operator::SemverGte,
    Operator::DateBefore,
    Operator::DateAfter,
    Operator::Exists,
    Operator::InSegment,
];

// ---------------------------------------------------------------------------------------------
// Strategies. Flags are generated as index soup and then built in order, so that every
// reference (segment, earlier flag, variant) points at something that exists.

#[derive(Clone, Debug)]
pub(crate) struct RawClause {
    attribute: &'static str,
    op: Operator,
    picks: Vec<usize>,
    negate: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum RawServe {
    Variant(usize),
    Split {
        variants: Vec<usize>,
        /// Cut points of 0..=100 000, scaled to `total`.
        cuts: Vec<u32>,
        total: u32,
        salt: Option<&'static str>,
        by: Option<&'static str>,
        bucketing: Bucketing,
    },
    CallerDefault,
}

#[derive(Clone, Debug)]
pub(crate) struct RawFlag {
    kind: usize,
    variants: usize,
    enabled: bool,
    /// `None`: no off variant, the caller's default.
    off: Option<usize>,
    rules: Vec<(Vec<RawClause>, RawServe)>,
    default: RawServe,
    prerequisites: Vec<(usize, usize)>,
}

/// The attributes an operator is usually written against.
pub(crate) fn typical_attributes(op: Operator) -> &'static [&'static str] {
    match op {
        Operator::NumberEq
        | Operator::NumberLt
        | Operator::NumberLte
        | Operator::NumberGt
        | Operator::NumberGte => &["age", "age", "signup"],
        Operator::SemverEq
        | Operator::SemverLt
        | Operator::SemverLte
        | Operator::SemverGt
        | Operator::SemverGte => &["app_version"],
        Operator::DateBefore | Operator::DateAfter => &["signup"],
        Operator::Exists | Operator::InSegment => &ATTRIBUTES,
        _ => &["country", "plan", "key", "age", "beta", "app_version"],
    }
}

/// Mostly an attribute that suits the operator; sometimes any (a type mismatch, or absent).
pub(crate) fn raw_clause(segments: bool) -> impl Strategy<Value = RawClause> {
    let ops = if segments { OPERATORS.to_vec() } else { OPERATORS[..19].to_vec() };
    (
        select(ops),
        any::<usize>(),
        prop::bool::weighted(0.2),
        vec(any::<usize>(), 1..=3),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(op, pick, wild, picks, negate)| {
            let attributes = if wild { &ATTRIBUTES[..] } else { typical_attributes(op) };
            RawClause { attribute: attributes[pick % attributes.len()], op, picks, negate }
        })
}

pub(crate) fn raw_serve() -> impl Strategy<Value = RawServe> {
    let cut = prop_oneof![Just(0u32), Just(100_000u32), 0u32..=100_000];
    // Percentages mostly; small totals, where cohorts are coarse; and the largest allowed.
    let total = prop_oneof![
        3 => Just(100_000u32),
        1 => 1u32..=10,
        1 => 1u32..=i32::MAX as u32,
        1 => Just(i32::MAX as u32),
    ];
    let bucketing = prop_oneof![Just(Bucketing::FlagdV2), Just(Bucketing::FlagdV3)];
    prop_oneof![
        4 => any::<usize>().prop_map(RawServe::Variant),
        4 => (
            vec(any::<usize>(), 1..=4),
            vec(cut, 3),
            total,
            // "chat" is also a flag key: a salt equal to the key is the unsalted split.
            prop::option::of(select(vec!["shared", "chat", "x", ""])),
            prop::option::weighted(
                0.4,
                select(vec!["key", "country", "age", "plan", "signup", "beta", "tenant"])
            ),
            bucketing,
        )
            .prop_map(|(variants, cuts, total, salt, by, bucketing)| RawServe::Split {
                variants,
                cuts,
                total,
                salt,
                by,
                bucketing,
            }),
        1 => Just(RawServe::CallerDefault),
    ]
}

pub(crate) fn raw_flag(segments: bool) -> impl Strategy<Value = RawFlag> {
    (
        0usize..3,
        2usize..=4,
        prop::bool::weighted(0.85),
        prop::option::weighted(0.75, any::<usize>()),
        vec((vec(raw_clause(segments), 0..=3), raw_serve()), 0..=4),
        raw_serve(),
        vec((any::<usize>(), any::<usize>()), 0..=2),
    )
        .prop_map(|(kind, variants, enabled, off, rules, default, prerequisites)| RawFlag {
            kind,
            variants,
            enabled,
            off,
            rules,
            default,
            prerequisites,
        })
}

type RawSegment = (Vec<&'static str>, Vec<&'static str>, Vec<Vec<RawClause>>);

pub(crate) fn raw_segment() -> impl Strategy<Value = RawSegment> {
    (
        vec(select(TARGETING_KEYS.to_vec()), 0..=2),
        vec(select(TARGETING_KEYS.to_vec()), 0..=2),
        vec(vec(raw_clause(false), 0..=3), 0..=2),
    )
}

pub(crate) fn flag_set() -> impl Strategy<Value = FlagSet> {
    (0usize..=2)
        .prop_flat_map(|segments| (vec(raw_segment(), segments), vec(raw_flag(segments > 0), 1..=6)))
        .prop_map(|(segments, flags)| build_set(&segments, &flags))
}

pub(crate) fn literals_for(op: Operator, attribute: &str, picks: &[usize], segments: usize) -> Vec<Literal> {
    let pool: &[&str] = match op {
        Operator::In | Operator::NotIn | Operator::StartsWith | Operator::EndsWith | Operator::Contains => {
            text_literals(attribute)
        }
        Operator::Regex => REGEX_LITERALS,
        Operator::NumberEq
        | Operator::NumberLt
        | Operator::NumberLte
        | Operator::NumberGt
        | Operator::NumberGte => NUMBER_LITERALS,
        Operator::SemverEq
        | Operator::SemverLt
        | Operator::SemverLte
        | Operator::SemverGt
        | Operator::SemverGte => SEMVER_LITERALS,
        Operator::DateBefore | Operator::DateAfter => DATE_LITERALS,
        Operator::InSegment => &SEGMENT_KEYS[..segments],
        _ => &[],
    };
    let mut literals: Vec<Literal> = Vec::new();
    for pick in picks {
        if let Some(text) = pool.get(pick % pool.len().max(1)) {
            literals.push(Literal::from(*text));
        }
    }
    literals
}

pub(crate) fn build_clause(raw: &RawClause, segments: usize) -> Clause {
    Clause {
        attribute: raw.attribute.into(),
        op: raw.op,
        values: literals_for(raw.op, raw.attribute, &raw.picks, segments),
        negate: raw.negate,
    }
}

pub(crate) fn build_serve(raw: &RawServe, variants: &[Variant]) -> Serve {
    match raw {
        RawServe::Variant(pick) => Serve::Variant(variants[pick % variants.len()].name.clone()),
        RawServe::CallerDefault => Serve::CallerDefault,
        RawServe::Split { variants: picks, cuts, total, salt, by, bucketing } => {
            let mut names: Vec<&str> = Vec::new();
            for pick in picks {
                let name = variants[pick % variants.len()].name.as_str();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            // n - 1 cut points of 0..=total split it into n weights (zeros included).
            let scale = |cut: u32| (i64::from(cut) * i64::from(*total)) / 100_000;
            let mut points: Vec<i64> = cuts[..names.len() - 1].iter().map(|&c| scale(c)).collect();
            points.sort_unstable();
            points.insert(0, 0);
            points.push(i64::from(*total));
            let weights = names
                .iter()
                .zip(points.windows(2))
                .map(|(name, pair)| Weight { variant: (*name).into(), weight: pair[1] - pair[0] })
                .collect();
            Serve::Split(Split {
                by: by.map(Into::into),
                salt: salt.map(Into::into),
                weights,
                bucketing: *bucketing,
            })
        }
    }
}

pub(crate) fn build_set(raw_segments: &[RawSegment], raw_flags: &[RawFlag]) -> FlagSet {
    let segments = raw_segments
        .iter()
        .zip(SEGMENT_KEYS)
        .map(|((included, excluded, rules), key)| Segment {
            key: key.into(),
            description: String::new(),
            included: included.iter().map(|k| (*k).into()).collect(),
            excluded: excluded.iter().map(|k| (*k).into()).collect(),
            rules: rules
                .iter()
                .map(|clauses| SegmentRule { clauses: clauses.iter().map(|c| build_clause(c, 0)).collect() })
                .collect(),
        })
        .collect();
    let mut flags: Vec<Flag> = Vec::new();
    for (raw, key) in raw_flags.iter().zip(FLAG_KEYS) {
        let variants: Vec<Variant> = (0..raw.variants)
            .map(|i| Variant {
                name: VARIANT_NAMES[i].into(),
                value: match raw.kind {
                    0 => Value::Bool(i % 3 == 0),
                    1 => Value::String(["a", "b", "c", "d"][i].into()),
                    _ => Value::Number([0.0, 1.5, -2.0, 100.0][i]),
                },
            })
            .collect();
        let mut prerequisites: Vec<Prerequisite> = Vec::new();
        if !flags.is_empty() {
            for (flag_pick, variant_pick) in &raw.prerequisites {
                let required: &Flag = &flags[flag_pick % flags.len()];
                if prerequisites.iter().all(|p| p.flag != required.key) {
                    prerequisites.push(Prerequisite {
                        flag: required.key.clone(),
                        variant: required.variants[variant_pick % required.variants.len()].name.clone(),
                    });
                }
            }
        }
        flags.push(Flag {
            key: key.into(),
            description: String::new(),
            off_variant: raw.off.map(|off| variants[off % variants.len()].name.clone()),
            enabled: raw.enabled,
            rules: raw
                .rules
                .iter()
                .map(|(clauses, serve)| Rule {
                    description: String::new(),
                    clauses: clauses.iter().map(|c| build_clause(c, raw_segments.len())).collect(),
                    serve: build_serve(serve, &variants),
                })
                .collect(),
            default: build_serve(&raw.default, &variants),
            prerequisites,
            version: 0,
            metadata: Metadata::default(),
            variants,
        });
    }
    FlagSet { flags, segments }
}

/// A context as owned-by-`'static` parts, so proptest can hold and shrink it.
#[derive(Clone, Debug)]
pub(crate) struct RawContext {
    pub(crate) key: &'static str,
    pub(crate) attributes: Vec<(&'static str, AttrValue<'static>)>,
}

pub(crate) fn any_attr_value() -> BoxedStrategy<AttrValue<'static>> {
    let strings: Vec<&'static str> =
        [COUNTRIES, PLANS, NUMERIC_STRINGS, VERSIONS, DATES, BOOL_STRINGS].concat();
    prop_oneof![
        select(strings).prop_map(AttrValue::Str),
        select(NUMBERS.to_vec()).prop_map(AttrValue::Number),
        any::<bool>().prop_map(AttrValue::Bool),
    ]
    .boxed()
}

/// Values typical of the attribute most of the time, anything (other types too) otherwise.
pub(crate) fn attr_value_for(name: &'static str) -> BoxedStrategy<AttrValue<'static>> {
    let typical: BoxedStrategy<AttrValue<'static>> = match name {
        "country" => select(COUNTRIES).prop_map(AttrValue::Str).boxed(),
        "plan" => select(PLANS).prop_map(AttrValue::Str).boxed(),
        "age" => prop_oneof![
            3 => select(NUMBERS.to_vec()).prop_map(AttrValue::Number),
            1 => select(NUMERIC_STRINGS).prop_map(AttrValue::Str),
        ]
        .boxed(),
        "app_version" => select(VERSIONS).prop_map(AttrValue::Str).boxed(),
        "signup" => prop_oneof![
            select(DATES).prop_map(AttrValue::Str),
            select(NUMBERS.to_vec()).prop_map(AttrValue::Number),
        ]
        .boxed(),
        "beta" => prop_oneof![
            3 => any::<bool>().prop_map(AttrValue::Bool),
            1 => select(BOOL_STRINGS).prop_map(AttrValue::Str),
        ]
        .boxed(),
        _ => select(TARGETING_KEYS.to_vec()).prop_map(AttrValue::Str).boxed(),
    };
    prop_oneof![3 => typical, 1 => any_attr_value()].boxed()
}

/// Each attribute present with probability 3/4, then up to two more of any name (a later
/// duplicate is ignored; a `key` attribute is shadowed by the targeting key), shuffled.
pub(crate) fn context() -> impl Strategy<Value = RawContext> {
    let present = CONTEXT_ATTRIBUTES[..6]
        .iter()
        .map(|&name| prop::option::weighted(0.75, attr_value_for(name).prop_map(move |value| (name, value))))
        .collect::<Vec<_>>();
    let extra = select(CONTEXT_ATTRIBUTES.to_vec())
        .prop_flat_map(|name| attr_value_for(name).prop_map(move |value| (name, value)));
    (select(TARGETING_KEYS.to_vec()), present, vec(extra, 0..=2)).prop_flat_map(|(key, present, extra)| {
        let attributes: Vec<_> = present.into_iter().flatten().chain(extra).collect();
        Just(attributes).prop_shuffle().prop_map(move |attributes| RawContext { key, attributes })
    })
}
