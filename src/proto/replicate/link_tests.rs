//! Unit tests of [`Link`](super::Link): its timers are data, so time is
//! whatever the test says.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::replicate::{Clock, ClockBase};

fn f(n: u8) -> FeedId {
    FeedId([n; 32])
}

fn timing() -> LinkTiming {
    LinkTiming::new(Duration::from_secs(15), Duration::from_secs(60))
}

fn open(peer: u8, mine: Clock, once: bool, sources: &mut Sources, now: Instant) -> Link {
    let opening = Opening {
        peer: f(peer),
        policy: &Policy::Open,
        mine,
        base: Default::default(),
        memory: None,
        once,
        timing: timing(),
    };
    Link::open(opening, sources, now)
}

/// Moves every control packet from `a` to `b`; true if `b` heard a goodbye.
fn pump(a: &mut Link, b: &mut Link, b_sources: &mut Sources, now: Instant) -> bool {
    let mut goodbye = false;
    while let Some(p) = a.poll_packet() {
        goodbye |= b.handle_packet(p, now).unwrap() == Some(PeerEnd::Goodbye);
    }
    let changes = b.handle_batch_end(b_sources, now);
    for c in &changes {
        b.handle_modes(c);
    }
    goodbye
}

#[test]
fn a_silent_peer_ends_the_link_at_the_idle_time_and_not_before() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let mut link = open(2, Clock::new(), false, &mut sources, t0);
    assert!(
        link.poll_timeout()
            .is_some_and(|at| at <= t0 + Duration::from_secs(60))
    );
    let almost = t0 + Duration::from_secs(59);
    assert_eq!(link.handle_timeout(almost, &mut sources, |_| 0), Ok(vec![]));
    let late = t0 + Duration::from_secs(60);
    assert_eq!(
        link.handle_timeout(late, &mut sources, |_| 0),
        Err(LinkError::Idle)
    );
    // Anything heard from the peer moves the deadline.
    let mut link = open(3, Clock::new(), false, &mut sources, t0);
    link.handle_packet(Packet::Ping, almost).unwrap();
    assert_eq!(link.handle_timeout(late, &mut sources, |_| 0), Ok(vec![]));
    assert!(link.poll_timeout().is_some_and(|at| at > late));
}

#[test]
fn a_keepalive_goes_out_when_nothing_was_sent_for_a_while() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let mut link = open(2, Clock::new(), false, &mut sources, t0);
    // The opening packets (hello, modes, clock) go out at once.
    while link.poll_packet().is_some() {}
    link.handle_sent(0, true, t0);
    assert!(!link.wants_to_send());
    // Before the keepalive time: nothing to send.
    let soon = link.poll_timeout().unwrap();
    assert!(soon > t0 && soon <= t0 + Duration::from_secs(15));
    link.handle_timeout(t0 + Duration::from_secs(8), &mut sources, |_| 0)
        .unwrap();
    assert!(!link.wants_to_send(), "no ping before the keepalive time");
    let later = t0 + Duration::from_secs(16);
    link.handle_packet(Packet::Ping, later).unwrap();
    link.handle_timeout(later, &mut sources, |_| 0).unwrap();
    assert_eq!(link.poll_packet(), Some(Packet::Ping));
    // A closing link sends no more pings.
    link.close();
    assert_eq!(link.poll_packet(), Some(Packet::Goodbye));
    let much_later = later + Duration::from_secs(20);
    link.handle_packet(Packet::Ping, much_later).unwrap();
    link.handle_timeout(much_later, &mut sources, |_| 0)
        .unwrap();
    assert_eq!(link.poll_packet(), None);
}

#[test]
fn a_one_off_sync_says_goodbye_once_caught_up_and_never_joins_the_sources() {
    let t0 = Instant::now();
    let mut a_sources = Sources::new(Duration::from_millis(400));
    let mut b_sources = Sources::new(Duration::from_millis(400));
    let mut a = open(2, Clock::from([(f(1), 0)]), true, &mut a_sources, t0);
    let mut b = open(1, Clock::from([(f(2), 0)]), false, &mut b_sources, t0);
    assert!(
        !a.is_active(),
        "a one-off sync takes no part in the sources"
    );
    assert!(b.is_active());
    assert!(a.is_one_off() && !b.is_one_off());
    assert_eq!(a_sources.source_of(&f(9)), None);
    pump(&mut a, &mut b, &mut b_sources, t0);
    // B learned its peer is a one-off sync: it leaves B's choice of sources.
    assert!(!b.is_active());
    assert_eq!(b_sources.source_of(&f(9)), None);
    pump(&mut b, &mut a, &mut a_sources, t0);
    a.poll_finish();
    assert!(a.is_closing());
    assert!(
        pump(&mut a, &mut b, &mut b_sources, t0),
        "B hears A's goodbye"
    );
}

#[test]
fn notes_go_at_most_once_per_notes_time() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    // Our peer 3 is not the default source (peer 2 is), so it takes
    // feeds as notes only, and so will we tell it ours: set B's view.
    sources.connect(f(2));
    let mut a = open(3, Clock::from([(f(1), 0)]), false, &mut sources, t0);
    let mut peer_sources = Sources::new(Duration::from_millis(400));
    peer_sources.connect(f(8));
    let mut b = open(1, Clock::from([(f(1), 0)]), false, &mut peer_sources, t0);
    pump(&mut a, &mut b, &mut peer_sources, t0);
    pump(&mut b, &mut a, &mut sources, t0);
    while b.poll_packet().is_some() {}
    b.handle_sent(0, true, t0);
    // B publishes; A takes B's feeds as notes only, so B owes a note. No
    // note went out yet: it goes at once.
    b.handle_local_append(f(1), 1);
    assert!(b.session.has_notes());
    assert!(b.wants_to_send());
    assert!(matches!(b.poll_packet(), Some(Packet::Clock(e)) if e == vec![(f(1), 1)]));
    b.handle_sent(0, true, t0);
    // The next note waits for the notes time.
    b.handle_local_append(f(1), 2);
    assert!(b.session.has_notes());
    assert!(!b.wants_to_send(), "a note alone waits for the notes time");
    let due = b.poll_timeout().unwrap();
    assert_eq!(due, t0 + NOTES_EVERY);
    b.handle_packet(Packet::Ping, due).unwrap();
    b.handle_timeout(due, &mut peer_sources, |_| 2).unwrap();
    assert!(b.wants_to_send());
    assert!(matches!(b.poll_packet(), Some(Packet::Clock(e)) if e == vec![(f(1), 2)]));
    b.handle_sent(0, true, due);
    assert!(b.poll_timeout().is_some_and(|at| at > due));
}

#[test]
fn what_the_store_held_reaches_the_session_and_the_sources() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let mut a = open(2, Clock::from([(f(1), 0)]), false, &mut sources, t0);
    let mut b_sources = Sources::new(Duration::from_millis(400));
    let mut b = open(
        1,
        Clock::from([(f(2), 0), (f(5), 3)]),
        false,
        &mut b_sources,
        t0,
    );
    pump(&mut a, &mut b, &mut b_sources, t0);
    pump(&mut b, &mut a, &mut sources, t0);
    a.handle_messages(t0).unwrap();
    let positions = [(f(5), 1), (f(5), 2), (f(5), 3)];
    let new = BTreeSet::from([f(5)]);
    // The store refused the third: the link holds two.
    let changes = a.handle_ingested(
        &mut sources,
        &Ingested {
            positions: &positions,
            held: 2,
            new: &new,
            forked: &[],
            accepted: 2,
        },
        t0,
    );
    assert!(changes.is_empty());
    assert_eq!(sources.source_of(&f(5)), Some(f(2)));
    assert_eq!(a.memory().theirs.get(&f(5)), Some(&3), "the peer's clock");
    assert_eq!(a.session.wanted_from_peer(), 1, "one message still to come");
    assert_eq!(
        a.poll_progress(t0).map(|p| (p.received, p.remaining)),
        Some((2, 1))
    );
    // A forked feed is no longer exchanged on this link.
    a.handle_ingested(
        &mut sources,
        &Ingested {
            positions: &[],
            held: 0,
            new: &BTreeSet::new(),
            forked: &[(f(5), 2)],
            accepted: 0,
        },
        t0,
    );
    assert!(!a.accepts(&f(5)));
}

#[test]
fn a_refusal_ends_the_link_even_before_the_peers_hello() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let mut link = open(2, Clock::new(), false, &mut sources, t0);
    let refusal = Packet::Refuse(RefuseReason::AlreadyConnected);
    assert_eq!(
        link.handle_packet(refusal, t0),
        Ok(Some(PeerEnd::Refused(RefuseReason::AlreadyConnected)))
    );
}

#[test]
fn progress_is_checked_sooner_while_messages_move_and_not_once_caught_up() {
    let t0 = Instant::now();
    let mut sources = Sources::new(Duration::from_millis(400));
    let mut link = open(2, Clock::from([(f(1), 0)]), false, &mut sources, t0);
    while link.poll_packet().is_some() {}
    link.handle_sent(0, true, t0);
    // The first check is due at once; the peer's clock is not known yet.
    assert!(link.poll_progress(t0).is_some_and(|p| !p.caught_up));
    assert_eq!(link.poll_progress(t0), None);
    let idle = link.timers.get(Timer::Progress);
    assert_eq!(idle, Some(t0 + PROGRESS_IDLE_RECHECK));
    // Messages move: the next check comes sooner.
    link.handle_sent(3, true, t0);
    assert_eq!(link.timers.get(Timer::Progress), Some(t0 + PROGRESS_EVERY));
    assert!(link.poll_progress(t0 + PROGRESS_EVERY).is_some());
    // Caught up: no timer for progress (the link is checked when
    // something else wakes it).
    let mut peer_sources = Sources::new(Duration::from_millis(400));
    let mut peer = open(1, Clock::from([(f(1), 0)]), false, &mut peer_sources, t0);
    pump(&mut peer, &mut link, &mut sources, t0);
    let later = t0 + PROGRESS_EVERY + PROGRESS_IDLE_RECHECK;
    assert!(link.poll_progress(later).is_some_and(|p| p.caught_up));
    assert_eq!(link.timers.get(Timer::Progress), None);
    // Caught up and only pings since: no walk over the clocks however
    // long it stays so (an idle hub with many members).
    let much_later = later + PROGRESS_IDLE_RECHECK * 10;
    assert_eq!(link.handle_packet(Packet::Ping, much_later), Ok(None));
    assert_eq!(link.poll_progress(much_later), None);
    // Something that may change the catch-up: checked again.
    link.handle_local_append(f(1), 1);
    assert!(link.poll_progress(much_later).is_some());
}

/// A hub's member links share their clocks' base (see [`ClockBase`]):
/// rebasing, as the node does whenever a link asks, changes nothing that
/// goes on the wire; it only keeps what each link holds of its own small.
#[test]
fn links_that_share_a_base_send_what_links_that_do_not_send() {
    let t0 = Instant::now();
    let big = |head: u64| -> Clock { (0..200u8).map(|n| (f(n), head)).collect() };
    // Two hubs with the same 200 feeds at 5, each with a member in sync;
    // one hub shares a base among its links, the other does not.
    let run = |share: bool| {
        let mut hub_sources = Sources::new(Duration::from_millis(400));
        let mut member_sources = Sources::new(Duration::from_millis(400));
        let mut base = ClockBase::default();
        let mut hub = Link::open(
            Opening {
                peer: f(250),
                policy: &Policy::Open,
                mine: big(5),
                base: base.current(),
                memory: None,
                once: false,
                timing: timing(),
            },
            &mut hub_sources,
            t0,
        );
        let mut member = open(251, big(5), false, &mut member_sources, t0);
        pump(&mut member, &mut hub, &mut hub_sources, t0);
        pump(&mut hub, &mut member, &mut member_sources, t0);
        let mut wire = Vec::new();
        // Every feed moves on twice at the hub; the member takes each range.
        for head in [6, 7] {
            for n in 0..200u8 {
                hub.handle_local_append(f(n), head);
                while let Some(p) = hub.poll_packet() {
                    wire.push(format!("{p:?}"));
                }
                while let Some(range) = hub.poll_range() {
                    wire.push(format!("{range:?}"));
                }
                if share && hub.wants_new_base() {
                    let newer = base.newer_for(&hub);
                    hub.rebase(&newer);
                }
            }
        }
        assert!(hub.is_live());
        (wire, hub.memory(), hub.session.clock_differences())
    };
    let (plain_wire, plain_memory, plain_own) = run(false);
    let (shared_wire, shared_memory, shared_own) = run(true);
    assert_eq!(shared_wire, plain_wire, "the same packets and ranges");
    assert_eq!(shared_memory, plain_memory, "the same memory of the peer");
    assert_eq!(plain_wire.len(), 400, "a range per new message");
    // Without a shared base the three clocks are all its own (3 × 200);
    // shared, only what moved since the last rebase.
    assert_eq!(plain_own, 600);
    assert!(shared_own <= 64, "{shared_own} entries of its own");
}
