//! One frame's plaintext of replication packets.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = potluck::proto::wire::Packet::decode_all(data);
});
