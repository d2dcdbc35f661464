//! Message content: the validity rule and typed parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let valid = potluck::validate::content_type(data).is_ok();
    let decoded = potluck::validate::content_object(data);
    // Whatever decodes is valid.
    assert!(decoded.is_err() || valid);
    let _ = potluck::content::parse(data);
});
