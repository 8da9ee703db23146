//! A counting global allocator proves that mapping an OpenFeature context for flag-core,
//! and evaluating with it through the client, allocates nothing.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use flag_core::{AttrValue, Flag};
use flag_openfeature::with_context;
use flag_sdk::{Evaluate, TestFlags};
use open_feature::EvaluationContext;

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

#[test]
fn mapping_a_context_and_evaluating_with_it_allocates_nothing() {
    let flags = TestFlags::new();
    let mut chat = Flag::rollout("chat", 0.0).unwrap();
    chat.rules.push(
        serde_json::from_value(serde_json::json!({
            "clauses": [{ "attribute": "country", "op": "in", "values": ["NZ"] }],
            "serve": { "variant": "on" },
        }))
        .unwrap(),
    );
    flags.flag(chat).unwrap();
    let client = flags.client();
    let context = EvaluationContext::default()
        .with_targeting_key("user-42")
        .with_custom_field("country", "NZ")
        .with_custom_field("age", 31)
        .with_custom_field("score", 0.5)
        .with_custom_field("beta", true);
    let mut evaluate = || {
        let current = client.current();
        let (enabled, kiwi) = with_context(&context, |ctx| {
            (current.is_enabled("chat", ctx), ctx.attribute("country") == Some(AttrValue::Str("NZ")))
        });
        assert!(black_box(enabled) && kiwi, "the rule on the mapped field holds");
    };
    // The first evaluation on a thread claims its counter row and arc-swap's slots.
    evaluate();
    assert_eq!(allocations_during(&mut evaluate), 0);
}
