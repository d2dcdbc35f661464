//! A message's content: JSON of any shape, typed when it is a known type.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = potluck::content::parse(data) {
        let _ = content.validate();
        let _ = content.to_json_bytes();
    }
});
