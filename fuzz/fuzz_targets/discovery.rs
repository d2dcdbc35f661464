//! A LAN announcement, sealed with the network key, from anyone on the LAN.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::proto::discovery::open(data, &DEFAULT_NETWORK_KEY);
});
