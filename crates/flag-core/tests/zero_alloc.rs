//! A counting global allocator proves evaluation allocates nothing.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use flag_core::{AttrValue, Context, Evaluate, Flag, FlagSet, Snapshot};

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
    assert!(
        reasons.iter().all(|r| matches!(r, flag_core::Reason::TargetMatch { rule: 0, .. })),
        "{reasons:?}"
    );
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
    assert_eq!(stages.len(), KEYS.len());
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: a counter that never counts would make every test above pass.
    let count = allocations_during(|| drop(black_box(String::from("allocates"))));
    assert_eq!(count, 1);
}
