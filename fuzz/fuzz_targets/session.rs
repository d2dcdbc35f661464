//! A replication link driven by a peer that sends arbitrary packets: the
//! input is cut into frames (a length byte, then that many bytes), each
//! decoded as packets and handed to the link (the one way into a
//! session), which is polled for what it would send after each. It may
//! refuse the peer, never panic or grow without bound.
#![no_main]
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use potluck::feed::message::FeedId;
use potluck::proto::replicate::{Link, LinkTiming, Opening, Policy, Sources};
use potluck::proto::wire::Packet;

fuzz_target!(|data: &[u8]| {
    let mine: BTreeMap<FeedId, u64> = (1..=3u8).map(|i| (FeedId([i; 32]), u64::from(i) * 5)).collect();
    let policy = if data.first().is_some_and(|b| b & 1 == 1) {
        Policy::Open
    } else {
        Policy::Hops(1)
    };
    let now = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let opening = Opening {
        peer: FeedId([9; 32]),
        policy: &policy,
        // Kept against a base, as a node's sessions are.
        base: std::sync::Arc::new(mine.clone()),
        mine,
        memory: None,
        once: data.first().is_some_and(|b| b & 2 == 2),
        timing: LinkTiming::new(Duration::from_secs(15), Duration::from_secs(60)),
    };
    let mut link = Link::open(opening, &mut sources, now);
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let frame = &tail[..usize::from(len).min(tail.len())];
        rest = &tail[frame.len()..];
        let Ok(packets) = Packet::decode_all(frame) else {
            return;
        };
        for packet in packets {
            if link.handle_packet(packet, now).is_err() {
                return;
            }
        }
        for change in link.handle_batch_end(&mut sources, now) {
            link.handle_modes(&change);
        }
        // What it would send: bounded by what it holds and what it was told.
        for _ in 0..1_000 {
            if link.poll_packet().is_none() {
                break;
            }
        }
        for _ in 0..100 {
            match link.poll_range() {
                Some((_, first, last)) => assert!(first <= last, "an empty range"),
                None => break,
            }
        }
        link.poll_finish();
        let _ = link.poll_progress(now);
    }
});
