//! A clock file (`potluck clock --out`, read by `export --for`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::feed::bundle::ClockFile::read(data);
});
