//! Exported flagd JSON, evaluated by an independent JSONLogic engine as a flagd provider
//! would, answers what our evaluator answers — for random flag sets and random contexts,
//! with flagd-v2 and with flagd-v3 bucketing. The one stated exception: where a number
//! clause would read a string, the provider answers an error (the caller's default).

mod support;

use flag_core::{
    AttrValue, Bucketing, Clause, Context, Flag, FlagSet, Literal, Operator, Prerequisite, Rule, Segment,
    SegmentRule, Serve, Split, Value, Variant, Weight,
};
use openfeature_json::to_flagd;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Value as Json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::Answer;

const ATTRIBUTES: &[&str] = &["country", "plan", "age", "version"];
const KEYS: &[&str] = &["user-1", "user-2", "u-3", "NZ", "5", ""];
const STRINGS: &[&str] = &[
    "NZ",
    "US",
    "",
    " ",
    "5",
    "5.0",
    " 7 ",
    "1e2",
    "-3",
    "abc",
    "1.2.3",
    "1.2.3-beta.1",
    "2.0.0",
    "v1.2.3",
    "1.2",
    "0x10",
    "true",
    "false",
    "0",
    "10.5",
    "Infinity",
    "N",
    "user-1",
];
const NUMBERS: &[f64] = &[0.0, 1.0, 5.0, -3.0, 7.5, 100.0, 1e3, 10.5, 1e19];
const LITERALS: &[&str] =
    &["NZ", "US", "5", "true", "false", "0", "abc", "", "-3", "7.5", "user-1", "N", "1"];
const NUMBER_LITERALS: &[&str] = &["5", "0", "-3", "7.5", "100", "1e2"];
const VERSIONS: &[&str] = &["1.2.3", "2.0.0", "1.2.3-beta.1", "0.0.1"];

/// One attribute of a context; `None` leaves it out.
#[derive(Clone, Debug)]
enum Attr {
    Str(&'static str),
    Number(f64),
    Bool(bool),
}

fn attr() -> impl Strategy<Value = Option<Attr>> {
    prop_oneof![
        Just(None),
        prop::sample::select(STRINGS).prop_map(|s| Some(Attr::Str(s))),
        prop::sample::select(NUMBERS).prop_map(|n| Some(Attr::Number(n))),
        any::<bool>().prop_map(|b| Some(Attr::Bool(b))),
    ]
}

type Ctx = (&'static str, Vec<Option<Attr>>);

fn context() -> impl Strategy<Value = Ctx> {
    (prop::sample::select(KEYS), prop::collection::vec(attr(), ATTRIBUTES.len()))
}

fn clause(segments: usize) -> impl Strategy<Value = Clause> {
    let exact = prop::sample::select(vec![
        Operator::In,
        Operator::NotIn,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::Contains,
        Operator::SemverEq,
        Operator::SemverLt,
        Operator::SemverLte,
        Operator::SemverGt,
        Operator::SemverGte,
        Operator::Exists,
        Operator::InSegment,
        Operator::NumberEq,
        Operator::NumberLt,
        Operator::NumberLte,
        Operator::NumberGt,
        Operator::NumberGte,
    ]);
    // Rare, so that most flags are exported: this leaves its flag out.
    let left_out = Just(Operator::Regex);
    let ops = prop_oneof![20 => exact, 1 => left_out];
    let attribute = prop::sample::select([ATTRIBUTES, &["key"]].concat());
    (attribute, ops, any::<bool>(), 0..3usize, prop::collection::vec(0..100usize, 1..3)).prop_filter_map(
        "no segments to name",
        move |(attribute, op, negate, _, picks)| {
            let pick = |pool: &[&str]| {
                picks.iter().map(|i| Literal(pool[i % pool.len()].into())).collect::<Vec<_>>()
            };
            let values = match op {
                Operator::Exists => vec![],
                Operator::NumberEq
                | Operator::NumberLt
                | Operator::NumberLte
                | Operator::NumberGt
                | Operator::NumberGte => pick(NUMBER_LITERALS),
                Operator::SemverEq
                | Operator::SemverLt
                | Operator::SemverLte
                | Operator::SemverGt
                | Operator::SemverGte => pick(VERSIONS),
                Operator::Regex => pick(&["^N", "5$"]),
                Operator::InSegment if segments == 0 => return None,
                Operator::InSegment => {
                    picks.iter().map(|i| Literal(format!("seg-{}", i % segments))).collect()
                }
                _ => pick(LITERALS),
            };
            Some(Clause { attribute: attribute.into(), op, values, negate })
        },
    )
}

fn segment(index: usize) -> impl Strategy<Value = Segment> {
    let keys = prop::collection::vec(prop::sample::select(KEYS), 0..2);
    let rules = prop::collection::vec(prop::collection::vec(clause(0), 0..3), 0..3);
    (keys.clone(), keys, rules).prop_map(move |(included, excluded, rules)| Segment {
        key: format!("seg-{index}"),
        description: String::new(),
        included: included.into_iter().map(String::from).collect(),
        excluded: excluded.into_iter().map(String::from).collect(),
        rules: rules.into_iter().map(|clauses| SegmentRule { clauses }).collect(),
    })
}

fn serve(names: Vec<String>, bucketing: Bucketing) -> impl Strategy<Value = Serve> {
    let by = prop::sample::select(vec![None, Some("plan".to_owned()), Some("age".to_owned())]);
    let salt = prop::sample::select(vec![None, Some("shared".to_owned())]);
    let variant = prop::sample::select(names.clone()).prop_map(Serve::Variant);
    // Any total: 100 000 (our percentages), 100 (flagd's usual), or up to 2^31 - 1.
    let total = prop::sample::select(vec![100_000i64, 100, 7, 2_147_483_647]);
    let split = (by, salt, total, 0.0..=1.0f64, 0.0..=1.0f64).prop_map(move |(by, salt, total, a, b)| {
        let (a, b) = ((a * total as f64) as i64, (b * total as f64) as i64);
        let (low, high) = (a.min(b), a.max(b));
        let shares =
            if names.len() == 2 { vec![low, total - low] } else { vec![low, high - low, total - high] };
        let weights =
            names.iter().zip(shares).map(|(n, w)| Weight { variant: n.clone(), weight: w }).collect();
        Serve::Split(Split { by, salt, weights, bucketing })
    });
    prop_oneof![4 => variant, 2 => split, 1 => Just(Serve::CallerDefault)]
}

fn variants() -> impl Strategy<Value = Vec<Variant>> {
    let of = |values: Vec<Value>| {
        ["on", "off", "third"]
            .iter()
            .zip(values)
            .map(|(n, value)| Variant { name: (*n).into(), value })
            .collect()
    };
    prop_oneof![
        Just(of(vec![Value::Bool(true), Value::Bool(false)])),
        Just(of(vec![Value::String("a".into()), Value::String("b".into()), Value::String("c".into())])),
        Just(of(vec![Value::Number(1.0), Value::Number(2.5), Value::Number(100.0)])),
    ]
}

fn flag(index: usize, segments: usize, bucketing: Bucketing) -> impl Strategy<Value = Flag> {
    variants().prop_flat_map(move |variants| {
        let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
        let rule = (prop::collection::vec(clause(segments), 0..3), serve(names.clone(), bucketing))
            .prop_map(|(clauses, serve)| Rule { description: String::new(), clauses, serve });
        let prerequisite =
            (0..index.max(1), prop::sample::select(vec!["on", "off"])).prop_map(|(flag, variant)| {
                Prerequisite { flag: format!("flag-{flag}"), variant: variant.into() }
            });
        let prerequisites =
            if index == 0 { Just(vec![]).boxed() } else { prop::collection::vec(prerequisite, 0..2).boxed() };
        (
            prop::collection::vec(rule, 0..4),
            serve(names.clone(), bucketing),
            prop::option::weighted(0.7, prop::sample::select(names)),
            prop::bool::weighted(0.85),
            prerequisites,
        )
            .prop_map(move |(rules, default, off_variant, enabled, prerequisites)| Flag {
                key: format!("flag-{index}"),
                description: String::new(),
                variants: variants.clone(),
                enabled,
                off_variant,
                rules,
                default,
                prerequisites,
                version: 0,
                metadata: Default::default(),
            })
    })
}

/// Sets whose splits all bucket by `bucketing`: a provider implements one version.
fn flag_set(bucketing: Bucketing) -> impl Strategy<Value = FlagSet> {
    (0..3usize).prop_flat_map(move |segments| {
        let segs: Vec<_> = (0..segments).map(segment).collect();
        let flags: Vec<_> = (0..4).map(|i| flag(i, segments, bucketing)).collect();
        (segs, flags).prop_map(|(segments, flags)| FlagSet { flags, segments })
    })
}

fn attribute_values(ctx: &Ctx) -> Vec<(&'static str, AttrValue<'static>)> {
    ATTRIBUTES
        .iter()
        .zip(&ctx.1)
        .filter_map(|(name, attr)| {
            attr.as_ref().map(|a| {
                (
                    *name,
                    match a {
                        Attr::Str(s) => AttrValue::Str(s),
                        Attr::Number(n) => AttrValue::Number(*n),
                        Attr::Bool(b) => AttrValue::Bool(*b),
                    },
                )
            })
        })
        .collect()
}

/// The context as a provider sends it: whole numbers as JSON integers.
fn context_json(ctx: &Ctx) -> Map<String, Json> {
    attribute_values(ctx)
        .into_iter()
        .map(|(name, value)| {
            let json = match value {
                AttrValue::Str(s) => Json::String(s.into()),
                AttrValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Json::from(n as i64),
                AttrValue::Number(n) => Json::from(n),
                AttrValue::Bool(b) => Json::Bool(b),
            };
            (name.to_owned(), json)
        })
        .collect()
}

/// The attributes that number clauses read in `flag`'s rules, its segments' and, through
/// its prerequisites, other flags'; none of a killed flag.
fn read_as_numbers<'a>(set: &'a FlagSet, flag: &'a Flag, into: &mut BTreeSet<&'a str>) {
    if !flag.enabled {
        return;
    }
    let mut clauses: Vec<&Clause> = flag.rules.iter().flat_map(|r| &r.clauses).collect();
    let segments = clauses.iter().filter(|c| c.op == Operator::InSegment).flat_map(|c| &c.values);
    let named: Vec<&Segment> =
        segments.filter_map(|name| set.segments.iter().find(|s| s.key == name.0)).collect();
    clauses.extend(named.iter().flat_map(|s| &s.rules).flat_map(|r| &r.clauses));
    into.extend(
        clauses
            .iter()
            .filter(|c| {
                matches!(
                    c.op,
                    Operator::NumberEq
                        | Operator::NumberLt
                        | Operator::NumberLte
                        | Operator::NumberGt
                        | Operator::NumberGte
                )
            })
            .map(|c| c.attribute.as_str()),
    );
    for required in &flag.prerequisites {
        if let Some(required) = set.flags.iter().find(|f| f.key == required.flag) {
            read_as_numbers(set, required, into);
        }
    }
}

/// Compares every exported flag for every context, the provider running `engine` on the
/// export passed through `prepare`; answers how many flags it compared.
fn agree(
    set: &FlagSet,
    contexts: &[Ctx],
    engine: &datalogic_rs::Engine,
    prepare: fn(&Json) -> Json,
) -> Result<usize, TestCaseError> {
    let snapshot = set.compile();
    prop_assert!(snapshot.is_ok(), "{:?}", snapshot.err());
    let Ok(snapshot) = snapshot else { return Ok(0) };
    let exported = to_flagd(set);
    let file = prepare(&exported.json);
    for flag in &set.flags {
        if exported.left_out.iter().any(|l| l.flag == flag.key) {
            prop_assert!(exported.json["flags"].get(&flag.key).is_none());
            continue;
        }
        let mut numbers = BTreeSet::new();
        read_as_numbers(set, flag, &mut numbers);
        for ctx in contexts {
            let attributes = attribute_values(ctx);
            let ours = snapshot.evaluate(&flag.key, &Context::new(ctx.0).with_attributes(&attributes));
            // A provider answers an engine that throws with an error.
            let theirs =
                support::answer(engine, &file, &flag.key, ctx.0, &context_json(ctx)).unwrap_or(Answer::Error);
            let string_read_as_number =
                attributes.iter().any(|(name, v)| matches!(v, AttrValue::Str(_)) && numbers.contains(name));
            if theirs == Answer::Error && string_read_as_number {
                continue;
            }
            // A killed flag is flagd's DISABLED: the caller's default in-process.
            let expected = if flag.enabled { ours.variant.map(str::to_owned) } else { None };
            prop_assert_eq!(
                expected,
                theirs.variant(),
                "flag {} for {:?}\nexported: {}",
                flag.key,
                ctx,
                serde_json::to_string(&exported.json).unwrap_or_default()
            );
        }
    }
    Ok(set.flags.len() - exported.left_out.len())
}

#[test]
fn providers_answer_what_we_answer() {
    providers_agree(Bucketing::FlagdV2, &support::engine(), Json::clone);
}

#[test]
fn flagd_v3_providers_answer_what_we_answer() {
    providers_agree(Bucketing::FlagdV3, &support::engine_v3(), support::as_v3);
}

fn providers_agree(bucketing: Bucketing, engine: &datalogic_rs::Engine, prepare: fn(&Json) -> Json) {
    let cases = 400;
    let mut runner = TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
    let compared = AtomicUsize::new(0);
    let strategy = (flag_set(bucketing), prop::collection::vec(context(), 12));
    let result = runner.run(&strategy, |(set, contexts)| {
        compared.fetch_add(agree(&set, &contexts, engine, prepare)?, Ordering::Relaxed);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // Four flags a set: most must be exported, or the comparison proves little.
    let compared = compared.load(Ordering::Relaxed);
    assert!(compared > cases as usize * 2, "only {compared} flags were exported and compared");
}

proptest! {
    #[test]
    fn the_same_set_gives_the_same_bytes(set in flag_set(Bucketing::FlagdV2)) {
        let once = serde_json::to_string(&to_flagd(&set).json).unwrap_or_default();
        let mut reversed = set.clone();
        reversed.flags.reverse();
        reversed.segments.reverse();
        prop_assert_eq!(once, serde_json::to_string(&to_flagd(&reversed).json).unwrap_or_default());
    }
}

/// The independent engine buckets as flagd does: murmur3 of the bucketing string, then
/// `(hash * total) >> 32` over the cumulative weights — checked against the murmur3 crate.
#[test]
fn the_reference_fractional_is_flagds() {
    let engine = support::engine();
    for i in 0..500 {
        let key = format!("user-{i}");
        let bucketing = format!("salt{key}");
        let hash =
            murmur3::murmur3_32(&mut std::io::Cursor::new(bucketing.as_bytes()), 0).unwrap_or_default();
        let bucket = (u64::from(hash) * 100) >> 32;
        let expected = if bucket < 30 { "a" } else { "b" };
        let targeting = serde_json::json!({ "fractional": [{ "cat": ["salt", { "var": "targetingKey" }] }, ["a", 30], ["b", 70]] });
        let file = serde_json::json!({ "flags": { "f": { "state": "ENABLED", "variants": { "a": 1, "b": 2 }, "targeting": targeting } } });
        let got = support::evaluate(&engine, &file, "f", &key, &Map::new());
        assert_eq!(got.as_deref(), Some(expected), "{key}");
    }
}
