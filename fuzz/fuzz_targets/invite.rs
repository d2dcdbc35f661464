//! An invite code and a peer address, as a person pastes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = potluck::config::Invite::parse(text);
        let _ = potluck::config::PeerAddr::parse(text);
    }
});
