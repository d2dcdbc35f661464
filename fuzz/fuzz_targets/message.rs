//! A message from a peer or a file: decode it, and check what can be
//! checked without its feed (version, size, content hash, content shape).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = potluck::feed::message::Message::decode(data.to_vec()) {
        let _ = potluck::feed::validate::check_standalone(&msg);
        let _ = msg.to_json();
    }
});
