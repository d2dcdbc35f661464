//! A message from a peer: decode, then validate against no head and
//! against a head of sequence 1 (any id). Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use potluck::message::{Message, MessageId};
use potluck::validate::{FeedHead, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data.to_vec()) {
        let _ = validate(None, &msg);
        let head = FeedHead {
            sequence: msg.sequence().saturating_sub(1),
            id: MessageId(msg.header().previous.0),
        };
        let _ = validate(Some(&head), &msg);
        let _ = msg.to_json();
    }
});
