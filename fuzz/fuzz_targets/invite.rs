//! An invite code and a peer address, as a person pastes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = potluck::home::config::Invite::parse(text);
        let _ = potluck::home::config::PeerAddr::parse(text);
    }
});
