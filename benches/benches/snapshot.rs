//! `cargo bench -p flag-benches --bench snapshot`: size and compile time of a large snapshot.
//!
//! Size is the heap the snapshot holds, counted by a global allocator: bytes requested by
//! compilation minus bytes it freed, with the source flag set dropped separately.
#![allow(missing_docs, unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{BatchSize, Criterion};
use flag_benches::simple_flags;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FLAGS: usize = 10_000;

fn main() {
    let set = simple_flags(FLAGS);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let snapshot = set.compile().unwrap();
    let held = LIVE_BYTES.load(Ordering::Relaxed) - before;
    println!(
        "snapshot flags={FLAGS} heap_bytes={held} bytes_per_flag={} (+{} inline)",
        held / FLAGS as isize,
        std::mem::size_of_val(&snapshot)
    );
    drop(snapshot);

    let mut criterion = Criterion::default().configure_from_args();
    criterion.bench_function("snapshot/compile_10000_simple", |b| {
        b.iter_batched(|| simple_flags(FLAGS), |set| black_box(set.compile().unwrap()), BatchSize::LargeInput)
    });
    criterion.final_summary();
}
