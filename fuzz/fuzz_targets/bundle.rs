//! A bundle file, read to its end or its first problem.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::bundle::read_bundle(&mut &data[..]);
});
