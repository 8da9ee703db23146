//! Every kind of bad input is refused with the path of the bad field, all at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flag_core::FlagSet;

/// The problems in a flag set written as YAML, as `(path, message)` pairs.
fn problems(yaml: &str) -> Vec<(String, String)> {
    let set: FlagSet = serde_yaml_ng::from_str(yaml).expect("test YAML parses");
    let error = set.compile().expect_err("the set should be refused");
    error.problems.into_iter().map(|p| (p.path, p.message)).collect()
}

/// Asserts exactly one problem, at `path`, whose message contains `needle`.
fn assert_one(yaml: &str, path: &str, needle: &str) {
    let found = problems(yaml);
    assert_eq!(found.len(), 1, "expected one problem, found {found:#?}");
    assert_eq!(found[0].0, path, "{found:#?}");
    assert!(found[0].1.contains(needle), "message {:?} lacks {needle:?}", found[0].1);
}

const GOOD_FLAG: &str = "
  - key: chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    default: { variant: off }";

#[test]
fn a_good_set_compiles() {
    let set: FlagSet = serde_yaml_ng::from_str(&format!("flags:{GOOD_FLAG}")).unwrap();
    assert_eq!(set.compile().unwrap().len(), 1);
}

#[test]
fn bad_key_syntax() {
    let yaml = "flags:
  - key: 'new chat!'
    variants: [{ name: on, value: true }]
    off_variant: on
    default: { variant: on }";
    assert_one(yaml, "flags[0].key", "expected a key of 1 to 128 letters");
    let long = format!(
        "flags:\n  - key: {}\n    variants: [{{ name: on, value: true }}]\n    off_variant: on\n    default: {{ variant: on }}",
        "k".repeat(129)
    );
    assert_one(&long, "flags[0].key", "found");
}

#[test]
fn duplicate_flag_keys() {
    assert_one(&format!("flags:{GOOD_FLAG}{GOOD_FLAG}"), "flags[1].key", "first at flags[0]");
}

#[test]
fn duplicate_segment_keys() {
    let yaml = "segments: [{ key: beta }, { key: beta }]";
    assert_one(yaml, "segments[1].key", "expected a unique segment key");
}

#[test]
fn empty_variants() {
    let yaml = "flags:
  - key: chat
    variants: []
    off_variant: off
    default: { variant: off }";
    let found = problems(yaml);
    assert_eq!(found[0].0, "flags[0].variants");
    assert!(found[0].1.contains("at least one variant"));
    // With no variants, the off variant and default are unknown too: all are reported.
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(paths, ["flags[0].variants", "flags[0].off_variant", "flags[0].default.variant"]);
}

#[test]
fn duplicate_variant_names() {
    let yaml = "flags:
  - key: chat
    variants: [{ name: on, value: true }, { name: on, value: false }]
    off_variant: on
    default: { variant: on }";
    assert_one(yaml, "flags[0].variants[1].name", "expected a unique variant name");
}

#[test]
fn mixed_type_variants() {
    let yaml = "flags:
  - key: colour
    variants: [{ name: a, value: blue }, { name: b, value: 3 }]
    off_variant: a
    default: { variant: a }";
    assert_one(
        yaml,
        "flags[0].variants[1].value",
        "expected a string value like variants[0], found a number",
    );
}

#[test]
fn null_variant_values_do_not_parse() {
    let yaml =
        "flags: [{ key: x, variants: [{ name: a, value: null }], off_variant: a, default: { variant: a } }]";
    let error = serde_yaml_ng::from_str::<FlagSet>(yaml).unwrap_err().to_string();
    assert!(error.contains("not null"), "{error}");
}

#[test]
fn unknown_variant_names() {
    let yaml = "flags:
  - key: chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: of
    rules:
      - clauses: []
        serve: { split: { weights: [{ variant: on, weight: 50000 }, { variant: maybe, weight: 50000 }] } }
    default: { variant: yes }";
    let found = problems(yaml);
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "flags[0].off_variant",
            "flags[0].default.variant",
            "flags[0].rules[0].serve.split.weights[1].variant"
        ]
    );
    assert!(
        found[0].1.contains(r#"expected one of the flag's variants ["on", "off"], found "of""#),
        "{found:?}"
    );
}

#[test]
fn negative_weights() {
    let yaml = "flags:
  - key: chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    default: { split: { weights: [{ variant: on, weight: -5000 }, { variant: off, weight: 105000 }] } }";
    // The total is fine (100 000); the negative weight is not.
    assert_one(yaml, "flags[0].default.split.weights[0].weight", "expected a weight from 0 to 2147483647");
}

/// A flag whose default splits `on`/`off` by these weights.
fn split_of(on: i64, off: i64) -> String {
    format!(
        "flags:
  - key: chat
    variants: [{{ name: on, value: true }}, {{ name: off, value: false }}]
    default: {{ split: {{ weights: [{{ variant: on, weight: {on} }}, {{ variant: off, weight: {off} }}] }} }}"
    )
}

#[test]
fn weights_may_total_any_positive_32_bit_number() {
    for (on, off) in [(1, 0), (0, 1), (1, 2), (5_000, 90_000), (1, 2_147_483_646), (2_147_483_647, 0)] {
        let set: FlagSet = serde_yaml_ng::from_str(&split_of(on, off)).unwrap();
        assert!(set.compile().is_ok(), "{on} + {off}: {:?}", set.compile().err());
    }
}

#[test]
fn weights_totalling_nothing_or_more_than_2_pow_31_are_refused() {
    let at = "flags[0].default.split.weights";
    assert_one(
        &split_of(0, 0),
        at,
        "expected weights totalling from 1 to 2147483647 (100 000 for percentages), found 0",
    );
    assert_one(&split_of(2_147_483_647, 1), at, "found 2147483648");
    let found = problems(&split_of(2_147_483_648, 0));
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(paths, [format!("{at}[0].weight"), at.to_owned()], "{found:?}");
}

/// A flag with one rule holding one clause, to test literal parsing per operator.
fn with_clause(op: &str, values: &str) -> String {
    format!(
        "flags:
  - key: chat
    variants: [{{ name: on, value: true }}, {{ name: off, value: false }}]
    off_variant: off
    rules: [{{ clauses: [{{ attribute: a, op: {op}, values: {values} }}], serve: {{ variant: on }} }}]
    default: {{ variant: off }}"
    )
}

#[test]
fn invalid_literals_name_the_value() {
    let at = "flags[0].rules[0].clauses[0].values[1]";
    assert_one(&with_clause("regex", "['^ok$', '(unclosed']"), at, "expected a valid regular expression");
    assert_one(&with_clause("semver_gte", "['1.2.3', '1.2']"), at, "expected a semantic version");
    assert_one(&with_clause("date_before", "['2025-01-01', '2025-02-30']"), at, "expected an RFC 3339 date");
    assert_one(&with_clause("number_gt", "[3, 'three']"), at, r#"expected a number, found "three""#);
    assert_one(&with_clause("number_gt", "[3, 'NaN']"), at, "expected a number");
}

#[test]
fn clause_value_counts() {
    assert_one(
        &with_clause("in", "[]"),
        "flags[0].rules[0].clauses[0].values",
        "expected at least one value",
    );
    assert_one(&with_clause("exists", "[x]"), "flags[0].rules[0].clauses[0].values", "expected no values");
}

#[test]
fn unknown_segments() {
    let yaml = "segments: [{ key: beta, included: [user-1] }]
flags:
  - key: chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    rules: [{ clauses: [{ attribute: key, op: in_segment, values: [beta, betta] }], serve: { variant: on } }]
    default: { variant: off }";
    assert_one(yaml, "flags[0].rules[0].clauses[0].values[1]", r#"expected a known segment, found "betta""#);
}

#[test]
fn segments_do_not_nest() {
    let yaml = "segments:
  - key: a
  - key: b
    rules: [{ clauses: [{ attribute: key, op: in_segment, values: [a] }] }]";
    assert_one(yaml, "segments[1].rules[0].clauses[0].op", "segments do not nest");
}

#[test]
fn unknown_prerequisite_flags_and_variants() {
    let yaml = format!(
        "flags:{GOOD_FLAG}
  - key: video
    variants: [{{ name: on, value: true }}, {{ name: off, value: false }}]
    off_variant: off
    prerequisites: [{{ flag: chatt, variant: on }}, {{ flag: chat, variant: yes }}]
    default: {{ variant: on }}"
    );
    let found = problems(&yaml);
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(paths, ["flags[1].prerequisites[0].flag", "flags[1].prerequisites[1].variant"]);
    assert!(
        found[1].1.contains(r#"expected one of "chat"'s variants ["on", "off"], found "yes""#),
        "{found:?}"
    );
}

#[test]
fn prerequisite_cycles() {
    let flag = |key: &str, requires: &str| {
        format!(
            "
  - key: {key}
    variants: [{{ name: on, value: true }}, {{ name: off, value: false }}]
    off_variant: off
    prerequisites: [{{ flag: {requires}, variant: on }}]
    default: {{ variant: on }}"
        )
    };
    let cycle = format!("flags:{}{}{}", flag("a", "b"), flag("b", "c"), flag("c", "a"));
    assert_one(
        &cycle,
        "flags[2].prerequisites[0].flag",
        "expected no prerequisite cycle, found a -> b -> c -> a",
    );
    assert_one(&format!("flags:{}", flag("self", "self")), "flags[0].prerequisites[0].flag", "self -> self");
    // A chain that merely shares a prerequisite is not a cycle.
    let diamond = format!("flags:{}{}{GOOD_FLAG}", flag("a", "chat"), flag("b", "chat"));
    assert!(serde_yaml_ng::from_str::<FlagSet>(&diamond).unwrap().compile().is_ok());
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = "flags:
  - key: 'bad key'
    variants: [{ name: on, value: true }, { name: off, value: 0 }]
    off_variant: nope
    rules: [{ clauses: [{ attribute: v, op: semver_gt, values: [x] }], serve: { variant: on } }]
    default: { split: { weights: [{ variant: on, weight: 0 }] } }";
    let found = problems(yaml);
    let paths: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        paths,
        [
            "flags[0].key",
            "flags[0].variants[1].value",
            "flags[0].off_variant",
            "flags[0].default.split.weights",
            "flags[0].rules[0].clauses[0].values[0]",
        ]
    );
}

#[test]
fn a_flag_without_an_off_variant_or_serving_the_caller_s_default_compiles() {
    let yaml = "flags:
  - key: chat
    variants: [{ name: on, value: true }]
    enabled: false
    rules: [{ clauses: [], serve: { caller_default: true } }]
    default: { caller_default: true }";
    let set: FlagSet = serde_yaml_ng::from_str(yaml).unwrap();
    assert_eq!(set.flags[0].off_variant, None);
    assert_eq!(set.flags[0].default, flag_core::Serve::CallerDefault);
    assert!(set.compile().is_ok());
    // Written back the same way: no `off_variant`, `caller_default: true`.
    let json = serde_json::to_value(&set.flags[0]).unwrap();
    assert_eq!(json.get("off_variant"), None);
    assert_eq!(json["default"], serde_json::json!({ "caller_default": true }));
}

#[test]
fn caller_default_false_and_two_kinds_of_serve_are_refused_when_parsing() {
    let parse = |serve: &str| {
        let yaml = format!("flags: [{{ key: x, variants: [{{ name: a, value: true }}], default: {serve} }}]");
        serde_yaml_ng::from_str::<FlagSet>(&yaml).unwrap_err().to_string()
    };
    let error = parse("{ caller_default: false }");
    assert!(error.contains("expected `caller_default: true`"), "{error}");
    let error = parse("{ variant: a, caller_default: false }");
    assert!(error.contains("expected `caller_default: true`"), "{error}");
    let error = parse("{ variant: a, caller_default: true }");
    assert!(error.contains("exactly one of `variant`, `split` or `caller_default`"), "{error}");
    let error = parse("{}");
    assert!(error.contains("exactly one of"), "{error}");
}

#[test]
fn bucketing_is_written_as_the_flagd_rule_and_omitted_when_default() {
    let yaml = "flags:
  - key: chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    default: { split: { bucketing: flagd-v3, weights: [{ variant: on, weight: 1 }, { variant: off, weight: 1 }] } }";
    let mut set: FlagSet = serde_yaml_ng::from_str(yaml).unwrap();
    let flag_core::Serve::Split(split) = &mut set.flags[0].default else { panic!("a split") };
    assert_eq!(split.bucketing, flag_core::Bucketing::FlagdV3);
    assert_eq!(serde_json::to_value(&*split).unwrap()["bucketing"], "flagd-v3");
    split.bucketing = flag_core::Bucketing::FlagdV2;
    assert_eq!(serde_json::to_value(&*split).unwrap().get("bucketing"), None);
    let v2: flag_core::Split =
        serde_json::from_value(serde_json::json!({ "bucketing": "flagd-v2", "weights": [] })).unwrap();
    assert_eq!(v2.bucketing, flag_core::Bucketing::FlagdV2);
    let error = serde_yaml_ng::from_str::<FlagSet>(&yaml.replace("flagd-v3", "flagd-v4")).unwrap_err();
    assert!(error.to_string().contains("flagd-v4"), "{error}");
}

#[test]
fn unknown_fields_are_refused_when_parsing() {
    let yaml = "flags: [{ key: x, variants: [], off_variant: a, default: { variant: a }, enabeld: false }]";
    let error = serde_yaml_ng::from_str::<FlagSet>(yaml).unwrap_err().to_string();
    assert!(error.contains("unknown field `enabeld`"), "{error}");
}
