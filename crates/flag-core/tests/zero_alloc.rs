//! A counting global allocator proves evaluation allocates nothing.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use flag_core::{AttrValue, Context, Evaluate, Flag, FlagSet, LaunchStage, Reason, Snapshot};

/// Counts allocations made by the current thread, so other test threads do not interfere.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(mut f: impl FnMut()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const KEYS: [&str; 4] = ["user-00000001", "user-12345678", "user-87654321", "user-55555555"];

fn snapshot() -> Snapshot {
    let rules = serde_json::json!([{
        "clauses": [
            { "attribute": "country", "op": "in", "values": ["NZ", "AU", "GB"] },
            { "attribute": "age", "op": "number_gt", "values": [18] },
            { "attribute": "app_version", "op": "semver_gte", "values": ["2.3.0-rc.1"] },
            { "attribute": "signup", "op": "date_after", "values": ["2024-01-01T00:00:00Z"] },
        ],
        "serve": { "split": { "weights": [{ "variant": "on", "weight": 30000 }, { "variant": "dark", "weight": 0 }, { "variant": "off", "weight": 70000 }] } },
    }]);
    let mut targeted = Flag::rollout("targeted", 50.0).unwrap();
    targeted.rules = serde_json::from_value(rules).unwrap();
    let mut flags = vec![
        Flag::rollout("rollout", 50.0).unwrap(),
        Flag::dark_launch("dark", 5.0, 50.0).unwrap(),
        targeted,
    ];
    flags.extend((0..1000).map(|i| Flag::rollout(&format!("filler-{i}"), 10.0).unwrap()));
    FlagSet { flags, segments: vec![] }.compile().unwrap()
}

#[test]
fn rollout_by_key_allocates_nothing() {
    let snapshot = snapshot();
    let mut enabled = 0;
    let count = allocations_during(|| {
        for key in KEYS {
            enabled += usize::from(snapshot.is_enabled(black_box("rollout"), &Context::new(black_box(key))));
            black_box(snapshot.evaluate("rollout", &Context::new(key)));
        }
    });
    assert_eq!(count, 0);
    assert!(enabled > 0 && enabled < KEYS.len(), "the keys should straddle the 50 % split");
}

#[test]
fn rollout_by_handle_allocates_nothing() {
    let snapshot = snapshot();
    let handle = snapshot.handle("rollout");
    let count = allocations_during(|| {
        for key in KEYS {
            black_box(snapshot.is_enabled(&handle, &Context::new(black_box(key))));
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn a_rule_with_string_number_semver_and_date_clauses_allocates_nothing() {
    let snapshot = snapshot();
    let attributes = [
        ("country", AttrValue::Str("NZ")),
        ("age", AttrValue::Number(31.0)),
        ("app_version", AttrValue::Str("2.3.0")),
        ("signup", AttrValue::Str("2024-06-01T12:00:00Z")),
    ];
    let mut reasons = Vec::with_capacity(KEYS.len());
    let count = allocations_during(|| {
        for key in KEYS {
            let ctx = Context::new(black_box(key)).with_attributes(black_box(&attributes));
            reasons.push(snapshot.evaluate("targeted", &ctx).reason);
        }
    });
    assert_eq!(count, 0);
    // The rule matched for every key, so the clauses really were evaluated.
    assert!(reasons.iter().all(|r| matches!(r, Reason::TargetMatch { rule: 0, .. })), "{reasons:?}");
}

#[test]
fn dark_launch_split_allocates_nothing() {
    let snapshot = snapshot();
    let mut stages = Vec::with_capacity(64);
    let count = allocations_during(|| {
        for key in KEYS {
            stages.push(snapshot.launch_stage("dark", &Context::new(black_box(key))));
        }
    });
    assert_eq!(count, 0);
    // The keys straddle the cohorts, so the split really was evaluated.
    assert!(stages.contains(&LaunchStage::Off), "{stages:?}");
    assert!(stages.contains(&LaunchStage::Dark) || stages.contains(&LaunchStage::On), "{stages:?}");
}

/// Segments (included, excluded, by rule), a regex, a prerequisite, splits by attribute,
/// flagd-v3 splits of both framings and flags answering the caller's default.
const TARGETING: &str = r##"
segments:
  - key: beta
    included: [vip-1]
    excluded: [banned-1]
    rules:
      - clauses: [{ attribute: email, op: ends_with, values: ["@example.com"] }]
flags:
  - key: segmented
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    rules:
      - clauses: [{ attribute: key, op: in_segment, values: [beta] }]
        serve: { variant: on }
    default: { variant: off }
  - key: pattern
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    rules:
      - clauses: [{ attribute: email, op: regex, values: ['^[a-z0-9.]+@(example|test)\.(com|org)$'] }]
        serve: { variant: on }
    default: { variant: off }
  - key: base
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    default: { split: { weights: [{ variant: on, weight: 50000 }, { variant: off, weight: 50000 }] } }
  - key: gated
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    prerequisites: [{ flag: base, variant: on }]
    default: { variant: on }
  - key: by-org
    variants: [{ name: on, value: true }, { name: off, value: false }]
    off_variant: off
    default: { split: { by: org, weights: [{ variant: on, weight: 50000 }, { variant: off, weight: 50000 }] } }
  - key: v3-pair
    variants: [{ name: on, value: true }, { name: off, value: false }]
    default: { split: { bucketing: flagd-v3, weights: [{ variant: on, weight: 1 }, { variant: off, weight: 1 }] } }
  - key: v3-by-org
    variants: [{ name: on, value: true }, { name: off, value: false }]
    default: { split: { bucketing: flagd-v3, by: org, salt: s, weights: [{ variant: on, weight: 3 }, { variant: off, weight: 7 }] } }
  - key: killed
    variants: [{ name: on, value: true }]
    enabled: false
    default: { variant: on }
  - key: unset
    variants: [{ name: on, value: true }]
    default: { caller_default: true }
"##;

fn targeting() -> Snapshot {
    serde_yaml_ng::from_str::<FlagSet>(TARGETING).unwrap().compile().unwrap()
}

#[test]
fn segments_included_excluded_and_by_rule_allocate_nothing() {
    let snapshot = targeting();
    let email = [("email", AttrValue::Str("ana@example.com"))];
    let contexts = [
        Context::new("vip-1"),
        Context::new("banned-1").with_attributes(&email),
        Context::new("user-7").with_attributes(&email),
        Context::new("user-8"),
    ];
    let mut variants = Vec::with_capacity(contexts.len());
    let count = allocations_during(|| {
        for ctx in &contexts {
            variants.push(snapshot.evaluate(black_box("segmented"), black_box(ctx)).variant);
        }
    });
    assert_eq!(count, 0);
    // Included; excluded despite the rule; in by the rule; in by nothing.
    assert_eq!(variants, [Some("on"), Some("off"), Some("on"), Some("off")]);
}

#[test]
fn a_regex_clause_allocates_nothing_once_its_thread_has_a_cache() {
    let snapshot = targeting();
    let emails = ["ana@example.com", "bo@test.org", "eve@evil.example.net", "x@example.co"];
    let attributes: Vec<[(&str, AttrValue<'_>); 1]> =
        emails.iter().map(|email| [("email", AttrValue::Str(email))]).collect();
    // The `regex` crate matches with a per-thread cache: made the first time a thread uses
    // the pattern, and filled by its lazy DFA with the states each new input leads to. So a
    // regex clause is allocation-free in the steady state, once its thread has matched
    // these inputs; the first pass warms the cache, the second must not allocate.
    let mut variants = Vec::with_capacity(emails.len());
    let mut evaluate_all = || {
        variants.clear();
        for (key, attributes) in KEYS.iter().zip(&attributes) {
            let ctx = Context::new(black_box(key)).with_attributes(black_box(attributes));
            variants.push(snapshot.evaluate("pattern", &ctx).variant);
        }
    };
    evaluate_all();
    let count = allocations_during(&mut evaluate_all);
    assert_eq!(count, 0);
    assert_eq!(variants, [Some("on"), Some("on"), Some("off"), Some("off")]);
}

#[test]
fn prerequisites_allocate_nothing() {
    let snapshot = targeting();
    let mut reasons = Vec::with_capacity(KEYS.len());
    let count = allocations_during(|| {
        for key in KEYS {
            let ctx = Context::new(black_box(key));
            reasons.push((snapshot.evaluate("gated", &ctx).reason, snapshot.is_enabled("base", &ctx)));
        }
    });
    assert_eq!(count, 0);
    // The prerequisite was evaluated for every key: it held exactly where `base` is on.
    for (reason, base_on) in &reasons {
        let failed = matches!(reason, Reason::PrerequisiteFailed { prerequisite: "base" });
        assert_eq!(failed, !base_on, "{reasons:?}");
    }
    assert!(reasons.iter().any(|(_, on)| *on) && reasons.iter().any(|(_, on)| !on), "{reasons:?}");
}

#[test]
fn bucketing_by_a_string_or_number_attribute_allocates_nothing() {
    let snapshot = targeting();
    let orgs = [
        AttrValue::Str("org-1"),
        AttrValue::Str("12345"),
        AttrValue::Number(12345.0),
        AttrValue::Number(-7.0),
    ];
    let attributes: Vec<[(&str, AttrValue<'_>); 1]> = orgs.iter().map(|&org| [("org", org)]).collect();
    let mut reasons = Vec::with_capacity(orgs.len());
    let count = allocations_during(|| {
        for attributes in &attributes {
            let ctx = Context::new(black_box("user-1")).with_attributes(black_box(attributes));
            reasons.push(snapshot.evaluate("by-org", &ctx).reason);
        }
    });
    assert_eq!(count, 0);
    assert!(reasons.iter().all(|r| matches!(r, Reason::Split { .. })), "{reasons:?}");
    // A whole number buckets like its decimal text: the number was formatted, on the stack.
    assert_eq!(reasons[1], reasons[2]);
}

#[test]
fn flagd_v3_splits_allocate_nothing() {
    let snapshot = targeting();
    // A salt and key long enough that the text header takes two bytes.
    let long_org = "o".repeat(300);
    let orgs = [AttrValue::Str("org-1"), AttrValue::Str(&long_org), AttrValue::Number(12345.0)];
    let attributes: Vec<[(&str, AttrValue<'_>); 1]> = orgs.iter().map(|&org| [("org", org)]).collect();
    let mut reasons = Vec::with_capacity(KEYS.len() + orgs.len());
    let count = allocations_during(|| {
        for key in KEYS {
            reasons.push(snapshot.evaluate("v3-pair", &Context::new(black_box(key))).reason);
        }
        for attributes in &attributes {
            let ctx = Context::new(black_box("user-1")).with_attributes(black_box(attributes));
            reasons.push(snapshot.evaluate("v3-by-org", &ctx).reason);
        }
    });
    assert_eq!(count, 0);
    assert!(reasons.iter().all(|r| matches!(r, Reason::Split { .. })), "{reasons:?}");
}

#[test]
fn answering_the_caller_s_default_allocates_nothing() {
    let snapshot = targeting();
    let mut answers = Vec::with_capacity(2 * KEYS.len());
    let count = allocations_during(|| {
        for key in KEYS {
            let ctx = Context::new(black_box(key));
            answers.push(snapshot.bool_detail(black_box("killed"), &ctx, true));
            answers.push(snapshot.bool_detail(black_box("unset"), &ctx, true));
        }
    });
    assert_eq!(count, 0);
    assert!(answers.iter().all(|d| d.value && d.variant.is_none()), "{answers:?}");
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: a counter that never counts would make every test above pass.
    let count = allocations_during(|| drop(black_box(String::from("allocates"))));
    assert_eq!(count, 1);
}
