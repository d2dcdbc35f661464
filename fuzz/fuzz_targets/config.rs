//! `config.json`, as a person edits it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = potluck::home::config::ConfigFile::parse(text) {
            let _ = config.peer_addrs();
            let _ = config.network_key();
            let _ = config.policy();
        }
    }
});
