//! What users see: variants, values and the reason for each, through every typed helper.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flag_core::{AttrValue, Context, EvalError, Evaluate, FlagSet, LaunchStage, Reason, Value, ValueKind};

const FLAGS: &str = r##"
segments:
  - key: beta
    included: [vip-1]
    excluded: [banned-1]
    rules:
      - clauses: [{ attribute: email, op: ends_with, values: ["@example.com"] }]
flags:
  - key: chat
    description: the new chat
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    rules:
      - description: beta testers
        clauses: [{ attribute: key, op: in_segment, values: [beta] }]
        serve: { variant: on }
      - clauses: [{ attribute: country, op: not_in, values: [NZ, AU] }]
        serve: { variant: off }
    default: { split: { weights: [{ variant: on, weight: 10000 }, { variant: off, weight: 90000 }] } }
  - key: video
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    prerequisites: [{ flag: chat, variant: on }]
    default: { variant: on }
  - key: banner
    variants: [{ name: blue, value: "#00f" }, { name: red, value: "#f00" }]
    off_variant: blue
    enabled: false
    default: { variant: red }
  - key: limits
    variants:
      - { name: small, value: { rps: 10 } }
      - { name: large, value: { rps: 1000 } }
    off_variant: small
    rules:
      - clauses: [{ attribute: plan, op: exists }]
        serve: { variant: large }
    default: { variant: small }
  - key: timeout
    variants: [{ name: short, value: 0.5 }, { name: long, value: 30 }]
    off_variant: short
    default: { split: { by: org, weights: [{ variant: short, weight: 50000 }, { variant: long, weight: 50000 }] } }
"##;

fn snapshot() -> flag_core::Snapshot {
    serde_yaml_ng::from_str::<FlagSet>(FLAGS).unwrap().compile().unwrap()
}

#[test]
fn each_reason_an_operator_can_see() {
    let s = snapshot();
    let eval = |flag: &str, ctx: &Context<'_>| {
        let e = s.evaluate(flag, ctx);
        (e.variant, e.reason)
    };
    assert_eq!(
        eval("chat", &Context::new("vip-1")),
        (Some("on"), Reason::TargetMatch { rule: 0, bucket: None })
    );
    let email = [("email", AttrValue::Str("ann@example.com")), ("country", AttrValue::Str("US"))];
    assert_eq!(
        eval("chat", &Context::new("ann").with_attributes(&email)),
        (Some("on"), Reason::TargetMatch { rule: 0, bucket: None })
    );
    // Excluded from the segment, so the second rule (country not in NZ/AU) decides.
    let banned = [("email", AttrValue::Str("b@example.com")), ("country", AttrValue::Str("US"))];
    assert_eq!(
        eval("chat", &Context::new("banned-1").with_attributes(&banned)),
        (Some("off"), Reason::TargetMatch { rule: 1, bucket: None })
    );
    // No country: `not_in` does not hold on a missing attribute, so the split decides.
    assert_eq!(eval("chat", &Context::new("user-1")), (Some("on"), Reason::Split { bucket: 8_328 }));
    assert_eq!(eval("chat", &Context::new("user-42")), (Some("off"), Reason::Split { bucket: 68_275 }));
    assert_eq!(eval("banner", &Context::new("user-1")), (Some("blue"), Reason::Disabled));
    assert_eq!(eval("video", &Context::new("vip-1")), (Some("on"), Reason::Default));
    assert_eq!(
        eval("video", &Context::new("user-42")),
        (Some("off"), Reason::PrerequisiteFailed { prerequisite: "chat" })
    );
    assert_eq!(eval("nope", &Context::new("user-1")), (None, Reason::FlagNotFound));
    assert_eq!(
        eval("timeout", &Context::new("user-1")),
        (None, Reason::Error(EvalError::MissingBucketAttribute))
    );
}

#[test]
fn typed_helpers_fall_back_to_the_callers_default() {
    let s = snapshot();
    let user = Context::new("user-1");
    assert!(s.bool_value("chat", &user, false));
    assert!(s.bool_value("missing", &user, true));
    assert_eq!(s.string_value("banner", &user, "#fff"), "#00f");
    let mismatch = s.string_detail("chat", &user, "fallback");
    assert_eq!(mismatch.value, "fallback");
    assert_eq!(
        mismatch.reason,
        Reason::Error(EvalError::TypeMismatch { expected: ValueKind::String, found: ValueKind::Bool })
    );
    assert!(!s.is_enabled("banner", &user), "a string flag is never enabled");
    let plan = [("plan", AttrValue::Str("pro"))];
    let default = serde_json::json!({ "rps": 1 });
    assert_eq!(s.json_value("limits", &user.with_attributes(&plan), &default)["rps"], 1000);
    assert_eq!(s.json_value("limits", &user, &default)["rps"], 10);
    assert_eq!(s.number_value("limits", &user, 7.0), 7.0);
}

#[test]
fn splitting_by_an_attribute_keeps_an_organisation_together() {
    let s = snapshot();
    let acme = [("org", AttrValue::Str("acme"))];
    let answers: Vec<f64> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| s.number_value("timeout", &Context::new(k).with_attributes(&acme), -1.0))
        .collect();
    assert!(answers.iter().all(|&a| a == answers[0] && a > 0.0), "{answers:?}");
    // Whole numbers bucket like their text, so an org id may be sent either way.
    let as_number = [("org", AttrValue::Number(4711.0))];
    let as_text = [("org", AttrValue::Str("4711"))];
    assert_eq!(
        s.evaluate("timeout", &Context::new("x").with_attributes(&as_number)).reason,
        s.evaluate("timeout", &Context::new("x").with_attributes(&as_text)).reason
    );
}

#[test]
fn handles_survive_a_new_snapshot_with_another_layout() {
    let old = snapshot();
    let handle = old.handle("video");
    let mut set: FlagSet = serde_yaml_ng::from_str(FLAGS).unwrap();
    set.flags.reverse();
    set.flags.iter_mut().find(|f| f.key == "video").unwrap().enabled = false;
    let new = set.compile().unwrap();
    assert_eq!(new.evaluate(&handle, &Context::new("vip-1")).reason, Reason::Disabled);
    let later = old.handle("not-yet");
    assert_eq!(old.evaluate(&later, &Context::new("u")).reason, Reason::FlagNotFound);
    set.flags.push(flag_core::Flag::rollout("not-yet", 100.0).unwrap());
    assert!(set.compile().unwrap().is_enabled(&later, &Context::new("u")));
}

#[test]
fn handles_follow_changes_when_a_snapshot_keeps_the_layout() {
    let old = snapshot();
    let handle = old.handle("video");
    let mut set: FlagSet = serde_yaml_ng::from_str(FLAGS).unwrap();
    set.flags[1].enabled = false;
    let same_keys = set.compile().unwrap().keep_layout_of(&old);
    assert_eq!(same_keys.evaluate(&handle, &Context::new("vip-1")).reason, Reason::Disabled);
    // Asking to keep the layout of a snapshot with other keys must not mislead the handle.
    set.flags.swap(0, 1);
    let reordered = set.compile().unwrap().keep_layout_of(&old);
    assert_eq!(reordered.evaluate(&handle, &Context::new("vip-1")).reason, Reason::Disabled);
    assert_eq!(reordered.evaluate(&old.handle("chat"), &Context::new("vip-1")).variant, Some("on"));
}

#[test]
fn dark_launch_cohorts() {
    let set =
        FlagSet { flags: vec![flag_core::Flag::dark_launch("chat", 5.0, 50.0).unwrap()], segments: vec![] };
    let s = set.compile().unwrap();
    // Buckets from docs/architecture.md: user-1 is 8 328 (dark: between 5 000 and 50 000),
    // user-42 is 68 275 (off).
    assert_eq!(s.launch_stage("chat", &Context::new("user-1")), LaunchStage::Dark);
    assert!(!s.is_enabled("chat", &Context::new("user-1")), "dark users do not see the feature");
    assert_eq!(s.launch_stage("chat", &Context::new("user-42")), LaunchStage::Off);
    let wider =
        FlagSet { flags: vec![flag_core::Flag::dark_launch("chat", 10.0, 50.0).unwrap()], segments: vec![] };
    assert_eq!(wider.compile().unwrap().launch_stage("chat", &Context::new("user-1")), LaunchStage::On);
    assert_eq!(set.flags[0].default.clone(), set.flags[0].default);
    let flag_core::Serve::Split(split) = &set.flags[0].default else { panic!("a dark launch is a split") };
    assert_eq!(split.dark_launch_percentages(), Some((5.0, 50.0)));
    assert!(flag_core::Split::dark_launch(50.0, 5.0).is_err(), "dark counts the on users");
    assert!(flag_core::Split::dark_launch(101.0, 101.0).is_err());
}

#[test]
fn the_model_round_trips_through_yaml_and_json() {
    let set: FlagSet = serde_yaml_ng::from_str(FLAGS).unwrap();
    let yaml = serde_yaml_ng::to_string(&set).unwrap();
    assert_eq!(serde_yaml_ng::from_str::<FlagSet>(&yaml).unwrap(), set);
    let json = serde_json::to_string_pretty(&set).unwrap();
    assert_eq!(serde_json::from_str::<FlagSet>(&json).unwrap(), set);
    assert!(yaml.contains("variant: on") || yaml.contains("variant: 'on'"), "{yaml}");
    let limits = &set.flags[3];
    assert_eq!(limits.variants[1].value, Value::Json(Box::new(serde_json::json!({ "rps": 1000 }))));
    assert_eq!(set.flags[4].variants[1].value, Value::Number(30.0));
}
