//! What a stranger sends a listening node during the Noise handshake: each
//! message (a length byte pair, then that many bytes) handed to the
//! responder, which must fail cleanly or finish.
#![no_main]
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake};

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let Ok(mut responder) = Handshake::responder(&key, &DEFAULT_NETWORK_KEY) else {
        return;
    };
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let message = &rest[..len.min(rest.len())];
        rest = &rest[message.len()..];
        if responder.read_incoming(message).is_err() {
            return;
        }
        while let Ok(Some(_)) = responder.next_outgoing() {}
        if responder.is_finished() {
            let _ = responder.finish();
            return;
        }
    }
});
