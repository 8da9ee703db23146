//! The compiled evaluator agrees with a naive reference evaluator written from the model's docs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod generators;
mod reference;

use generators::{RawContext, context, flag_set};

use std::cell::RefCell;
use std::collections::BTreeMap;

use flag_core::{
    AttrValue, Bucketing, Clause, Context, EvalError, Evaluate, Flag, FlagSet, LaunchStage, Metadata,
    Operator, Prerequisite, Rule, Segment, SegmentRule, Serve, Split, Value, Variant, Weight,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reference::RefReason;

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
            let label = match &expected {
                (_, RefReason::TargetMatch { bucket: Some(_), .. }) => "TargetMatch(split)".to_owned(),
                (None, RefReason::TargetMatch { bucket: None, .. }) => "TargetMatch(caller)".to_owned(),
                (_, RefReason::TargetMatch { bucket: None, .. }) => "TargetMatch".to_owned(),
                (_, RefReason::Split { .. }) => "Split".to_owned(),
                (None, RefReason::PrerequisiteFailed(_)) => "PrerequisiteFailed(caller)".to_owned(),
                (_, RefReason::PrerequisiteFailed(_)) => "PrerequisiteFailed".to_owned(),
                (None, RefReason::Disabled) => "Disabled(caller)".to_owned(),
                (None, RefReason::Default) => "Default(caller)".to_owned(),
                (_, other) => format!("{other:?}"),
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
        "Disabled(caller)",
        "TargetMatch(caller)",
        "Default(caller)",
        "PrerequisiteFailed(caller)",
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
// A hand-made set, with answers worked out by hand from the bucket table in docs/architecture.md:
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
        bucketing: Bucketing::FlagdV2,
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
        off_variant: Some(off.into()),
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
