//! Flags that answer the caller's default: killed or gated without an off variant, or
//! serving `caller_default`. Every getter gives back what its caller passed, with a reason
//! that is not an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flag_core::{Context, Evaluate, FlagSet, LaunchStage, Reason, Snapshot};

const FLAGS: &str = r##"
flags:
  - key: killed
    variants: [{ name: on, value: true }, { name: off, value: false }]
    enabled: false
    default: { variant: on }
  - key: gate
    variants: [{ name: on, value: true }, { name: off, value: false }]
    rules:
      - clauses: [{ attribute: plan, op: in, values: [pro] }]
        serve: { variant: on }
      - clauses: [{ attribute: plan, op: in, values: [free] }]
        serve: { caller_default: true }
    default: { variant: off }
  - key: gated
    variants: [{ name: wide, value: "wide" }, { name: narrow, value: "narrow" }]
    prerequisites: [{ flag: gate, variant: on }]
    default: { variant: wide }
  - key: gated-with-off
    variants: [{ name: wide, value: "wide" }, { name: narrow, value: "narrow" }]
    off_variant: narrow
    prerequisites: [{ flag: gate, variant: on }]
    default: { variant: wide }
  - key: unset
    variants: [{ name: small, value: 1 }, { name: large, value: 1000 }]
    off_variant: small
    default: { caller_default: true }
  - key: dark
    variants: [{ name: on, value: true }, { name: dark, value: false }, { name: off, value: false }]
    enabled: false
    default: { split: { weights: [{ variant: on, weight: 1 }, { variant: dark, weight: 1 }, { variant: off, weight: 0 }] } }
"##;

fn snapshot() -> Snapshot {
    serde_yaml_ng::from_str::<FlagSet>(FLAGS).unwrap().compile().unwrap()
}

#[test]
fn a_killed_flag_without_an_off_variant_answers_the_caller_s_default() {
    let s = snapshot();
    let user = Context::new("user-1");
    let evaluation = s.evaluate("killed", &user);
    assert_eq!((evaluation.variant, evaluation.value, evaluation.reason), (None, None, Reason::Disabled));
    for default in [true, false] {
        let detail = s.bool_detail("killed", &user, default);
        assert_eq!((detail.value, detail.variant, detail.reason), (default, None, Reason::Disabled));
        assert_eq!(s.bool_value("killed", &user, default), default);
    }
    assert!(!s.is_enabled("killed", &user));
}

#[test]
fn caller_default_as_the_default_answers_no_variant_with_reason_default() {
    let s = snapshot();
    let user = Context::new("user-1");
    let detail = s.number_detail("unset", &user, 7.5);
    assert_eq!((detail.value, detail.variant, detail.reason), (7.5, None, Reason::Default));
    // A getter of another type answers its default too: there is no value to mismatch.
    assert_eq!(s.string_detail("unset", &user, "x").reason, Reason::Default);
}

#[test]
fn caller_default_in_a_rule_answers_no_variant_with_target_match() {
    let s = snapshot();
    let free = [("plan", "free".into())];
    let detail = s.bool_detail("gate", &Context::new("user-1").with_attributes(&free), true);
    assert_eq!(detail.variant, None);
    assert!(detail.value, "the caller's default");
    assert_eq!(detail.reason, Reason::TargetMatch { rule: 1, bucket: None });
}

#[test]
fn a_flag_answering_the_caller_s_default_never_meets_a_prerequisite() {
    let s = snapshot();
    let pro = [("plan", "pro".into())];
    let free = [("plan", "free".into())];
    let pro = Context::new("user-1").with_attributes(&pro);
    let free = Context::new("user-1").with_attributes(&free);
    // `gate` serves `on` to pro users: the prerequisite holds.
    assert_eq!(s.string_detail("gated", &pro, "caller").value, "wide");
    assert_eq!(s.string_detail("gated", &pro, "caller").reason, Reason::Default);
    // For free users `gate` serves no variant, which is not `on`.
    let failed = Reason::PrerequisiteFailed { prerequisite: "gate" };
    let detail = s.string_detail("gated", &free, "caller");
    assert_eq!((detail.value, detail.variant, detail.reason), ("caller", None, failed));
    // With an off variant, that is served instead.
    let detail = s.string_detail("gated-with-off", &free, "caller");
    assert_eq!((detail.value, detail.variant, detail.reason), ("narrow", Some("narrow"), failed));
}

#[test]
fn no_variant_is_the_off_stage_of_a_dark_launch() {
    let s = snapshot();
    for key in ["user-1", "user-2", "user-3"] {
        assert_eq!(s.launch_stage("dark", &Context::new(key)), LaunchStage::Off);
    }
}
