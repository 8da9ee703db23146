use super::*;

const FLAGS: &str = r##"
segments:
  - key: staff
    included: [alice]
    rules: [{ clauses: [{ attribute: email, op: ends_with, values: ["@example.com"] }] }]
flags:
  - key: chat
    description: new chat
    variants: [{ name: on, value: true }, { name: dark, value: false }, { name: off, value: false }]
    off_variant: off
    rules:
      - description: staff
        clauses:
          - { attribute: key, op: in_segment, values: [staff] }
          - { attribute: app_version, op: semver_gte, values: ["2.3.0"], negate: true }
        serve: { variant: on }
    default:
      split: { by: org, salt: s1, weights: [{ variant: on, weight: 5000 }, { variant: dark, weight: 45000 }, { variant: off, weight: 50000 }] }
    version: 7
    metadata: { owner: team-chat, tags: [web, beta], kind: experiment, created_at: "2026-01-02T03:04:05.006Z" }
  - key: limits
    variants: [{ name: small, value: { rps: 10 } }, { name: large, value: [1, 2] }]
    off_variant: small
    prerequisites: [{ flag: chat, variant: on }]
    default: { variant: large }
  - key: colour
    enabled: false
    variants: [{ name: a, value: blue }, { name: b, value: "2.5" }]
    off_variant: a
    default: { variant: a }
  - key: timeout
    variants: [{ name: short, value: 0.5 }, { name: long, value: 30 }]
    off_variant: short
    default: { variant: long }
  - key: fractional
    variants: [{ name: a, value: "a" }, { name: b, value: "b" }]
    rules:
      - clauses: [{ attribute: plan, op: exists }]
        serve: { caller_default: true }
    default:
      split: { bucketing: flagd-v3, weights: [{ variant: a, weight: 1 }, { variant: b, weight: 2 }] }
"##;

fn model() -> core::FlagSet {
    serde_yaml_ng::from_str(FLAGS).unwrap()
}

fn to_proto(set: &core::FlagSet) -> (Vec<v1::Flag>, Vec<v1::Segment>) {
    (set.flags.iter().map(v1::Flag::from).collect(), set.segments.iter().map(v1::Segment::from).collect())
}

#[test]
fn every_field_survives_a_round_trip() {
    let set = model();
    set.validate().expect("the fixture is a valid set");
    let (flags, segments) = to_proto(&set);
    assert_eq!(flag_set_from_proto(flags, segments).unwrap(), set);
}

#[test]
fn the_wire_form_is_what_other_languages_read() {
    let (flags, _) = to_proto(&model());
    let chat = &flags[0];
    assert_eq!(chat.rules[0].clauses[0].op, v1::Operator::InSegment as i32);
    assert_eq!(chat.metadata.as_ref().unwrap().kind, v1::FlagKind::Experiment as i32);
    let json = &flags[1].variants[0].value.as_ref().unwrap().kind;
    assert_eq!(json, &Some(v1::value::Kind::JsonValue(r#"{"rps":10}"#.into())));

    let fractional = &flags[4];
    assert_eq!(fractional.off_variant, "", "no off variant travels as the empty name");
    let serve = |serve: &Option<v1::Serve>| serve.as_ref().unwrap().kind.clone().unwrap();
    assert_eq!(serve(&fractional.rules[0].serve), v1::serve::Kind::CallerDefault(true));
    let v1::serve::Kind::Split(split) = serve(&fractional.default) else { panic!("a split") };
    assert_eq!(split.bucketing, v1::Bucketing::FlagdV3 as i32);
    // The default rule is the zero value: a split written before the choice reads the same.
    let v1::serve::Kind::Split(old) = serve(&flags[0].default) else { panic!("a split") };
    assert_eq!(old.bucketing, 0);
    assert_eq!(v1::Bucketing::FlagdV2 as i32, 0);
}

fn expect_invalid(mutate: impl FnOnce(&mut v1::Flag)) -> InvalidMessage {
    let (mut flags, _) = to_proto(&model());
    mutate(&mut flags[0]);
    core::Flag::try_from(flags.remove(0)).unwrap_err()
}

#[test]
fn malformed_messages_name_the_field() {
    let missing_value = expect_invalid(|f| f.variants[1].value = None);
    assert_eq!(missing_value.path, "flag.variants[1].value");
    assert!(missing_value.expected.contains("bool_value"));

    let bad_json = expect_invalid(|f| {
        f.variants[0].value = Some(v1::Value { kind: Some(v1::value::Kind::JsonValue("{oops".into())) })
    });
    assert_eq!(bad_json.path, "flag.variants[0].value");

    let scalar_json = expect_invalid(|f| {
        f.variants[0].value = Some(v1::Value { kind: Some(v1::value::Kind::JsonValue("3".into())) })
    });
    assert!(scalar_json.expected.contains("object or array"), "{scalar_json}");

    let nan = expect_invalid(|f| {
        f.variants[0].value = Some(v1::Value { kind: Some(v1::value::Kind::NumberValue(f64::NAN)) })
    });
    assert_eq!(nan.path, "flag.variants[0].value");

    let no_serve = expect_invalid(|f| f.rules[0].serve = None);
    assert_eq!(no_serve.path, "flag.rules[0].serve");
    let no_default = expect_invalid(|f| f.default = Some(v1::Serve { kind: None }));
    assert_eq!(no_default.path, "flag.default");

    let unknown_op = expect_invalid(|f| f.rules[0].clauses[1].op = 99);
    assert_eq!(
        unknown_op.to_string(),
        "flag.rules[0].clauses[1].op: a known operator (OPERATOR_IN …), found 99"
    );
    let unspecified_op = expect_invalid(|f| f.rules[0].clauses[0].op = 0);
    assert_eq!(unspecified_op.path, "flag.rules[0].clauses[0].op");

    let unknown_kind = expect_invalid(|f| f.metadata.as_mut().unwrap().kind = 42);
    assert_eq!(unknown_kind.path, "flag.metadata.kind");

    let caller_default_false = expect_invalid(|f| {
        f.rules[0].serve = Some(v1::Serve { kind: Some(v1::serve::Kind::CallerDefault(false)) })
    });
    assert_eq!(caller_default_false.path, "flag.rules[0].serve.caller_default");
    assert!(caller_default_false.expected.starts_with("true"), "{caller_default_false}");

    let unknown_bucketing = expect_invalid(|f| {
        let Some(v1::Serve { kind: Some(v1::serve::Kind::Split(split)) }) = &mut f.default else { panic!() };
        split.bucketing = 7;
    });
    assert_eq!(
        unknown_bucketing.to_string(),
        "flag.default.split.bucketing: a known bucketing (BUCKETING_FLAGD_V2 …), found 7"
    );
}

#[test]
fn snapshot_paths_index_the_flag() {
    let (mut flags, segments) = to_proto(&model());
    flags[2].variants[0].value = None;
    let error = flag_set_from_proto(flags, segments).unwrap_err();
    assert_eq!(error.path, "flags[2].variants[0].value");
}

#[test]
fn empty_optional_parts_take_their_defaults() {
    let (mut flags, _) = to_proto(&model());
    flags[2].metadata = None;
    let colour = core::Flag::try_from(flags.remove(2)).unwrap();
    assert_eq!(colour.metadata, core::Metadata::default());
    assert_eq!(environment_or_default(""), "production");
    assert_eq!(environment_or_default("staging"), "staging");
}
