//! Unit tests of [`Session`](super::Session).

use std::collections::BTreeMap;

use super::*;
use crate::proto::replicate::build_clock;

fn f(n: u8) -> FeedId {
    FeedId([n; 32])
}

/// Delivers every queued control packet from `a` to `b`.
fn pump(a: &mut Session, b: &mut Session) -> Vec<Incoming> {
    let mut out = Vec::new();
    while let Some(p) = a.poll_packet() {
        out.push(b.handle_packet(p).unwrap());
    }
    out
}

fn clock(entries: &[(u8, u64)]) -> Clock {
    entries.iter().map(|(n, s)| (f(*n), *s)).collect()
}

#[test]
fn what_is_left_to_receive_counts_wanted_feeds_only() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 3)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(2, 1), (3, 4)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    // a lacks feed 3 (4 messages); b lacks 5 of feed 1 and 2 of feed 2.
    assert_eq!(a.wanted_from_peer(), 4);
    assert_eq!(b.wanted_from_peer(), 7);
    a.handle_received(f(3), 3);
    assert_eq!(a.wanted_from_peer(), 1);
    // A blocked feed is not wanted.
    a.handle_blocking(f(3), true, 3);
    assert_eq!(a.wanted_from_peer(), 0);
}

#[test]
fn fresh_sessions_exchange_full_clocks_and_ranges() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 3)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(2, 1), (3, 4)]), None);
    assert!(pump(&mut a, &mut b).contains(&Incoming::ClockReady));
    assert!(pump(&mut b, &mut a).contains(&Incoming::ClockReady));
    let mut a_sends = Vec::new();
    while let Some(r) = a.poll_range() {
        a_sends.push(r);
    }
    a_sends.sort();
    assert_eq!(a_sends, vec![(f(1), 1, 5), (f(2), 2, 3)]);
    assert_eq!(b.poll_range(), Some((f(3), 1, 4)));
    assert_eq!(b.poll_range(), None);
}

#[test]
fn unwanted_feeds_are_neither_sent_nor_accepted() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (9, 2)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(9, UNWANTED)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), Some((f(1), 1, 5)));
    assert_eq!(a.poll_range(), None);
    assert!(!b.accepts(&f(9)));
    assert!(b.accepts(&f(1)));
}

#[test]
fn a_closed_peer_gets_only_what_it_lists() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 2)]), None);
    let mut b = Session::new(&Policy::Hops(1), clock(&[(2, 0)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), Some((f(2), 1, 2)));
    assert_eq!(a.poll_range(), None);
    assert!(!b.accepts(&f(1)));
}

#[test]
fn live_appends_are_sent_once() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), None);
    a.handle_local_append(f(1), 2);
    a.handle_local_append(f(1), 2);
    assert_eq!(a.poll_range(), Some((f(1), 2, 2)));
    assert_eq!(a.poll_range(), None);
    // b receives it; b must not echo it back to a.
    b.handle_received(f(1), 2);
    b.handle_local_append(f(1), 2);
    assert_eq!(b.poll_range(), None);
}

#[test]
fn long_feeds_take_turns() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 600), (2, 10)]), None);
    let mut b = Session::new(&Policy::Open, Clock::new(), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    let order: Vec<_> = std::iter::from_fn(|| a.poll_range()).collect();
    assert_eq!(
        order,
        vec![
            (f(1), 1, 256),
            (f(2), 1, 10),
            (f(1), 257, 512),
            (f(1), 513, 600)
        ]
    );
}

fn deliver(x: &mut Session, y: &mut Session) -> usize {
    let mut bytes = 0;
    while let Some(p) = x.poll_packet() {
        bytes += p.encoded_len();
        y.handle_packet(p).unwrap();
    }
    bytes
}

fn send_ranges(x: &mut Session, y: &mut Session) {
    while let Some((feed, _, last)) = x.poll_range() {
        y.handle_received(feed, last);
    }
}

/// Runs a session pair to the point where both have sent their ranges
/// and received the other's; returns the bytes of control packets.
fn run_pair(
    a_clock: Clock,
    b_clock: Clock,
    a_mem: Option<PeerMemory>,
    b_mem: Option<PeerMemory>,
) -> (Session, Session, usize) {
    let mut a = Session::new(&Policy::Open, a_clock, a_mem);
    let mut b = Session::new(&Policy::Open, b_clock, b_mem);
    let mut bytes = 0;
    for _ in 0..4 {
        bytes += deliver(&mut a, &mut b);
        bytes += deliver(&mut b, &mut a);
    }
    // Deliver the ranges as if the messages arrived.
    send_ranges(&mut a, &mut b);
    send_ranges(&mut b, &mut a);
    (a, b, bytes)
}

/// `n` feeds, each held up to 7.
fn big_clock(n: u32) -> Clock {
    (0..n)
        .map(|i| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            (FeedId(id), 7)
        })
        .collect()
}

#[test]
fn an_in_sync_reconnect_sends_almost_nothing() {
    let big = big_clock(10_000);
    let (a, b, first) = run_pair(big.clone(), big.clone(), None, None);
    assert!(first > 10_000 * 40);
    let (mut a2, mut b2, second) =
        run_pair(big.clone(), big.clone(), Some(a.memory()), Some(b.memory()));
    assert!(second < 200, "in-sync reconnect sent {second} bytes");
    assert!(a2.is_caught_up() && b2.is_caught_up());
}

#[test]
fn push_modes_keep_an_in_sync_reconnect_small() {
    let big = big_clock(10_000);
    let (a, b, _) = run_pair(big.clone(), big.clone(), None, None);
    // A later connection: one side asks for notes only by default.
    let start = |mem: PeerMemory, push: bool| {
        Session::start(
            &Policy::Open,
            big.clone(),
            Some(mem),
            false,
            Some((push, vec![])),
            // Kept against a base both share, as a node's sessions are.
            std::sync::Arc::new(big.clone()),
        )
    };
    let mut a2 = start(a.memory(), false);
    let mut b2 = start(b.memory(), true);
    let mut bytes = 0;
    for _ in 0..4 {
        bytes += deliver(&mut a2, &mut b2);
        bytes += deliver(&mut b2, &mut a2);
    }
    assert!(bytes < 200, "in-sync reconnect sent {bytes} bytes");
    assert!(a2.is_caught_up() && b2.is_caught_up());
    assert!(!b2.peer_asks_push(&FeedId([0; 32])));
}

#[test]
fn a_diff_after_changes_carries_only_the_changes() {
    let base = clock(&[(1, 3), (2, 3), (3, 3)]);
    let (a, b, _) = run_pair(base.clone(), base.clone(), None, None);
    let mut changed = base.clone();
    changed.insert(f(2), 5);
    changed.remove(&f(3));
    let mut a2 = Session::new(&Policy::Open, changed, Some(a.memory()));
    let mut b2 = Session::new(&Policy::Open, base.clone(), Some(b.memory()));
    let mut entries = 0;
    while let Some(p) = a2.poll_packet() {
        if let Packet::Clock(e) = &p {
            entries += e.len();
        }
        b2.handle_packet(p).unwrap();
    }
    assert_eq!(entries, 2);
    assert!(b2.is_live());
    assert_eq!(b2.theirs.get(&f(2)), Some(5));
    assert_eq!(b2.theirs.get(&f(3)), None);
}

#[test]
fn forgotten_memory_falls_back_to_a_full_clock() {
    let base = clock(&[(1, 3), (2, 3)]);
    let (a, _b, _) = run_pair(base.clone(), base.clone(), None, None);
    // b lost its memory (say, a wiped store); a still sends a diff.
    let (a2, b2, _) = run_pair(base.clone(), base.clone(), Some(a.memory()), None);
    assert!(a2.is_live() && b2.is_live());
    assert_eq!(b2.theirs.to_clock(), base);
    assert!(a2.resent_full);
}

#[test]
fn protocol_violations_are_errors() {
    let mut s = Session::new(&Policy::Open, Clock::new(), None);
    assert_eq!(
        s.handle_packet(Packet::Clock(vec![(f(1), 1)])),
        Err(ProtocolError::Unexpected("clock"))
    );
    assert_eq!(
        s.handle_packet(Packet::Hello {
            version: 9,
            flags: 0,
            baseline: [0; 32]
        }),
        Err(ProtocolError::Version(9))
    );
    assert_eq!(
        s.check_message_allowed(),
        Err(ProtocolError::Unexpected("message"))
    );
    // Messages have one way in, through the driver's decoder.
    assert_eq!(
        s.handle_packet(Packet::Message(vec![1])),
        Err(ProtocolError::Unexpected("undecoded message"))
    );
    s.handle_packet(Packet::Resync).unwrap();
    assert_eq!(
        s.handle_packet(Packet::Resync),
        Err(ProtocolError::RepeatedResync)
    );
}

#[test]
fn blocking_mid_session_tells_the_peer() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(1, 1), (9, 4)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    // a blocks feed 9 before b got round to sending it.
    a.handle_blocking(f(9), true, 0);
    assert!(!a.accepts(&f(9)));
    pump(&mut a, &mut b);
    assert_eq!(b.poll_range(), None, "b must not send a blocked feed");
    // The memories still agree, so the next reconnect skips requests.
    assert_eq!(a.memory().mine_as_known, b.memory().theirs);
    a.handle_blocking(f(9), false, 0);
    assert!(a.accepts(&f(9)));
    pump(&mut a, &mut b);
    assert_eq!(b.poll_range(), Some((f(9), 1, 4)));
}

#[test]
fn memory_round_trips() {
    let m = PeerMemory {
        theirs: clock(&[(1, 2), (3, UNWANTED)]),
        mine_as_known: clock(&[(4, 0)]),
    };
    assert_eq!(PeerMemory::decode(&m.encode()), Some(m.clone()));
    let mut bad = m.encode();
    bad.pop();
    assert_eq!(PeerMemory::decode(&bad), None);
}

#[test]
fn hops_follow_the_graph_and_skip_blocked() {
    let me = f(1);
    let graph = |x: &FeedId| match x.0[0] {
        1 => vec![f(2), f(3)],
        2 => vec![f(4)],
        4 => vec![f(5)],
        _ => vec![],
    };
    let heads: BTreeMap<FeedId, u64> = [(f(2), 7), (f(9), 1)].into();
    let blocked = BTreeSet::from([f(3)]);
    let c = build_clock(&Policy::Hops(2), me, &heads, graph, &blocked);
    assert_eq!(c, clock(&[(1, 0), (2, 7), (3, UNWANTED), (4, 0)]));
    let open = build_clock(&Policy::Open, me, &heads, graph, &blocked);
    assert_eq!(open, clock(&[(1, 0), (2, 7), (3, UNWANTED), (9, 1)]));
}

// -----------------------------------------------------------------
// Push modes (one live source per feed).

fn with_modes(mine: Clock, default_push: bool, feeds: Vec<(FeedId, bool)>) -> Session {
    Session::start(
        &Policy::Open,
        mine,
        None,
        false,
        Some((default_push, feeds)),
        Default::default(),
    )
}

#[test]
fn a_notes_only_feed_gets_notes_until_asked_for_pushes() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    let mut b = with_modes(clock(&[(1, 1)]), false, vec![]);
    // b's modes travel between its Hello and its clock.
    let first: Vec<Packet> = std::iter::from_fn(|| b.poll_packet()).collect();
    assert!(matches!(first[0], Packet::Hello { .. }));
    assert_eq!(
        first[1],
        Packet::Push {
            default: Some(false),
            entries: vec![]
        }
    );
    for p in first {
        a.handle_packet(p).unwrap();
    }
    pump(&mut a, &mut b);
    assert!(a.is_live() && b.is_live());
    a.handle_local_append(f(1), 2);
    a.handle_local_append(f(1), 3);
    assert_eq!(a.poll_range(), None, "notes only: no messages");
    assert_eq!(a.poll_packet(), Some(Packet::Clock(vec![(f(1), 3)])));
    assert_eq!(a.poll_packet(), None, "one note for both appends");
    b.handle_packet(Packet::Clock(vec![(f(1), 3)])).unwrap();
    assert_eq!(b.poll_ahead(), vec![(f(1), 3, 1)]);
    assert_eq!(b.poll_ahead(), vec![]);
    // b asks for pushes: a sends the range the note announced.
    b.handle_modes(None, &[(f(1), true)]);
    assert!(b.asks_push(&f(1)));
    pump(&mut b, &mut a);
    assert!(a.peer_asks_push(&f(1)));
    assert_eq!(a.poll_range(), Some((f(1), 2, 3)));
    // Memories agree, so the next reconnect still skips requests.
    b.handle_received(f(1), 3);
    assert_eq!(a.memory().mine_as_known, b.memory().theirs);
    assert_eq!(a.memory().theirs, b.memory().mine_as_known);
}

#[test]
fn switching_to_notes_drops_queued_ranges() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    let mut b = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    a.handle_local_append(f(1), 2);
    assert!(a.has_pending());
    b.handle_modes(None, &[(f(1), false)]);
    // Asking for what is already so sends nothing.
    b.handle_modes(None, &[(f(1), false)]);
    assert_eq!(
        b.poll_packet(),
        Some(Packet::Push {
            default: None,
            entries: vec![(f(1), false)]
        })
    );
    a.handle_packet(Packet::Push {
        default: None,
        entries: vec![(f(1), false)],
    })
    .unwrap();
    assert_eq!(b.poll_packet(), None);
    assert_eq!(a.poll_range(), None);
    assert_eq!(a.poll_packet(), Some(Packet::Clock(vec![(f(1), 2)])));
}

#[test]
fn a_reset_to_push_sends_what_was_held_back() {
    let mut a = Session::new(&Policy::Open, clock(&[(1, 4), (2, 2)]), None);
    let mut b = with_modes(Clock::new(), false, vec![(f(2), true)]);
    pump(&mut b, &mut a);
    pump(&mut a, &mut b);
    assert_eq!(a.poll_range(), Some((f(2), 1, 2)));
    assert_eq!(a.poll_range(), None);
    assert_eq!(b.poll_ahead(), vec![(f(1), 4, 0), (f(2), 2, 0)]);
    b.handle_modes(Some(true), &[]);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), Some((f(1), 1, 4)));
}

#[test]
fn a_one_off_sync_waits_for_the_peer_to_take_its_feeds() {
    let mut a = Session::start(
        &Policy::Open,
        clock(&[(1, 3)]),
        None,
        true,
        None,
        Default::default(),
    );
    let mut b = with_modes(Clock::new(), false, vec![]);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert!(b.peer_is_once());
    assert_eq!(a.poll_range(), None);
    assert!(!a.is_caught_up(), "b lacks feed 1: not done");
    b.handle_modes(Some(true), &[]);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), Some((f(1), 1, 3)));
    assert!(a.is_caught_up());
}

#[test]
fn push_before_hello_is_a_violation() {
    let mut s = Session::new(&Policy::Open, Clock::new(), None);
    assert_eq!(
        s.handle_packet(Packet::Push {
            default: Some(true),
            entries: vec![]
        }),
        Err(ProtocolError::Unexpected("push"))
    );
}

/// The answers the catch-up checks gave before they were made faster,
/// to compare them with.
impl Session {
    /// [`Session::wanted_from_peer`] by a lookup of each of the peer's
    /// feeds in our clock: what the tests compare it with.
    fn wanted_from_peer_by_lookups(&self) -> u64 {
        self.theirs
            .iter()
            .filter(|&(feed, &v)| v <= MAX_CLOCK_SEQUENCE && self.accepts(feed))
            .map(|(feed, &v)| v.saturating_sub(self.my_head(feed)))
            .fold(0u64, u64::saturating_add)
    }

    /// [`Session::is_caught_up`] as it was before it kept hints: one walk
    /// from the start of each clock, with the conditions spelled out
    /// again. What the tests compare it with.
    fn is_caught_up_walking_from_the_start(&self) -> bool {
        if self.phase != Phase::Live
            || !self.pending.is_empty()
            || !self.outbox.is_empty()
            || !self.notes.is_empty()
        {
            return false;
        }
        let given = self.mine.iter().all(|(feed, &v)| {
            v > MAX_CLOCK_SEQUENCE
                || !self.peer_wants(feed)
                || self.peer_holds(feed) >= v
                || self.withheld.contains(feed)
        });
        given
            && self.theirs.iter().all(|(feed, &v)| {
                v > MAX_CLOCK_SEQUENCE || !self.accepts(feed) || self.my_head(feed) >= v
            })
    }
}

/// What a one-off sync does to its session between two checks of
/// whether it is done.
#[derive(Clone, Debug)]
enum CatchUpOp {
    Received(u8, u64),
    LocalAppend(u8, u64),
    Blocking(u8, bool, u64),
    Damaged(u8, u64),
    Modes(bool, Vec<(u8, bool)>),
    PeerBlocks(u8, bool),
    SendRanges,
    SendPackets,
}

fn catch_up_op() -> impl proptest::strategy::Strategy<Value = CatchUpOp> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0u8..12, 0u64..6).prop_map(|(f, s)| CatchUpOp::Received(f, s)),
        4 => (0u8..12, 0u64..6).prop_map(|(f, s)| CatchUpOp::LocalAppend(f, s)),
        1 => (0u8..12, any::<bool>(), 0u64..6).prop_map(|(f, b, h)| CatchUpOp::Blocking(f, b, h)),
        1 => (0u8..12, 0u64..6).prop_map(|(f, s)| CatchUpOp::Damaged(f, s)),
        1 => (any::<bool>(), proptest::collection::vec((0u8..12, any::<bool>()), 0..4))
            .prop_map(|(d, e)| CatchUpOp::Modes(d, e)),
        1 => (0u8..12, any::<bool>()).prop_map(|(f, b)| CatchUpOp::PeerBlocks(f, b)),
        3 => Just(CatchUpOp::SendRanges),
        3 => Just(CatchUpOp::SendPackets),
    ]
}

proptest::proptest! {
    /// The check that starts where its last walk found a lagging feed
    /// answers as a walk from the start does, whatever happens between
    /// two checks; and what is left to receive, counted walking both
    /// clocks side by side, is what lookups count.
    #[test]
    fn the_catch_up_checks_answer_as_walks_from_the_start(
        ours in proptest::collection::vec((0u8..12, 0u64..6), 0..12),
        peers in proptest::collection::vec((0u8..12, 0u64..6), 0..12),
        once in proptest::prelude::any::<bool>(),
        open in proptest::prelude::any::<bool>(),
        ops in proptest::collection::vec(catch_up_op(), 0..60),
    ) {
        // A closed policy takes only the feeds its clock names.
        let policy = if open { Policy::Open } else { Policy::Hops(1) };
        let mut a = Session::start(&policy, clock(&ours), None, once, None, Default::default());
        let mut b = Session::new(&Policy::Open, clock(&peers), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        for op in ops {
            match op {
                CatchUpOp::Received(n, s) => a.handle_received(f(n), s),
                CatchUpOp::LocalAppend(n, s) => a.handle_local_append(f(n), s),
                CatchUpOp::Blocking(n, blocked, head) => a.handle_blocking(f(n), blocked, head),
                CatchUpOp::Damaged(n, s) => a.handle_damaged(f(n), s),
                CatchUpOp::Modes(default_push, entries) => {
                    let entries: Vec<(FeedId, bool)> =
                        entries.into_iter().map(|(n, p)| (f(n), p)).collect();
                    a.handle_modes(Some(default_push), &entries);
                }
                CatchUpOp::PeerBlocks(n, blocked) => {
                    // The peer's clock entry changes (to "unwanted" and back).
                    b.handle_blocking(f(n), blocked, 0);
                    pump(&mut b, &mut a);
                }
                CatchUpOp::SendRanges => while a.poll_range().is_some() {},
                CatchUpOp::SendPackets => while a.poll_packet().is_some() {},
            }
            let expected = a.is_caught_up_walking_from_the_start();
            proptest::prop_assert_eq!(a.is_caught_up(), expected);
            proptest::prop_assert_eq!(a.wanted_from_peer(), a.wanted_from_peer_by_lookups());
        }
    }
}

#[test]
fn the_caught_up_check_finds_a_lagging_feed_anywhere_in_a_large_clock() {
    // A sync of 2,000 feeds received in feed order but for two, so that
    // the walks' starting feed moves on; then a feed behind it lags again.
    let mut a = Session::new(&Policy::Open, Clock::new(), None);
    let peer: Clock = (0u16..2000)
        .map(|n| {
            let mut id = [0u8; 32];
            id[..2].copy_from_slice(&n.to_be_bytes());
            (FeedId(id), 3)
        })
        .collect();
    let mut b = Session::new(&Policy::Open, peer.clone(), None);
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    assert!(!a.is_caught_up());
    let feeds: Vec<FeedId> = peer.keys().copied().collect();
    let check = |a: &mut Session, expected: bool, what: &str| {
        assert_eq!(a.is_caught_up(), expected, "{what}");
        assert_eq!(a.is_caught_up_walking_from_the_start(), expected, "{what}");
    };
    for (i, feed) in feeds.iter().enumerate() {
        if i != 5 && i != 1990 {
            a.handle_received(*feed, 3);
            check(&mut a, false, &format!("after feed {i}"));
        }
    }
    a.handle_received(feeds[5], 3);
    check(&mut a, false, "feed 1990 is still to come");
    // Feed 3 lags again (blocked, then unblocked with nothing held), and
    // then the feed the last walk stopped at arrives: the next walk must
    // go round to find feed 3.
    a.handle_blocking(feeds[3], true, 0);
    a.handle_blocking(feeds[3], false, 0);
    while a.poll_packet().is_some() {}
    a.handle_received(feeds[1990], 3);
    check(
        &mut a,
        false,
        "feed 3 lags behind where the last walk stopped",
    );
    a.handle_received(feeds[3], 3);
    check(&mut a, true, "everything held");

    // Our own clock: a message of ours the peer takes as notes only is
    // not sent, so the peer still lacks it once the notes went out.
    b.handle_modes(Some(false), &[]);
    pump(&mut b, &mut a);
    a.handle_local_append(feeds[10], 4);
    while a.poll_packet().is_some() {}
    check(
        &mut a,
        false,
        "the peer lacks our fourth message of feed 10",
    );
    b.handle_modes(Some(true), &[]);
    pump(&mut b, &mut a);
    assert_eq!(a.poll_range(), Some((feeds[10], 4, 4)));
    check(&mut a, true, "the peer asked for it pushed and got it");
}
