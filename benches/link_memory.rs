//! What a hub's member sessions cost in memory (issue 20: a hub with 1,000
//! members within 150 MB), measured on the sans-io [`Link`] alone, with a
//! counting allocator: no sockets, no store, no runtime, so the numbers
//! are the replication state and nothing else, and they do not vary from
//! run to run.
//!
//! The hub holds `LINKMEM_FEEDS` feeds (default 1,000). `LINKMEM_LINKS`
//! members (default 1,000) connect, each with a clock that lists every
//! feed at the hub's head (a community in sync). The bench reports the
//! heap bytes held per link:
//!
//! 1. once every link is live (clocks exchanged);
//! 2. after traffic: every feed gets `LINKMEM_ROUNDS` new messages (default
//!    3), each delivered to every link as the node does (a local append,
//!    the link's range sent);
//! 3. after the links closed (what is left must be the node's own state).
//!
//! Run: `cargo bench --bench link_memory`; `cargo test --benches` runs a
//! small smoke version.

use std::time::{Duration, Instant};

use potluck::feed::message::FeedId;
use potluck::proto::replicate::{Clock, ClockBase, Link, LinkTiming, Opening, Policy, Sources};
use potluck::proto::wire::{self, MAX_CLOCK_ENTRIES, PROTOCOL_VERSION, Packet};

#[path = "common/mod.rs"]
mod common;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, held};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn feed(i: u64) -> FeedId {
    // Spread over the key space as real feed ids are.
    FeedId(*blake3::hash(&i.to_be_bytes()).as_bytes())
}

/// Drains what the link wants to send, as a driver would, and reports
/// the ranges as sent.
fn drain(link: &mut Link, now: Instant) -> u64 {
    let mut messages = 0;
    while link.poll_packet().is_some() {}
    while let Some((_, first, last)) = link.poll_range() {
        messages += last - first + 1;
    }
    link.handle_sent(messages, true, now);
    messages
}

fn main() {
    let quick = common::quick();
    let feeds = common::env_or("LINKMEM_FEEDS", if quick { 100 } else { 1_000 });
    let links = common::env_or("LINKMEM_LINKS", if quick { 50 } else { 1_000 });
    let rounds = common::env_or("LINKMEM_ROUNDS", if quick { 1 } else { 3 });
    let started = Instant::now();
    let now = Instant::now();
    let policy = Policy::Open;
    let timing = LinkTiming::new(Duration::from_secs(15), Duration::from_secs(60));
    let mut hub_clock: Clock = (0..feeds).map(|i| (feed(i), 10)).collect();
    let mut sources = Sources::new(Duration::from_secs(2));
    // What the node does (`src/node/driver.rs`): one base for all links,
    // handed on when a link asks.
    let mut base = ClockBase::default();
    let share = |link: &mut Link, base: &mut ClockBase| {
        if link.wants_new_base() {
            let newer = base.newer_for(link);
            link.rebase(&newer);
        }
    };

    let before = held();
    let mut open = Vec::with_capacity(links as usize);
    for member in 0..links {
        let peer = feed(1_000_000 + member);
        let mut link = Link::open(
            Opening {
                peer,
                policy: &policy,
                mine: hub_clock.clone(),
                base: base.current(),
                memory: None,
                once: false,
                timing: timing.clone(),
            },
            &mut sources,
            now,
        );
        // The member's opening: Hello, its clock (every feed at the hub's
        // head), ClockEnd.
        let entries: Vec<(FeedId, u64)> = hub_clock.iter().map(|(f, s)| (*f, *s)).collect();
        let mut packets = vec![Packet::Hello {
            version: PROTOCOL_VERSION,
            flags: 0,
            baseline: [0; 32],
        }];
        packets.extend(
            entries
                .chunks(MAX_CLOCK_ENTRIES)
                .map(|chunk| Packet::Clock(chunk.to_vec())),
        );
        packets.push(Packet::ClockEnd {
            digest: wire::clock_digest(&hub_clock),
        });
        for packet in packets {
            if let Err(e) = link.handle_packet(packet, now) {
                panic!("member {member}: {e}");
            }
        }
        assert!(link.is_live(), "member {member} is live");
        drain(&mut link, now);
        share(&mut link, &mut base);
        open.push(link);
    }
    let live = held() - before;
    let live_time = started.elapsed();

    let mut sent = 0;
    for round in 1..=rounds {
        for i in 0..feeds {
            let f = feed(i);
            let head = 10 + round;
            hub_clock.insert(f, head);
            for link in &mut open {
                link.handle_local_append(f, head);
                sent += drain(link, now);
                share(link, &mut base);
            }
        }
    }
    let after_traffic = held() - before;
    let traffic_time = started.elapsed() - live_time;
    assert_eq!(
        sent,
        rounds * feeds * links,
        "every new message went to every member once"
    );

    for mut link in open.drain(..) {
        let _ = link.leave(&mut sources);
    }
    drop(open);
    drop(base);
    let after_close = held() - before;

    let per = |bytes: isize| bytes as f64 / links as f64 / 1e3;
    println!("link memory: {links} members, {feeds} feeds, {rounds} rounds of traffic");
    println!(
        "  live:          {:8.1} MB = {:7.1} KB per member ({:.2} s to open them all)",
        live as f64 / 1e6,
        per(live),
        live_time.as_secs_f64()
    );
    println!(
        "  after traffic: {:8.1} MB = {:7.1} KB per member ({:.2} s: {:.2} µs per message and member)",
        after_traffic as f64 / 1e6,
        per(after_traffic),
        traffic_time.as_secs_f64(),
        traffic_time.as_secs_f64() * 1e6 / (rounds * feeds * links) as f64
    );
    println!(
        "  after close:   {:8.1} MB (the node's own state)",
        after_close as f64 / 1e6
    );
}
