//! The replication state machine for one connection (sans-io).
//!
//! It takes packets and local events, and returns packets to send and
//! messages to ingest; it never touches a socket, a clock or the store.
//! The driver (`crate::node`) moves bytes and timers, reads messages
//! from the store when [`Session::next_range`] asks for a range, and
//! reports what it ingested.
//!
//! Protocol in short (details in `docs/protocol.md`, "Replication"):
//! 1. Each side sends `Hello`, its clock (feed → latest sequence held, or
//!    `UNWANTED`) and `ClockEnd` with a digest of its full clock. When both
//!    remember the previous session, the clock is a diff against what the
//!    other side already knows (request skipping); the digest catches any
//!    disagreement, and `Resync` asks for the full clock instead.
//! 2. Each side streams, per feed in sequence order, what the other lacks
//!    and wants, and keeps doing so live as new messages arrive. It tracks
//!    what the peer holds, so no message goes twice to the same peer.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use thiserror::Error;

use crate::message::FeedId;
use crate::wire::{
    self, FLAG_OPEN, FORGET, MAX_CLOCK_ENTRIES, MAX_CLOCK_SEQUENCE, PROTOCOL_VERSION, Packet,
    UNWANTED,
};

/// Most feeds a peer's clock may name: bounds the memory a peer can make
/// us spend on its clock.
pub const MAX_PEER_FEEDS: usize = 200_000;
/// Most messages handed out per [`Session::next_range`] call, so that one
/// long feed cannot starve the others.
pub const RANGE_CHUNK: u64 = 256;

/// A clock: feed → latest sequence held (0 = wanted, none held), or [`UNWANTED`].
pub type Clock = BTreeMap<FeedId, u64>;

/// Which feeds a node replicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Every feed a peer offers, except blocked ones.
    Open,
    /// Our own feed plus feeds within this many follow hops.
    Hops(u8),
}

/// The peer broke the protocol; the connection must close.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The peer speaks another protocol version.
    #[error("peer speaks replication protocol version {0}, we speak {PROTOCOL_VERSION}")]
    Version(u8),
    /// A packet came at a point where it makes no sense.
    #[error("unexpected {0} packet")]
    Unexpected(&'static str),
    /// The peer's clock names too many feeds.
    #[error("peer's clock names more than {MAX_PEER_FEEDS} feeds")]
    ClockTooLarge,
    /// The clock did not match its digest even after a full resend.
    #[error("peer's clock does not match its digest")]
    ClockMismatch,
    /// The peer asked for a full clock more than once.
    #[error("peer asked for a full clock resend twice")]
    RepeatedResync,
}

/// What a session remembers about a peer between connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMemory {
    /// The peer's clock as we last knew it.
    pub theirs: Clock,
    /// Our clock as the peer last knew it.
    pub mine_as_known: Clock,
}

impl PeerMemory {
    /// Compact encoding: two length-prefixed lists of 40-byte entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 40 * (self.theirs.len() + self.mine_as_known.len()));
        for clock in [&self.theirs, &self.mine_as_known] {
            out.extend_from_slice(&(clock.len() as u32).to_be_bytes());
            for (feed, value) in clock {
                out.extend_from_slice(&feed.0);
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        out
    }

    /// Decodes [`PeerMemory::encode`]; `None` if damaged (then the session
    /// simply starts without memory and exchanges full clocks).
    pub fn decode(mut bytes: &[u8]) -> Option<PeerMemory> {
        let mut clocks = [Clock::new(), Clock::new()];
        for clock in &mut clocks {
            let count = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            bytes = &bytes[4..];
            if count > MAX_PEER_FEEDS || bytes.len() < count * 40 {
                return None;
            }
            for chunk in bytes[..count * 40].chunks_exact(40) {
                let feed = FeedId(chunk[..32].try_into().ok()?);
                let value = u64::from_be_bytes(chunk[32..].try_into().ok()?);
                clock.insert(feed, value);
            }
            bytes = &bytes[count * 40..];
        }
        let [theirs, mine_as_known] = clocks;
        bytes.is_empty().then_some(PeerMemory {
            theirs,
            mine_as_known,
        })
    }
}

/// What the driver must do with an incoming packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Nothing beyond any packets now waiting in [`Session::poll_packet`].
    Nothing,
    /// The peer's clock is complete; streaming can start.
    ClockReady,
    /// A message to decode, check with [`Session::accepts`] and ingest.
    Message(Vec<u8>),
    /// The peer closed the session cleanly.
    Goodbye,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's `Hello`.
    AwaitHello,
    /// Reading the peer's clock; `discard` when its baseline is unknown.
    ReadingClock { discard: bool },
    /// The peer's clock is known.
    Live,
}

/// Replication state of one connection.
pub struct Session {
    open: bool,
    mine: Clock,
    mine_as_known: Clock,
    peer_open: bool,
    theirs: Clock,
    phase: Phase,
    asked_resync: bool,
    resent_full: bool,
    outbox: VecDeque<Packet>,
    pending: VecDeque<FeedId>,
    queued: HashSet<FeedId>,
}

impl Session {
    /// Starts a session: queues our `Hello`, clock and `ClockEnd`.
    /// `mine` is our current clock; `memory` what we remember of this peer.
    pub fn new(policy: &Policy, mine: Clock, memory: Option<PeerMemory>) -> Session {
        let memory = memory.unwrap_or_default();
        let mut session = Session {
            open: *policy == Policy::Open,
            mine,
            mine_as_known: memory.mine_as_known,
            peer_open: false,
            theirs: memory.theirs,
            phase: Phase::AwaitHello,
            asked_resync: false,
            resent_full: false,
            outbox: VecDeque::new(),
            pending: VecDeque::new(),
            queued: HashSet::new(),
        };
        session.send_clock(false);
        session
    }

    /// Queues our clock: a diff against what the peer knows, or in full.
    fn send_clock(&mut self, full: bool) {
        let remembered = !self.mine_as_known.is_empty() && !full;
        let baseline = if remembered {
            wire::clock_digest(&self.mine_as_known)
        } else {
            [0; 32]
        };
        let mut entries: Vec<(FeedId, u64)> = Vec::new();
        if remembered {
            for (feed, value) in &self.mine {
                if self.mine_as_known.get(feed) != Some(value) {
                    entries.push((*feed, *value));
                }
            }
            for feed in self.mine_as_known.keys() {
                if !self.mine.contains_key(feed) {
                    entries.push((*feed, FORGET));
                }
            }
        } else {
            entries.extend(self.mine.iter().map(|(f, v)| (*f, *v)));
        }
        let flags = if self.open { FLAG_OPEN } else { 0 };
        self.outbox.push_back(Packet::Hello {
            version: PROTOCOL_VERSION,
            flags,
            baseline,
        });
        for chunk in entries.chunks(MAX_CLOCK_ENTRIES) {
            self.outbox.push_back(Packet::Clock(chunk.to_vec()));
        }
        self.outbox.push_back(Packet::ClockEnd {
            digest: wire::clock_digest(&self.mine),
        });
        self.mine_as_known = self.mine.clone();
    }

    /// The next control packet to send (clocks, resync, goodbye).
    pub fn poll_packet(&mut self) -> Option<Packet> {
        self.outbox.pop_front()
    }

    /// Handles one packet from the peer.
    pub fn on_packet(&mut self, packet: Packet) -> Result<Incoming, ProtocolError> {
        match packet {
            Packet::Hello {
                version,
                flags,
                baseline,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(ProtocolError::Version(version));
                }
                if self.phase != Phase::AwaitHello {
                    return Err(ProtocolError::Unexpected("hello"));
                }
                self.peer_open = flags & FLAG_OPEN != 0;
                let discard = if baseline == [0; 32] {
                    self.theirs.clear();
                    false
                } else {
                    baseline != wire::clock_digest(&self.theirs)
                };
                self.phase = Phase::ReadingClock { discard };
                Ok(Incoming::Nothing)
            }
            Packet::Clock(entries) => match self.phase {
                // A live note sent before our resync request reached the
                // peer: the full clock that follows will include it.
                Phase::AwaitHello if self.asked_resync => Ok(Incoming::Nothing),
                Phase::AwaitHello => Err(ProtocolError::Unexpected("clock")),
                Phase::ReadingClock { discard: true } => Ok(Incoming::Nothing),
                Phase::ReadingClock { discard: false } | Phase::Live => {
                    for (feed, value) in entries {
                        if value == FORGET {
                            self.theirs.remove(&feed);
                        } else {
                            self.theirs.insert(feed, value);
                        }
                        if self.phase == Phase::Live {
                            self.consider(feed);
                        }
                    }
                    if self.theirs.len() > MAX_PEER_FEEDS {
                        return Err(ProtocolError::ClockTooLarge);
                    }
                    Ok(Incoming::Nothing)
                }
            },
            Packet::ClockEnd { digest } => {
                let Phase::ReadingClock { discard } = self.phase else {
                    return Err(ProtocolError::Unexpected("clock end"));
                };
                if discard || digest != wire::clock_digest(&self.theirs) {
                    if self.asked_resync {
                        return Err(ProtocolError::ClockMismatch);
                    }
                    self.asked_resync = true;
                    self.theirs.clear();
                    self.phase = Phase::AwaitHello;
                    self.outbox.push_back(Packet::Resync);
                    return Ok(Incoming::Nothing);
                }
                self.phase = Phase::Live;
                let feeds: Vec<FeedId> = self.mine.keys().copied().collect();
                for feed in feeds {
                    self.consider(feed);
                }
                Ok(Incoming::ClockReady)
            }
            Packet::Message(bytes) => {
                self.check_message_allowed()?;
                Ok(Incoming::Message(bytes))
            }
            Packet::Resync => {
                if self.resent_full {
                    return Err(ProtocolError::RepeatedResync);
                }
                self.resent_full = true;
                self.send_clock(true);
                Ok(Incoming::Nothing)
            }
            Packet::Ping => Ok(Incoming::Nothing),
            Packet::Goodbye => Ok(Incoming::Goodbye),
        }
    }

    /// Messages may only come after the peer's `Hello` (a driver that
    /// decodes message packets itself asks here).
    pub fn check_message_allowed(&self) -> Result<(), ProtocolError> {
        if self.phase == Phase::AwaitHello && !self.asked_resync {
            return Err(ProtocolError::Unexpected("message"));
        }
        Ok(())
    }

    /// True once the peer's clock is known.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// The peer asked to be sent any feed it has not marked unwanted.
    pub fn peer_is_open(&self) -> bool {
        self.peer_open
    }

    fn peer_wants(&self, feed: &FeedId) -> bool {
        match self.theirs.get(feed) {
            Some(&UNWANTED) => false,
            Some(_) => true,
            None => self.peer_open,
        }
    }

    fn peer_holds(&self, feed: &FeedId) -> u64 {
        match self.theirs.get(feed) {
            Some(&v) if v <= MAX_CLOCK_SEQUENCE => v,
            _ => 0,
        }
    }

    fn my_head(&self, feed: &FeedId) -> u64 {
        match self.mine.get(feed) {
            Some(&v) if v <= MAX_CLOCK_SEQUENCE => v,
            _ => 0,
        }
    }

    /// Queues `feed` for sending if the peer wants it and lacks some of it.
    fn consider(&mut self, feed: FeedId) {
        if self.phase == Phase::Live
            && self.peer_wants(&feed)
            && self.peer_holds(&feed) < self.my_head(&feed)
            && self.queued.insert(feed)
        {
            self.pending.push_back(feed);
        }
    }

    /// The next range of our messages to send: `(feed, first, last)`,
    /// inclusive. The driver must send exactly those messages, in order.
    /// Feeds take turns, [`RANGE_CHUNK`] messages at a time.
    pub fn next_range(&mut self) -> Option<(FeedId, u64, u64)> {
        while let Some(feed) = self.pending.pop_front() {
            self.queued.remove(&feed);
            let held = self.peer_holds(&feed);
            let head = self.my_head(&feed);
            if !self.peer_wants(&feed) || held >= head {
                continue;
            }
            let first = held + 1;
            let last = head.min(held + RANGE_CHUNK);
            // The peer will hold these once they arrive, and will know we do.
            self.theirs.insert(feed, last);
            self.mine_as_known.insert(feed, last);
            if last < head {
                self.queued.insert(feed);
                self.pending.push_back(feed);
            }
            return Some((feed, first, last));
        }
        None
    }

    /// Should a message of `feed` from this peer be stored?
    /// No for feeds we marked unwanted, or that we don't replicate.
    pub fn accepts(&self, feed: &FeedId) -> bool {
        match self.mine.get(feed) {
            Some(&UNWANTED) => false,
            Some(_) => true,
            None => self.open,
        }
    }

    /// The peer sent us `feed` up to `sequence` and we now hold it
    /// (ingested, or already held).
    pub fn on_received(&mut self, feed: FeedId, sequence: u64) {
        let up = |clock: &mut Clock| {
            let v = clock.entry(feed).or_insert(0);
            *v = (*v).max(sequence);
        };
        up(&mut self.theirs);
        up(&mut self.mine_as_known);
        up(&mut self.mine);
    }

    /// We now hold `feed` up to `sequence` (published here or received
    /// from another peer): queue it for this peer if it wants it.
    pub fn on_local_append(&mut self, feed: FeedId, sequence: u64) {
        match self.mine.get(&feed) {
            Some(&UNWANTED) => return,
            Some(&v) if v >= sequence => return,
            None if !self.open => return,
            _ => {}
        }
        self.mine.insert(feed, sequence);
        self.consider(feed);
    }

    /// We blocked (or unblocked) `feed`: stop taking and giving it, and
    /// tell the peer with a clock entry. `head` is what we hold of it.
    pub fn set_blocked(&mut self, feed: FeedId, blocked: bool, head: u64) {
        let value = if blocked {
            UNWANTED
        } else if self.open {
            head
        } else {
            FORGET
        };
        if value == FORGET {
            if self.mine.remove(&feed).is_none() {
                return;
            }
            self.mine_as_known.remove(&feed);
        } else {
            if self.mine.get(&feed) == Some(&value) {
                return;
            }
            self.mine.insert(feed, value);
            self.mine_as_known.insert(feed, value);
        }
        // Our clock went out at the start, so a live note always applies.
        self.outbox.push_back(Packet::Clock(vec![(feed, value)]));
    }

    /// True when the peer has everything we can give it and we have
    /// everything it advertised that we want.
    pub fn is_caught_up(&self) -> bool {
        if self.phase != Phase::Live || !self.pending.is_empty() || !self.outbox.is_empty() {
            return false;
        }
        self.theirs.iter().all(|(feed, &v)| {
            v > MAX_CLOCK_SEQUENCE || !self.accepts(feed) || self.my_head(feed) >= v
        })
    }

    /// True when control packets wait in [`Session::poll_packet`].
    pub fn has_outgoing(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// True when feeds wait to be sent through [`Session::next_range`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Queues a keepalive.
    pub fn ping(&mut self) {
        self.outbox.push_back(Packet::Ping);
    }

    /// Queues a clean goodbye.
    pub fn close(&mut self) {
        self.outbox.push_back(Packet::Goodbye);
    }

    /// What to remember about this peer for the next session.
    pub fn memory(&self) -> PeerMemory {
        PeerMemory {
            theirs: self.theirs.clone(),
            mine_as_known: self.mine_as_known.clone(),
        }
    }
}

/// Builds our clock under a policy.
///
/// - `heads`: every feed held, with its latest sequence;
/// - `me`: our own feed (always replicated, even when empty);
/// - `follows(f)`: feeds that `f` follows (for [`Policy::Hops`]);
/// - `blocked`: feeds we block: marked [`UNWANTED`], never stored or sent.
pub fn build_clock(
    policy: &Policy,
    me: FeedId,
    heads: &BTreeMap<FeedId, u64>,
    follows: impl Fn(&FeedId) -> Vec<FeedId>,
    blocked: &BTreeSet<FeedId>,
) -> Clock {
    let mut clock = Clock::new();
    match policy {
        Policy::Open => {
            clock.extend(heads.iter().map(|(f, s)| (*f, *s)));
        }
        Policy::Hops(hops) => {
            let mut frontier = vec![me];
            let mut seen: BTreeSet<FeedId> = BTreeSet::from([me]);
            for _ in 0..*hops {
                let mut next = Vec::new();
                for feed in &frontier {
                    for f in follows(feed) {
                        if !blocked.contains(&f) && seen.insert(f) {
                            next.push(f);
                        }
                    }
                }
                frontier = next;
            }
            for feed in seen {
                clock.insert(feed, heads.get(&feed).copied().unwrap_or(0));
            }
        }
    }
    clock.entry(me).or_insert(0);
    for feed in blocked {
        if *feed != me {
            clock.insert(*feed, UNWANTED);
        }
    }
    clock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    /// Delivers every queued control packet from `a` to `b`.
    fn pump(a: &mut Session, b: &mut Session) -> Vec<Incoming> {
        let mut out = Vec::new();
        while let Some(p) = a.poll_packet() {
            out.push(b.on_packet(p).unwrap());
        }
        out
    }

    fn clock(entries: &[(u8, u64)]) -> Clock {
        entries.iter().map(|(n, s)| (f(*n), *s)).collect()
    }

    #[test]
    fn fresh_sessions_exchange_full_clocks_and_ranges() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 3)]), None);
        let mut b = Session::new(&Policy::Open, clock(&[(2, 1), (3, 4)]), None);
        assert!(pump(&mut a, &mut b).contains(&Incoming::ClockReady));
        assert!(pump(&mut b, &mut a).contains(&Incoming::ClockReady));
        let mut a_sends = Vec::new();
        while let Some(r) = a.next_range() {
            a_sends.push(r);
        }
        a_sends.sort();
        assert_eq!(a_sends, vec![(f(1), 1, 5), (f(2), 2, 3)]);
        assert_eq!(b.next_range(), Some((f(3), 1, 4)));
        assert_eq!(b.next_range(), None);
    }

    #[test]
    fn unwanted_feeds_are_neither_sent_nor_accepted() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (9, 2)]), None);
        let mut b = Session::new(&Policy::Open, clock(&[(9, UNWANTED)]), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        assert_eq!(a.next_range(), Some((f(1), 1, 5)));
        assert_eq!(a.next_range(), None);
        assert!(!b.accepts(&f(9)));
        assert!(b.accepts(&f(1)));
    }

    #[test]
    fn a_closed_peer_gets_only_what_it_lists() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 2)]), None);
        let mut b = Session::new(&Policy::Hops(1), clock(&[(2, 0)]), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        assert_eq!(a.next_range(), Some((f(2), 1, 2)));
        assert_eq!(a.next_range(), None);
        assert!(!b.accepts(&f(1)));
    }

    #[test]
    fn live_appends_are_sent_once() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
        let mut b = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        assert_eq!(a.next_range(), None);
        a.on_local_append(f(1), 2);
        a.on_local_append(f(1), 2);
        assert_eq!(a.next_range(), Some((f(1), 2, 2)));
        assert_eq!(a.next_range(), None);
        // b receives it; b must not echo it back to a.
        b.on_received(f(1), 2);
        b.on_local_append(f(1), 2);
        assert_eq!(b.next_range(), None);
    }

    #[test]
    fn long_feeds_take_turns() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 600), (2, 10)]), None);
        let mut b = Session::new(&Policy::Open, Clock::new(), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        let order: Vec<_> = std::iter::from_fn(|| a.next_range()).collect();
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
            y.on_packet(p).unwrap();
        }
        bytes
    }

    fn send_ranges(x: &mut Session, y: &mut Session) {
        while let Some((feed, _, last)) = x.next_range() {
            y.on_received(feed, last);
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

    #[test]
    fn an_in_sync_reconnect_sends_almost_nothing() {
        let big: Clock = (0..10_000u32)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&i.to_be_bytes());
                (FeedId(id), 7)
            })
            .collect();
        let (a, b, first) = run_pair(big.clone(), big.clone(), None, None);
        assert!(first > 10_000 * 40);
        let (a2, b2, second) =
            run_pair(big.clone(), big.clone(), Some(a.memory()), Some(b.memory()));
        assert!(second < 200, "in-sync reconnect sent {second} bytes");
        assert!(a2.is_caught_up() && b2.is_caught_up());
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
            b2.on_packet(p).unwrap();
        }
        assert_eq!(entries, 2);
        assert!(b2.is_live());
        assert_eq!(b2.theirs.get(&f(2)), Some(&5));
        assert_eq!(b2.theirs.get(&f(3)), None);
    }

    #[test]
    fn forgotten_memory_falls_back_to_a_full_clock() {
        let base = clock(&[(1, 3), (2, 3)]);
        let (a, _b, _) = run_pair(base.clone(), base.clone(), None, None);
        // b lost its memory (say, a wiped store); a still sends a diff.
        let (a2, b2, _) = run_pair(base.clone(), base.clone(), Some(a.memory()), None);
        assert!(a2.is_live() && b2.is_live());
        assert_eq!(b2.theirs, base);
        assert!(a2.resent_full);
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut s = Session::new(&Policy::Open, Clock::new(), None);
        assert_eq!(
            s.on_packet(Packet::Clock(vec![(f(1), 1)])),
            Err(ProtocolError::Unexpected("clock"))
        );
        assert_eq!(
            s.on_packet(Packet::Hello {
                version: 9,
                flags: 0,
                baseline: [0; 32]
            }),
            Err(ProtocolError::Version(9))
        );
        assert_eq!(
            s.on_packet(Packet::Message(vec![1])),
            Err(ProtocolError::Unexpected("message"))
        );
        s.on_packet(Packet::Resync).unwrap();
        assert_eq!(
            s.on_packet(Packet::Resync),
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
        a.set_blocked(f(9), true, 0);
        assert!(!a.accepts(&f(9)));
        pump(&mut a, &mut b);
        assert_eq!(b.next_range(), None, "b must not send a blocked feed");
        // The memories still agree, so the next reconnect skips requests.
        assert_eq!(a.memory().mine_as_known, b.memory().theirs);
        a.set_blocked(f(9), false, 0);
        assert!(a.accepts(&f(9)));
        pump(&mut a, &mut b);
        assert_eq!(b.next_range(), Some((f(9), 1, 4)));
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
}
