//! Handshake messages from a stranger: as the responder (message 1, then
//! message 3) and as the initiator (message 2).
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::handshake::{DEFAULT_NETWORK_KEY, Handshake};

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek_key();
    // The first byte splits the input into two messages.
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (one, two) = data.split_at(split);
    if let Ok(mut responder) = Handshake::responder(&key, &DEFAULT_NETWORK_KEY)
        && responder.read_incoming(one).is_ok()
    {
        let _ = responder.next_outgoing();
        let _ = responder.read_incoming(two);
    }
    if let Ok(mut initiator) = Handshake::initiator(&key, &DEFAULT_NETWORK_KEY, None) {
        let _ = initiator.next_outgoing();
        let _ = initiator.read_incoming(data);
    }
});

fn ed25519_dalek_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}
