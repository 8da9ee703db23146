//! The compiled evaluator agrees with a naive reference evaluator written from the model's docs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reference;

use std::cell::RefCell;
use std::collections::BTreeMap;

use flag_core::{
    AttrValue, Clause, Context, EvalError, Flag, FlagSet, LaunchStage, Literal, Metadata, Operator,
    Prerequisite, Rule, Segment, SegmentRule, Serve, Split, Value, Variant, Weight,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use reference::RefReason;

// ---------------------------------------------------------------------------------------------
// Vocabulary. Small on purpose, so that generated literals and context values meet often.

const FLAG_KEYS: [&str; 6] = ["chat", "checkout", "search.v2", "beta_ui", "dark-mode", "pricing"];
const SEGMENT_KEYS: [&str; 2] = ["staff", "eu-users"];
const VARIANT_NAMES: [&str; 4] = ["on", "off", "dark", "blue"];
const TARGETING_KEYS: [&str; 6] = ["user-1", "user-2", "user-42", "alice@example.com", "us-east", ""];
/// Attributes rules test; `tenant` is never in a context, `key` is the targeting key.
const ATTRIBUTES: [&str; 8] = ["country", "plan", "age", "app_version", "signup", "beta", "key", "tenant"];
const CONTEXT_ATTRIBUTES: [&str; 7] = ["country", "plan", "age", "app_version", "signup", "beta", "key"];

const COUNTRIES: &[&str] = &["us-east", "us-west", "nz", "NZ", "de", "uk-london", ""];
const PLANS: &[&str] = &["free", "pro", "enterprise", "pro-trial", "user-1"];
const NUMERIC_STRINGS: &[&str] = &["30", " 42 ", "18.5", "abc", "-1", "1e1", "", "+42", "\t65\n", "NaN"];
const VERSIONS: &[&str] = &[
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
const DATES: &[&str] = &[
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
const BOOL_STRINGS: &[&str] = &["true", "false", "TRUE"];
const NUMBERS: &[f64] = &[
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
fn text_literals(attribute: &str) -> &'static [&'static str] {
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
const REGEX_LITERALS: &[&str] = &[
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
const NUMBER_LITERALS: &[&str] = &["18", "30", "30.5", "65", "-1", "0", "42", "1e1"];
const SEMVER_LITERALS: &[&str] =
    &["1.2.3", "1.10.0", "2.0.0-rc.1", "1.2.3-beta.1", "1.2.3-beta.2", "1.2.3-alpha", "0.9.9", "1.2.3+meta"];
const DATE_LITERALS: &[&str] =
    &["2024-01-15", "2024-01-15T12:00:00Z", "2023-06-01", "2024-02-29T00:00:00Z", "1970-01-01"];

const OPERATORS: [Operator; 20] = [
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
struct RawClause {
    attribute: &'static str,
    op: Operator,
    picks: Vec<usize>,
    negate: bool,
}

#[derive(Clone, Debug)]
enum RawServe {
    Variant(usize),
    Split { variants: Vec<usize>, cuts: Vec<u32>, salt: Option<&'static str>, by: Option<&'static str> },
}

#[derive(Clone, Debug)]
struct RawFlag {
    kind: usize,
    variants: usize,
    enabled: bool,
    off: usize,
    rules: Vec<(Vec<RawClause>, RawServe)>,
    default: RawServe,
    prerequisites: Vec<(usize, usize)>,
}

/// The attributes an operator is usually written against.
fn typical_attributes(op: Operator) -> &'static [&'static str] {
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
fn raw_clause(segments: bool) -> impl Strategy<Value = RawClause> {
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

fn raw_serve() -> impl Strategy<Value = RawServe> {
    let cut = prop_oneof![Just(0u32), Just(100_000u32), 0u32..=100_000];
    prop_oneof![
        any::<usize>().prop_map(RawServe::Variant),
        (
            vec(any::<usize>(), 1..=4),
            vec(cut, 3),
            prop::option::of(select(vec!["shared", "chat", "x", ""])),
            prop::option::weighted(
                0.4,
                select(vec!["key", "country", "age", "plan", "signup", "beta", "tenant"])
            ),
        )
            .prop_map(|(variants, cuts, salt, by)| RawServe::Split { variants, cuts, salt, by }),
    ]
}

fn raw_flag(segments: bool) -> impl Strategy<Value = RawFlag> {
    (
        0usize..3,
        2usize..=4,
        prop::bool::weighted(0.85),
        any::<usize>(),
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

fn raw_segment() -> impl Strategy<Value = RawSegment> {
    (
        vec(select(TARGETING_KEYS.to_vec()), 0..=2),
        vec(select(TARGETING_KEYS.to_vec()), 0..=2),
        vec(vec(raw_clause(false), 0..=3), 0..=2),
    )
}

fn flag_set() -> impl Strategy<Value = FlagSet> {
    (0usize..=2)
        .prop_flat_map(|segments| (vec(raw_segment(), segments), vec(raw_flag(segments > 0), 1..=6)))
        .prop_map(|(segments, flags)| build_set(&segments, &flags))
}

fn literals_for(op: Operator, attribute: &str, picks: &[usize], segments: usize) -> Vec<Literal> {
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

fn build_clause(raw: &RawClause, segments: usize) -> Clause {
    Clause {
        attribute: raw.attribute.into(),
        op: raw.op,
        values: literals_for(raw.op, raw.attribute, &raw.picks, segments),
        negate: raw.negate,
    }
}

fn build_serve(raw: &RawServe, variants: &[Variant]) -> Serve {
    match raw {
        RawServe::Variant(pick) => Serve::Variant(variants[pick % variants.len()].name.clone()),
        RawServe::Split { variants: picks, cuts, salt, by } => {
            let mut names: Vec<&str> = Vec::new();
            for pick in picks {
                let name = variants[pick % variants.len()].name.as_str();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            // n - 1 cut points of 0..=100 000 split the total into n weights (zeros included).
            let mut points: Vec<i64> = cuts[..names.len() - 1].iter().map(|&c| i64::from(c)).collect();
            points.sort_unstable();
            points.insert(0, 0);
            points.push(100_000);
            let weights = names
                .iter()
                .zip(points.windows(2))
                .map(|(name, pair)| Weight { variant: (*name).into(), weight: pair[1] - pair[0] })
                .collect();
            Serve::Split(Split { by: by.map(Into::into), salt: salt.map(Into::into), weights })
        }
    }
}

fn build_set(raw_segments: &[RawSegment], raw_flags: &[RawFlag]) -> FlagSet {
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
            off_variant: variants[raw.off % variants.len()].name.clone(),
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
struct RawContext {
    key: &'static str,
    attributes: Vec<(&'static str, AttrValue<'static>)>,
}

fn any_attr_value() -> BoxedStrategy<AttrValue<'static>> {
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
fn attr_value_for(name: &'static str) -> BoxedStrategy<AttrValue<'static>> {
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
fn context() -> impl Strategy<Value = RawContext> {
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

// ---------------------------------------------------------------------------------------------
// Properties.

/// Evaluates every flag (and one unknown key) of `set` for every context with both
/// evaluators; on disagreement, fails with the set as YAML. Tallies the reasons seen.
fn check_agreement(
    set: &FlagSet,
    contexts: &[RawContext],
    seen: &RefCell<BTreeMap<String, usize>>,
) -> Result<(), TestCaseError> {
    let snapshot = match set.compile() {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let yaml = serde_yaml_ng::to_string(set).unwrap();
            return Err(TestCaseError::fail(format!("generated set does not compile: {error}\n{yaml}")));
        }
    };
    let keys = set.flags.iter().map(|flag| flag.key.as_str()).chain(["no-such-flag"]);
    for key in keys {
        for raw in contexts {
            let ctx = Context::new(raw.key).with_attributes(&raw.attributes);
            let evaluation = snapshot.evaluate(key, &ctx);
            let compiled = (evaluation.variant.map(str::to_owned), RefReason::from(evaluation.reason));
            let expected = reference::evaluate(set, key, &ctx);
            if compiled != expected {
                let yaml = serde_yaml_ng::to_string(set).unwrap();
                return Err(TestCaseError::fail(format!(
                    "flag {key:?}, context {raw:?}:\n  compiled  {compiled:?}\n  reference {expected:?}\n{yaml}"
                )));
            }
            let label = match &expected.1 {
                RefReason::TargetMatch { bucket: Some(_), .. } => "TargetMatch(split)".to_owned(),
                RefReason::TargetMatch { bucket: None, .. } => "TargetMatch".to_owned(),
                RefReason::Split { .. } => "Split".to_owned(),
                RefReason::PrerequisiteFailed(_) => "PrerequisiteFailed".to_owned(),
                other => format!("{other:?}"),
            };
            *seen.borrow_mut().entry(label).or_default() += 1;
        }
    }
    Ok(())
}

#[test]
fn compiled_evaluator_agrees_with_the_reference() {
    let seen = RefCell::new(BTreeMap::new());
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1024);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (flag_set(), vec(context(), 1..=6));
    if let Err(failure) = runner.run(&strategy, |(set, contexts)| check_agreement(&set, &contexts, &seen)) {
        panic!("{failure}");
    }
    // The generator must reach every way an evaluation can end, or agreement proves little.
    let seen = seen.into_inner();
    for reason in [
        "Disabled",
        "TargetMatch",
        "TargetMatch(split)",
        "Split",
        "Default",
        "PrerequisiteFailed",
        "FlagNotFound",
        "Error(MissingBucketAttribute)",
    ] {
        assert!(seen.get(reason).is_some_and(|&n| n >= 20), "reason {reason} too rare: {seen:?}");
    }
}

/// The `(percent, dark percent)` pairs of two ramps, the second a step up from the first.
fn ramp_steps() -> impl Strategy<Value = ((f64, f64), (f64, f64))> {
    let percent = prop_oneof![Just(0.0), Just(100.0), (0u32..=100_000).prop_map(|w| f64::from(w) / 1000.0)];
    (percent.clone(), percent.clone(), percent.clone(), percent).prop_map(|(a, b, c, d)| {
        let (p1, p2) = (a.min(b), a.max(b));
        let (d1, d2) = (c.min(d), c.max(d));
        let d1 = d1.max(p1);
        ((p1, d1), (p2, d2.max(p2).max(d1)))
    })
}

fn stage(set: &FlagSet, key: &str) -> LaunchStage {
    set.compile().unwrap().launch_stage("chat", &Context::new(key))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Raising either percentage of a dark launch never moves a user out: `on` stays `on`,
    /// and whoever runs the new path (`on` or `dark`) keeps running it.
    #[test]
    fn dark_launch_ramps_are_monotonic(
        ((p1, d1), (p2, d2)) in ramp_steps(),
        keys in vec("[a-z0-9@.-]{0,12}", 1..=8),
    ) {
        let before = FlagSet { flags: vec![Flag::dark_launch("chat", p1, d1).unwrap()], segments: vec![] };
        let after = FlagSet { flags: vec![Flag::dark_launch("chat", p2, d2).unwrap()], segments: vec![] };
        for key in &keys {
            let (was, is) = (stage(&before, key), stage(&after, key));
            if was == LaunchStage::On {
                prop_assert_eq!(is, LaunchStage::On, "key {:?}", key);
            }
            if was != LaunchStage::Off {
                prop_assert_ne!(is, LaunchStage::Off, "key {:?}", key);
            }
            // And the cohort is the one the bucketing rule gives.
            let bucket = reference::bucket_of(&format!("chat{key}"));
            let expected = if f64::from(bucket) < (p2 * 1000.0).round() {
                LaunchStage::On
            } else if f64::from(bucket) < (d2 * 1000.0).round() {
                LaunchStage::Dark
            } else {
                LaunchStage::Off
            };
            prop_assert_eq!(is, expected, "key {:?}, bucket {}", key, bucket);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A hand-made set, with answers worked out by hand from the bucket table in ARCHITECTURE.md:
// "chat" ++ "user-1" → 8 328, "chat" ++ "user-42" → 68 275, "hello" → 14 276.

fn clause(attribute: &str, op: Operator, values: &[&str]) -> Clause {
    Clause {
        attribute: attribute.into(),
        op,
        values: values.iter().map(|v| (*v).into()).collect(),
        negate: false,
    }
}

fn split(by: Option<&str>, salt: Option<&str>, weights: &[(&str, i64)]) -> Serve {
    Serve::Split(Split {
        by: by.map(Into::into),
        salt: salt.map(Into::into),
        weights: weights.iter().map(|(v, w)| Weight { variant: (*v).into(), weight: *w }).collect(),
    })
}

fn flag(key: &str, variants: &[&str], off: &str, rules: Vec<Rule>, default: Serve) -> Flag {
    Flag {
        key: key.into(),
        description: String::new(),
        variants: variants
            .iter()
            .map(|name| Variant { name: (*name).into(), value: Value::String((*name).into()) })
            .collect(),
        enabled: true,
        off_variant: off.into(),
        rules,
        default,
        prerequisites: Vec::new(),
        version: 0,
        metadata: Metadata::default(),
    }
}

fn rule(clauses: Vec<Clause>, serve: Serve) -> Rule {
    Rule { description: String::new(), clauses, serve }
}

fn prerequisite(flag: &str, variant: &str) -> Prerequisite {
    Prerequisite { flag: flag.into(), variant: variant.into() }
}

#[test]
fn prerequisite_chain_segment_and_split_by_attribute() {
    // gate: on for the `staff` segment (alice always, user-42 never, else a `nz-` country).
    let gate = flag(
        "gate",
        &["on", "off"],
        "off",
        vec![rule(vec![clause("key", Operator::InSegment, &["staff"])], Serve::Variant("on".into()))],
        Serve::Variant("off".into()),
    );
    // chat: needs gate = on. Pro users are split by `org`, salted "chat"; everyone else by
    // key with the default salt (the flag key, "chat"): 70 % new.
    let mut chat = flag(
        "chat",
        &["new", "old", "none"],
        "none",
        vec![rule(
            vec![clause("plan", Operator::In, &["pro"])],
            split(Some("org"), Some("chat"), &[("new", 10_000), ("old", 90_000)]),
        )],
        split(None, None, &[("new", 70_000), ("old", 30_000)]),
    );
    chat.prerequisites.push(prerequisite("gate", "on"));
    // checkout: needs chat = new.
    let mut checkout = flag("checkout", &["v1", "v2"], "v1", vec![], Serve::Variant("v2".into()));
    checkout.prerequisites.push(prerequisite("chat", "new"));
    // hello: salt "hel" ++ org "lo" hashes "hello", bucket 14 276 — exactly the end of `a`'s
    // 14 276, so it falls past `a` and the zero-weight `z` into `b`. A whole-number org is
    // bucketed as its decimal text: salt "chatuser-" ++ 42 hashes "chatuser-42", bucket 68 275.
    let hello = flag(
        "hello",
        &["a", "z", "b", "c"],
        "c",
        vec![rule(
            vec![clause("org", Operator::NumberGte, &["0"])],
            split(Some("org"), Some("chatuser-"), &[("a", 68_275), ("b", 1), ("c", 31_724)]),
        )],
        split(Some("org"), Some("hel"), &[("a", 14_276), ("z", 0), ("b", 1), ("c", 85_723)]),
    );
    let set = FlagSet {
        flags: vec![gate, chat, checkout, hello],
        segments: vec![Segment {
            key: "staff".into(),
            description: String::new(),
            included: vec!["alice@example.com".into()],
            excluded: vec!["user-42".into()],
            rules: vec![SegmentRule { clauses: vec![clause("country", Operator::StartsWith, &["nz-"])] }],
        }],
    };
    let snapshot = set.compile().unwrap();

    type Attributes = Vec<(&'static str, AttrValue<'static>)>;
    type Expected = Vec<(&'static str, Option<&'static str>, RefReason)>;
    let cases: Vec<(&str, Attributes, Expected)> = vec![
        (
            // In staff by rule; pro, split by org "user-42" (68 275 ≥ 10 000): old; so checkout
            // fails on chat.
            "user-1",
            vec![("country", AttrValue::Str("nz-akl")), ("plan", "pro".into()), ("org", "user-42".into())],
            vec![
                ("gate", Some("on"), RefReason::TargetMatch { rule: 0, bucket: None }),
                ("chat", Some("old"), RefReason::TargetMatch { rule: 0, bucket: Some(68_275) }),
                ("checkout", Some("v1"), RefReason::PrerequisiteFailed("chat".into())),
            ],
        ),
        (
            // Excluded from staff although the rule would hold: gate off, so the chain fails.
            // hello: org "lo" is no number, so the default split, "hel" ++ "lo".
            "user-42",
            vec![("country", "nz-akl".into()), ("plan", "pro".into()), ("org", "lo".into())],
            vec![
                ("gate", Some("off"), RefReason::Default),
                ("chat", Some("none"), RefReason::PrerequisiteFailed("gate".into())),
                ("checkout", Some("v1"), RefReason::PrerequisiteFailed("chat".into())),
                ("hello", Some("b"), RefReason::Split { bucket: 14_276 }),
            ],
        ),
        (
            // Included in staff without any attribute; pro, but no org to split by: an error
            // and no variant, which also fails checkout's prerequisite.
            "alice@example.com",
            vec![("plan", "pro".into())],
            vec![
                ("gate", Some("on"), RefReason::TargetMatch { rule: 0, bucket: None }),
                ("chat", None, RefReason::Error(EvalError::MissingBucketAttribute)),
                ("checkout", Some("v1"), RefReason::PrerequisiteFailed("chat".into())),
                ("hello", None, RefReason::Error(EvalError::MissingBucketAttribute)),
            ],
        ),
        (
            // Staff by rule; not pro, so chat's default split by key: "chat" ++ "user-1" is
            // 8 328 < 70 000: new, and checkout's chain holds. org 42 (a number): 68 275 is
            // exactly a's end, so b.
            "user-1",
            vec![("country", "nz-wlg".into()), ("plan", "free".into()), ("org", AttrValue::Number(42.0))],
            vec![
                ("gate", Some("on"), RefReason::TargetMatch { rule: 0, bucket: None }),
                ("chat", Some("new"), RefReason::Split { bucket: 8_328 }),
                ("checkout", Some("v2"), RefReason::Default),
                ("hello", Some("b"), RefReason::TargetMatch { rule: 0, bucket: Some(68_275) }),
            ],
        ),
    ];
    for (key, attributes, expected) in &cases {
        let ctx = Context::new(key).with_attributes(attributes);
        for (flag, variant, reason) in expected {
            let evaluation = snapshot.evaluate(*flag, &ctx);
            let compiled = (evaluation.variant.map(str::to_owned), RefReason::from(evaluation.reason));
            let expected = (variant.map(str::to_owned), reason.clone());
            assert_eq!(compiled, expected, "{flag} for {key}: compiled");
            assert_eq!(reference::evaluate(&set, flag, &ctx), expected, "{flag} for {key}: reference");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Documented behaviour the compiled evaluator does not follow (found while probing edges the
// generator deliberately avoids). Ignored until it is decided whether the docs or the code
// change; run with `--ignored`.

fn served(set: &FlagSet, attributes: &[(&str, AttrValue<'_>)]) -> (Option<String>, RefReason) {
    let snapshot = set.compile().unwrap();
    let evaluation = snapshot.evaluate("p", &Context::new("u").with_attributes(attributes));
    (evaluation.variant.map(str::to_owned), RefReason::from(evaluation.reason))
}

#[test]
#[ignore = "compiled refuses whole numbers of magnitude >= 9e15 as bucket keys; the docs do not"]
fn split_buckets_any_whole_number_by_its_decimal_text() {
    // EvalError::MissingBucketAttribute: only for an attribute that is absent "or that is not
    // a string or whole number". 9e15 is a whole number, bucketed as "9000000000000000".
    let by_org =
        flag("p", &["yes", "no"], "no", vec![], split(Some("org"), None, &[("yes", 1), ("no", 99_999)]));
    let set = FlagSet { flags: vec![by_org], segments: vec![] };
    let expected =
        (Some("no".to_owned()), RefReason::Split { bucket: reference::bucket_of("p9000000000000000") });
    assert_eq!(
        reference::evaluate(&set, "p", &Context::new("u").with_attributes(&[("org", 9e15.into())])),
        expected
    );
    assert_eq!(served(&set, &[("org", AttrValue::Number(9e15))]), expected);
}

#[test]
#[ignore = "compiled compares Unix seconds at millisecond precision; the docs promise times"]
fn date_clauses_compare_unix_seconds_exactly() {
    // Operator::DateAfter: "A time (RFC 3339 string or Unix seconds) after one of the
    // values". 1 709 251 200.0005 s is half a millisecond after 2024-03-01T00:00:00Z.
    let after = clause("signup", Operator::DateAfter, &["2024-03-01"]);
    let rules = vec![rule(vec![after], Serve::Variant("yes".into()))];
    let set = FlagSet {
        flags: vec![flag("p", &["yes", "no"], "no", rules, Serve::Variant("no".into()))],
        segments: vec![],
    };
    let expected = (Some("yes".to_owned()), RefReason::TargetMatch { rule: 0, bucket: None });
    assert_eq!(served(&set, &[("signup", AttrValue::Number(1_709_251_200.000_5))]), expected);
}
