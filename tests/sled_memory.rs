//! What opening a store allocates, counted by a counting allocator (the
//! only test in this binary, so nothing else allocates meanwhile).
//!
//! sled 0.34 allocates 41 histograms of 512 KiB (21.5 MB of heap) at a
//! process's first open even with its metrics off; the vendored copy
//! allocates none then (vendor/sled/PATCHED.md, change 3). The test also
//! bounds what an open holds at all.

#[path = "../benches/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most the first open of a new store may hold at once. What it
/// holds without sled's histograms is measured in the test's output; the
/// histograms alone are 21.5 MB.
const OPEN_PEAK_LIMIT: isize = 16 << 20;

#[test]
fn the_first_open_of_a_store_allocates_no_metrics_histograms() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    counting_alloc::reset_peak();
    let before = counting_alloc::held();
    let store = potluck::store::Store::open(&dir.path().join("store")).expect("open a new store");
    let peak = counting_alloc::peak() - before;
    println!("the first open of a new store held at most {peak} bytes of heap at once");
    assert!(
        peak < OPEN_PEAK_LIMIT,
        "the first open held {peak} bytes at once, more than {OPEN_PEAK_LIMIT}: \
         are sled's metrics histograms allocated again?"
    );
    drop(store);
}
