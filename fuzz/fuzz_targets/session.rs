//! A replication session driven by a peer that sends arbitrary packets:
//! the input is cut into frames (a length byte, then that many bytes), each
//! decoded as packets and handed to the session, which is polled for what
//! it would send after each. It may refuse the peer, never panic or grow
//! without bound.
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use potluck::feed::message::FeedId;
use potluck::proto::replicate::{Policy, Session};
use potluck::proto::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let mine: BTreeMap<FeedId, u64> = (1..=3u8).map(|i| (FeedId([i; 32]), u64::from(i) * 5)).collect();
    let policy = if data.first().is_some_and(|b| b & 1 == 1) {
        Policy::Open
    } else {
        Policy::Hops(1)
    };
    let mut session = Session::new(&policy, mine, None);
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let frame = &tail[..usize::from(len).min(tail.len())];
        rest = &tail[frame.len()..];
        let Ok(packets) = Packet::decode_all(frame) else {
            return;
        };
        for packet in packets {
            if session.on_packet(packet).is_err() {
                return;
            }
        }
        let _ = session.take_ahead();
        // What it would send: bounded by what it holds and what it was told.
        for _ in 0..1_000 {
            if session.poll_packet().is_none() {
                break;
            }
        }
        for _ in 0..100 {
            match session.next_range() {
                Some((_, first, last)) => assert!(first <= last, "an empty range"),
                None => break,
            }
        }
        let _ = session.is_caught_up();
    }
});
