//! A LAN announcement datagram, opened with the default network key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::handshake::DEFAULT_NETWORK_KEY;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::discovery::open(data, &DEFAULT_NETWORK_KEY);
});
