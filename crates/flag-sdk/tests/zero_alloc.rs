//! A counting global allocator proves evaluation through the `Client` allocates nothing,
//! counting for metrics included — also on the first evaluation after a change.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use flag_core::{AttrValue, Context, Flag};
use flag_sdk::{Evaluate, Outcome, TestFlags};

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

#[test]
fn evaluating_through_the_client_allocates_nothing() {
    let flags = TestFlags::new();
    flags.flag(Flag::rollout("rollout", 50.0).unwrap()).unwrap();
    flags.variant("chat", "dark").string("theme", "dusk").number("limit", 5.0);
    let client = flags.client();
    let handle = client.handle("rollout");
    let mut cached = client.cached();
    let attributes = [("country", AttrValue::Str("NZ"))];
    let default_json = serde_json::Value::Null;
    let mut evaluate_everything = || {
        for key in KEYS {
            let ctx = Context::new(key).with_attributes(&attributes);
            black_box(client.is_enabled("rollout", &ctx));
            black_box(client.is_enabled(&handle, &ctx));
            black_box(cached.is_enabled(&handle, &ctx));
            black_box(client.bool_value("missing", &ctx, true));
            black_box(client.number_value("limit", &ctx, 1.0));
            black_box(client.launch_stage("chat", &ctx));
            let current = client.current();
            black_box(current.string_value("theme", &ctx, "light"));
            black_box(current.json_value("theme", &ctx, &default_json));
            black_box(current.evaluate("rollout", &ctx));
            client.record_outcome("rollout", &ctx, Outcome::Success);
            client.record_outcome(&handle, &ctx, Outcome::Error);
            client.record_latency(&handle, &ctx, Duration::from_micros(700));
            client.observe(&handle, &ctx).fail();
            drop(client.observe("rollout", &ctx));
            cached.record_outcome(&handle, &ctx, Outcome::Success);
            cached.record_latency(&handle, &ctx, Duration::from_millis(40));
        }
    };
    // The first calls on a thread claim its counter row and arc-swap's per-thread slots;
    // the first recorded outcome makes the snapshot's outcome counters.
    evaluate_everything();
    assert_eq!(allocations_during(&mut evaluate_everything), 0);

    // After a change, the first evaluations of the new snapshot register their counters
    // without allocating either, and its outcome counters were made when it was installed.
    flags.flag(Flag::rollout("rollout", 60.0).unwrap()).unwrap();
    assert_eq!(allocations_during(&mut evaluate_everything), 0);
}
