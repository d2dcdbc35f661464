//! A bundle file (sync by file): every message read until the end or the
//! first error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = potluck::feed::bundle::BundleReader::new(data);
    // Each message is at least a header long, so this ends; the bound
    // keeps the target's time per input small regardless.
    for _ in 0..10_000 {
        match reader.next_message() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
