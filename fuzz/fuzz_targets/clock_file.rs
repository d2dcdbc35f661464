//! A clock file from a friend.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::bundle::ClockFile::read(data);
});
