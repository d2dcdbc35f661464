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
//! 3. As in Scuttlebutt's EBT, each side tells the other, per feed, whether
//!    to push new messages live or only send notes (a clock entry with its
//!    latest sequence), so that a node takes each feed from one peer at a
//!    time. [`Sources`] makes that choice for a whole node: which peer is the
//!    live source of each feed, who falls back when it disconnects, and
//!    when a note shows another peer is ahead for too long.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::FeedId;
use crate::wire::{
    self, FLAG_ONCE, FLAG_OPEN, FORGET, MAX_CLOCK_ENTRIES, MAX_CLOCK_SEQUENCE, MAX_PUSH_ENTRIES,
    PROTOCOL_VERSION, Packet, UNWANTED,
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
    /// The peer's push modes name too many feeds.
    #[error("peer's push modes name more than {MAX_PEER_FEEDS} feeds")]
    TooManyModes,
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

/// Push modes, one side's view: a default for every feed, and the feeds
/// that differ from it.
#[derive(Debug)]
struct Modes {
    default_push: bool,
    differ: HashSet<FeedId>,
}

impl Modes {
    /// Every feed pushed: what a session assumes until told otherwise
    /// (and all a one-off sync ever uses).
    fn all_pushed() -> Modes {
        Modes {
            default_push: true,
            differ: HashSet::new(),
        }
    }

    fn push(&self, feed: &FeedId) -> bool {
        self.default_push != self.differ.contains(feed)
    }

    fn reset(&mut self, default_push: bool) {
        self.default_push = default_push;
        self.differ.clear();
    }

    fn set(&mut self, feed: FeedId, push: bool) {
        if push == self.default_push {
            self.differ.remove(&feed);
        } else {
            self.differ.insert(feed);
        }
    }
}

/// Replication state of one connection.
pub struct Session {
    open: bool,
    once: bool,
    mine: Clock,
    mine_as_known: Clock,
    peer_open: bool,
    peer_once: bool,
    theirs: Clock,
    phase: Phase,
    asked_resync: bool,
    resent_full: bool,
    outbox: VecDeque<Packet>,
    pending: VecDeque<FeedId>,
    queued: HashSet<FeedId>,
    /// How the peer wants each feed from us.
    peer_modes: Modes,
    /// How we asked the peer to send each feed.
    our_modes: Modes,
    /// Feeds whose latest sequence we owe the peer as a note.
    notes: BTreeSet<FeedId>,
    /// Clock entries of the peer that are ahead of us: (feed, its sequence,
    /// ours), for [`Session::take_ahead`].
    ahead: Vec<(FeedId, u64, u64)>,
    /// Feeds we stopped sending in this session (see [`Session::withhold`]).
    withheld: HashSet<FeedId>,
}

impl Session {
    /// Starts a session that takes every feed pushed from the peer: queues
    /// our `Hello`, clock and `ClockEnd`. `mine` is our current clock;
    /// `memory` what we remember of this peer.
    pub fn new(policy: &Policy, mine: Clock, memory: Option<PeerMemory>) -> Session {
        Session::start(policy, mine, memory, false, None)
    }

    /// Starts a session: queues our `Hello`, our push modes (when given:
    /// the default for every feed, and the feeds that differ from it), our
    /// clock and `ClockEnd`. The modes go before the clock so that the peer
    /// knows them before it starts sending ranges. `once` marks a one-off
    /// sync (`Hello` flag `ONCE`).
    pub fn start(
        policy: &Policy,
        mine: Clock,
        memory: Option<PeerMemory>,
        once: bool,
        modes: Option<(bool, Vec<(FeedId, bool)>)>,
    ) -> Session {
        let memory = memory.unwrap_or_default();
        let mut session = Session {
            open: *policy == Policy::Open,
            once,
            mine,
            mine_as_known: memory.mine_as_known,
            peer_open: false,
            peer_once: false,
            theirs: memory.theirs,
            phase: Phase::AwaitHello,
            asked_resync: false,
            resent_full: false,
            outbox: VecDeque::new(),
            pending: VecDeque::new(),
            queued: HashSet::new(),
            peer_modes: Modes::all_pushed(),
            our_modes: Modes::all_pushed(),
            notes: BTreeSet::new(),
            ahead: Vec::new(),
            withheld: HashSet::new(),
        };
        session.send_clock(false);
        if let Some((default_push, entries)) = modes {
            // Right behind the Hello: the peer reads it before our clock.
            let mut clock = std::mem::take(&mut session.outbox);
            let hello = clock.pop_front();
            session.set_modes(Some(default_push), &entries);
            let modes = std::mem::take(&mut session.outbox);
            session.outbox.extend(hello);
            session.outbox.extend(modes);
            session.outbox.extend(clock);
        }
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
        let mut flags = if self.open { FLAG_OPEN } else { 0 };
        if self.once {
            flags |= FLAG_ONCE;
        }
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

    /// The next control packet to send (clocks, notes, push modes, resync,
    /// goodbye).
    pub fn poll_packet(&mut self) -> Option<Packet> {
        if self.outbox.is_empty() && !self.notes.is_empty() {
            self.flush_notes();
        }
        self.outbox.pop_front()
    }

    /// Turns the notes we owe into clock entries: our latest sequence of
    /// each feed, which the peer now knows (request-skipping memory).
    fn flush_notes(&mut self) {
        let mut entries = Vec::new();
        for feed in std::mem::take(&mut self.notes) {
            let head = self.my_head(&feed);
            let known = self.known_mine(&feed);
            // Blocked since, or the peer learned it from a range meanwhile.
            if self
                .mine
                .get(&feed)
                .is_some_and(|&v| v <= MAX_CLOCK_SEQUENCE)
                && known < head
            {
                self.mine_as_known.insert(feed, head);
                entries.push((feed, head));
            }
        }
        for chunk in entries.chunks(MAX_CLOCK_ENTRIES) {
            self.outbox.push_back(Packet::Clock(chunk.to_vec()));
        }
    }

    /// Asks the peer how to send feeds from now on: `reset` first sets
    /// every feed to that mode, then each entry sets one feed (`true`:
    /// push its messages, `false`: notes only). Sends only what changes.
    pub fn set_modes(&mut self, reset: Option<bool>, entries: &[(FeedId, bool)]) {
        let mut changed = Vec::new();
        if let Some(default_push) = reset {
            self.our_modes.reset(default_push);
        }
        for &(feed, push) in entries {
            let differs_from_default = push != self.our_modes.default_push;
            if self.our_modes.push(&feed) != push || (reset.is_some() && differs_from_default) {
                self.our_modes.set(feed, push);
                changed.push((feed, push));
            }
        }
        if reset.is_none() && changed.is_empty() {
            return;
        }
        let mut default = reset;
        let mut chunks = changed.chunks(MAX_PUSH_ENTRIES);
        loop {
            let entries = chunks.next().map(<[_]>::to_vec).unwrap_or_default();
            if default.is_none() && entries.is_empty() {
                break;
            }
            self.outbox.push_back(Packet::Push {
                default: default.take(),
                entries,
            });
        }
    }

    /// Did we ask the peer to push `feed` (rather than notes only)?
    pub fn asks_push(&self, feed: &FeedId) -> bool {
        self.our_modes.push(feed)
    }

    /// Does the peer want `feed` pushed (rather than notes only)?
    pub fn peer_asks_push(&self, feed: &FeedId) -> bool {
        self.peer_modes.push(feed)
    }

    /// The peer is a one-off sync (`Hello` flag `ONCE`): it should get
    /// every feed pushed and take part in no choice of live sources.
    pub fn peer_is_once(&self) -> bool {
        self.peer_once
    }

    /// Feeds the peer holds further than we do, from its clock or its
    /// notes since the last call: `(feed, its sequence, ours)`. Only feeds
    /// we would accept. The node uses them to switch sources when the
    /// chosen one falls behind.
    pub fn take_ahead(&mut self) -> Vec<(FeedId, u64, u64)> {
        std::mem::take(&mut self.ahead)
    }

    /// Records that the peer holds `feed` up to `value` when that is more
    /// than we hold.
    fn note_ahead(&mut self, feed: FeedId, value: u64) {
        let head = self.my_head(&feed);
        if value <= MAX_CLOCK_SEQUENCE && value > head && self.accepts(&feed) {
            self.ahead.push((feed, value, head));
        }
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
                self.peer_once = flags & FLAG_ONCE != 0;
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
                            self.note_ahead(feed, value);
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
                let theirs: Vec<(FeedId, u64)> =
                    self.theirs.iter().map(|(f, v)| (*f, *v)).collect();
                for (feed, value) in theirs {
                    self.note_ahead(feed, value);
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
            Packet::Push { default, entries } => {
                self.check_message_allowed()
                    .map_err(|_| ProtocolError::Unexpected("push"))?;
                if let Some(default_push) = default {
                    self.peer_modes.reset(default_push);
                }
                for &(feed, push) in &entries {
                    self.peer_modes.set(feed, push);
                }
                if self.peer_modes.differ.len() > MAX_PEER_FEEDS {
                    return Err(ProtocolError::TooManyModes);
                }
                // Feeds it now wants pushed may have ranges to go.
                if default == Some(true) {
                    let feeds: Vec<FeedId> = self.mine.keys().copied().collect();
                    for feed in feeds {
                        self.consider(feed);
                    }
                } else {
                    for (feed, push) in entries {
                        if push {
                            self.consider(feed);
                        }
                    }
                }
                Ok(Incoming::Nothing)
            }
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

    /// Our latest sequence of `feed` as the peer knows it.
    fn known_mine(&self, feed: &FeedId) -> u64 {
        match self.mine_as_known.get(feed) {
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

    /// Queues `feed` for sending if the peer wants it and lacks some of it:
    /// its messages if the peer wants it pushed, otherwise a note of our
    /// latest sequence (if the peer does not know it yet).
    fn consider(&mut self, feed: FeedId) {
        if self.phase != Phase::Live
            || self.withheld.contains(&feed)
            || !self.peer_wants(&feed)
            || self.peer_holds(&feed) >= self.my_head(&feed)
        {
            return;
        }
        if self.peer_modes.push(&feed) {
            if self.queued.insert(feed) {
                self.pending.push_back(feed);
            }
        } else if self.known_mine(&feed) < self.my_head(&feed) {
            self.notes.insert(feed);
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
            if !self.peer_modes.push(&feed) {
                // Switched to notes only since it was queued.
                self.notes.insert(feed);
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

    /// We cannot send `feed` beyond `sent_until` (our copy of the next
    /// message is damaged on disk): the peer holds only that much from us,
    /// and the session sends nothing more of the feed, neither messages nor
    /// notes. The other feeds go on. A clock entry tells the peer we offer
    /// the feed only up to `sent_until`, so that it does not wait for the
    /// rest (a one-off sync would wait for ever).
    pub fn withhold(&mut self, feed: FeedId, sent_until: u64) {
        self.theirs.insert(feed, sent_until);
        self.mine_as_known.insert(feed, sent_until);
        self.withheld.insert(feed);
        self.notes.remove(&feed);
        self.queued.remove(&feed);
        self.pending.retain(|f| *f != feed);
        self.outbox
            .push_back(Packet::Clock(vec![(feed, sent_until)]));
    }

    /// Entries in the peer's clock as we know it (what the session holds
    /// for it).
    pub fn peer_clock_len(&self) -> usize {
        self.theirs.len()
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

    /// How many messages the peer's clock promises that we want and do not
    /// hold yet: what a catch-up has left to receive. A walk over the
    /// peer's clock, like [`Session::is_caught_up`].
    pub fn wanted_from_peer(&self) -> u64 {
        self.theirs
            .iter()
            .filter(|&(feed, &v)| v <= MAX_CLOCK_SEQUENCE && self.accepts(feed))
            .map(|(feed, &v)| v.saturating_sub(self.my_head(feed)))
            .fold(0u64, u64::saturating_add)
    }

    /// True when the peer has everything we can give it and we have
    /// everything it advertised that we want.
    pub fn is_caught_up(&self) -> bool {
        if self.phase != Phase::Live
            || !self.pending.is_empty()
            || !self.outbox.is_empty()
            || !self.notes.is_empty()
        {
            return false;
        }
        // A feed the peer takes as notes only is not sent: wait until it
        // asks for it pushed (or gets it elsewhere).
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

    /// True when control packets wait in [`Session::poll_packet`].
    pub fn has_outgoing(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// True when notes wait; [`Session::poll_packet`] sends them after the
    /// control packets, so a driver may hold them back a little to batch
    /// them.
    pub fn has_notes(&self) -> bool {
        !self.notes.is_empty()
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

/// The grace time stretches with the delay a busy node sees, up to this
/// many times its base (see [`Sources::grace`]).
pub const MAX_GRACE_FACTOR: u32 = 40;
/// How fast the delay estimate of [`Sources`] forgets a slow delivery.
pub const DELAY_HALF_LIFE: Duration = Duration::from_secs(10);

/// A change of push modes for one connection, decided by [`Sources`]:
/// pass it to that connection's [`Session::set_modes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeChange {
    /// The peer (its feed) whose connection must ask for the change.
    pub peer: FeedId,
    /// When set, first reset every feed to this mode.
    pub reset: Option<bool>,
    /// Per-feed modes: `true` push, `false` notes only.
    pub feeds: Vec<(FeedId, bool)>,
}

/// A feed for which some peer noted more than we hold.
#[derive(Debug)]
struct Lag {
    /// When we first knew we were behind, or the last delivery of the
    /// feed since, whichever is later.
    since: Instant,
    /// Peers that noted more than we hold, with the sequence they noted.
    noted: BTreeMap<FeedId, u64>,
}

/// Which connected peer each feed comes live from: one node's share of
/// EBT's spanning trees (sans-io: the caller passes the time).
///
/// - The first peer to connect is the **default** source: it pushes every
///   feed, and the peers connecting after it push none (notes only), except
///   the feeds assigned to them.
/// - The peer that delivers a message we did not hold becomes that feed's
///   source; a peer other than the source that delivers a message we
///   already held is switched to notes only for that feed. So after a few
///   messages each feed comes from the peer that delivered it first, and
///   duplicates stop.
/// - When a source disconnects, its feeds fall back to the default source
///   (and when that one goes, the next connected peer becomes the default).
/// - When a note shows a peer holds more of a feed than we do, and nobody
///   delivers any of it within the grace time, that peer is asked to push it. So
///   a source that falls behind, or a cycle of sources that starves, costs
///   one grace time, and every node still converges.
#[derive(Debug)]
pub struct Sources {
    grace: Duration,
    /// The longest recent wait for a lagging feed's next delivery (it
    /// halves every [`DELAY_HALF_LIFE`]): on a busy node, messages queue
    /// behind the ingest while notes do not, and the grace time stretches
    /// with that delay so that a source is not replaced merely for being
    /// queued (which would add duplicates, and load, to a busy node).
    delay: Duration,
    delay_at: Option<Instant>,
    peers: BTreeSet<FeedId>,
    default_peer: Option<FeedId>,
    source: HashMap<FeedId, FeedId>,
    lag: HashMap<FeedId, Lag>,
    counts: SourceCounts,
}

/// How often [`Sources`] changed its mind, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Peers switched to notes only after sending a message we held.
    pub to_notes: u64,
    /// Peers asked to push a feed nobody known was pushing.
    pub asked_at_once: u64,
    /// Peers asked to push a feed after the grace time ran out.
    pub asked_after_grace: u64,
}

impl Sources {
    /// No peers yet; a peer that is ahead gets `grace` to deliver through
    /// the chosen source before it is asked to push.
    pub fn new(grace: Duration) -> Sources {
        Sources {
            grace,
            delay: Duration::ZERO,
            delay_at: None,
            peers: BTreeSet::new(),
            default_peer: None,
            source: HashMap::new(),
            lag: HashMap::new(),
            counts: SourceCounts::default(),
        }
    }

    /// How often sources were changed so far.
    pub fn counts(&self) -> SourceCounts {
        self.counts
    }

    /// The connected peer that pushes `feed` to us, if any.
    pub fn source_of(&self, feed: &FeedId) -> Option<FeedId> {
        self.source
            .get(feed)
            .filter(|p| self.peers.contains(p))
            .copied()
            .or(self.default_peer)
    }

    /// Feeds waiting for a peer that noted more than we hold.
    pub fn lagging(&self) -> usize {
        self.lag.len()
    }

    /// How long a peer that is ahead waits before it is asked to push:
    /// the base grace time, or three times the recent longest wait for a
    /// delivery when that is longer, at most [`MAX_GRACE_FACTOR`] times
    /// the base.
    pub fn grace(&self, now: Instant) -> Duration {
        (self.delay_now(now) * 3).clamp(self.grace, self.grace * MAX_GRACE_FACTOR)
    }

    fn delay_now(&self, now: Instant) -> Duration {
        let Some(at) = self.delay_at else {
            return Duration::ZERO;
        };
        let age = now.saturating_duration_since(at).as_secs_f64();
        self.delay
            .mul_f64(0.5f64.powf(age / DELAY_HALF_LIFE.as_secs_f64()))
    }

    /// A peer connected: returns the push modes its session starts with
    /// (for [`Session::start`]): a default, and the feeds that differ.
    pub fn connect(&mut self, peer: FeedId) -> (bool, Vec<(FeedId, bool)>) {
        self.peers.insert(peer);
        if self.default_peer.is_none() {
            self.default_peer = Some(peer);
        }
        self.modes_for(peer)
    }

    /// The push modes `peer`'s session should have now (on connect, or to
    /// resynchronise a connection that missed changes).
    pub fn modes_for(&self, peer: FeedId) -> (bool, Vec<(FeedId, bool)>) {
        let default_push = self.default_peer == Some(peer);
        let mut feeds: Vec<(FeedId, bool)> = Vec::new();
        for (feed, source) in &self.source {
            if !self.peers.contains(source) {
                continue;
            }
            let push = *source == peer;
            if push != default_push {
                feeds.push((*feed, push));
            }
        }
        feeds.sort();
        (default_push, feeds)
    }

    /// A peer disconnected (or turned out to be a one-off sync): its feeds
    /// fall back to the default source. Returns the changes to ask for.
    pub fn disconnect(&mut self, peer: FeedId) -> Vec<ModeChange> {
        if !self.peers.remove(&peer) {
            return Vec::new();
        }
        let orphans: Vec<FeedId> = self
            .source
            .iter()
            .filter(|(_, s)| **s == peer)
            .map(|(f, _)| *f)
            .collect();
        for feed in &orphans {
            self.source.remove(feed);
        }
        for lag in self.lag.values_mut() {
            lag.noted.remove(&peer);
        }
        self.lag.retain(|_, l| !l.noted.is_empty());
        let mut changes = Vec::new();
        if self.default_peer == Some(peer) {
            self.default_peer = self.peers.iter().next().copied();
            if let Some(next) = self.default_peer {
                let (default_push, feeds) = self.modes_for(next);
                changes.push(ModeChange {
                    peer: next,
                    reset: Some(default_push),
                    feeds,
                });
            }
        } else if let Some(default_peer) = self.default_peer
            && !orphans.is_empty()
        {
            let mut feeds: Vec<(FeedId, bool)> = orphans.iter().map(|f| (*f, true)).collect();
            feeds.sort();
            changes.push(ModeChange {
                peer: default_peer,
                reset: None,
                feeds,
            });
        }
        changes
    }

    /// `peer` delivered messages of `feed` (`new`: at least one we did not
    /// hold); we now hold it up to `head`. `pushing`: we last asked this
    /// peer to push the feed (otherwise these were in flight when it
    /// learned to send notes, and say nothing about who should be the
    /// source). Returns a change when the peer should stop pushing.
    pub fn delivered(
        &mut self,
        peer: FeedId,
        feed: FeedId,
        pushing: bool,
        new: bool,
        head: u64,
        now: Instant,
    ) -> Option<ModeChange> {
        let delay = self.delay_now(now);
        if let Some(lag) = self.lag.get_mut(&feed)
            && new
        {
            // Progress: whoever brings the feed is alive, however late.
            // The grace time counts from the last progress, and its wait
            // feeds the estimate of how slow deliveries are right now.
            let waited = now.saturating_duration_since(lag.since);
            self.delay = delay.max(waited);
            self.delay_at = Some(now);
            lag.since = now;
            lag.noted.retain(|_, seq| *seq > head);
            if lag.noted.is_empty() {
                self.lag.remove(&feed);
            }
        }
        if !self.peers.contains(&peer) || !pushing {
            return None;
        }
        let source = self.source_of(&feed);
        if new {
            // Explicitly, even for the default source: the feed's tree is
            // now known (see `noted`).
            self.source.insert(feed, peer);
            None
        } else if source.is_some_and(|s| s != peer) {
            self.counts.to_notes += 1;
            Some(ModeChange {
                peer,
                reset: None,
                feeds: vec![(feed, false)],
            })
        } else {
            None
        }
    }

    /// `peer` told us (clock or note) that it holds `feed` up to `seq`,
    /// while we hold `head`. For a feed whose source is not known yet
    /// (nobody delivered it since the peer that did disconnected, or ever),
    /// the default source may be starved in a cycle: unless the default
    /// source noted as much itself, the peer is asked to push it at once
    /// (the returned change), and whoever delivers first keeps the feed.
    pub fn noted(
        &mut self,
        peer: FeedId,
        feed: FeedId,
        seq: u64,
        head: u64,
        now: Instant,
    ) -> Option<ModeChange> {
        if seq <= head || !self.peers.contains(&peer) {
            return None;
        }
        let lag = self.lag.entry(feed).or_insert_with(|| Lag {
            since: now,
            noted: BTreeMap::new(),
        });
        // Anything noted before that we now hold no longer counts, and
        // the grace time starts over.
        lag.noted.retain(|_, s| *s > head);
        if lag.noted.is_empty() {
            lag.since = now;
        }
        let entry = lag.noted.entry(peer).or_insert(seq);
        *entry = (*entry).max(seq);
        let known = self
            .source
            .get(&feed)
            .is_some_and(|s| self.peers.contains(s));
        let default_has_it = self
            .default_peer
            .is_some_and(|d| d == peer || lag.noted.get(&d).is_some_and(|&s| s >= seq));
        if known || default_has_it {
            return None;
        }
        self.source.insert(feed, peer);
        self.counts.asked_at_once += 1;
        Some(ModeChange {
            peer,
            reset: None,
            feeds: vec![(feed, true)],
        })
    }

    /// Feeds that a peer noted ahead of us for longer than the grace time
    /// and that we still lack: ask the peer that noted the most to push
    /// them. `head(feed)` is what we hold now.
    pub fn poll(&mut self, now: Instant, head: impl Fn(&FeedId) -> u64) -> Vec<ModeChange> {
        let mut asks: BTreeMap<FeedId, Vec<(FeedId, bool)>> = BTreeMap::new();
        let mut resolved = Vec::new();
        let grace = self.grace(now);
        for (feed, lag) in &mut self.lag {
            let held = head(feed);
            lag.noted.retain(|_, seq| *seq > held);
            if lag.noted.is_empty() {
                resolved.push(*feed);
                continue;
            }
            if now.saturating_duration_since(lag.since) < grace {
                continue;
            }
            // The peer that noted the most; ties go to the smallest id.
            let Some((&peer, _)) = lag
                .noted
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            else {
                continue;
            };
            // If this one does not deliver either, the next one gets a turn.
            lag.noted.remove(&peer);
            lag.since = now;
            self.source.insert(*feed, peer);
            self.counts.asked_after_grace += 1;
            asks.entry(peer).or_default().push((*feed, true));
        }
        for feed in resolved {
            self.lag.remove(&feed);
        }
        asks.into_iter()
            .map(|(peer, mut feeds)| {
                feeds.sort();
                ModeChange {
                    peer,
                    reset: None,
                    feeds,
                }
            })
            .collect()
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
    fn what_is_left_to_receive_counts_wanted_feeds_only() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 5), (2, 3)]), None);
        let mut b = Session::new(&Policy::Open, clock(&[(2, 1), (3, 4)]), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        // a lacks feed 3 (4 messages); b lacks 5 of feed 1 and 2 of feed 2.
        assert_eq!(a.wanted_from_peer(), 4);
        assert_eq!(b.wanted_from_peer(), 7);
        a.on_received(f(3), 3);
        assert_eq!(a.wanted_from_peer(), 1);
        // A blocked feed is not wanted.
        a.set_blocked(f(3), true, 3);
        assert_eq!(a.wanted_from_peer(), 0);
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
        let (a2, b2, second) =
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

    // -----------------------------------------------------------------
    // Push modes (one live source per feed).

    fn with_modes(mine: Clock, default_push: bool, feeds: Vec<(FeedId, bool)>) -> Session {
        Session::start(
            &Policy::Open,
            mine,
            None,
            false,
            Some((default_push, feeds)),
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
            a.on_packet(p).unwrap();
        }
        pump(&mut a, &mut b);
        assert!(a.is_live() && b.is_live());
        a.on_local_append(f(1), 2);
        a.on_local_append(f(1), 3);
        assert_eq!(a.next_range(), None, "notes only: no messages");
        assert_eq!(a.poll_packet(), Some(Packet::Clock(vec![(f(1), 3)])));
        assert_eq!(a.poll_packet(), None, "one note for both appends");
        b.on_packet(Packet::Clock(vec![(f(1), 3)])).unwrap();
        assert_eq!(b.take_ahead(), vec![(f(1), 3, 1)]);
        assert_eq!(b.take_ahead(), vec![]);
        // b asks for pushes: a sends the range the note announced.
        b.set_modes(None, &[(f(1), true)]);
        assert!(b.asks_push(&f(1)));
        pump(&mut b, &mut a);
        assert!(a.peer_asks_push(&f(1)));
        assert_eq!(a.next_range(), Some((f(1), 2, 3)));
        // Memories agree, so the next reconnect still skips requests.
        b.on_received(f(1), 3);
        assert_eq!(a.memory().mine_as_known, b.memory().theirs);
        assert_eq!(a.memory().theirs, b.memory().mine_as_known);
    }

    #[test]
    fn switching_to_notes_drops_queued_ranges() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
        let mut b = Session::new(&Policy::Open, clock(&[(1, 1)]), None);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        a.on_local_append(f(1), 2);
        assert!(a.has_pending());
        b.set_modes(None, &[(f(1), false)]);
        // Asking for what is already so sends nothing.
        b.set_modes(None, &[(f(1), false)]);
        assert_eq!(
            b.poll_packet(),
            Some(Packet::Push {
                default: None,
                entries: vec![(f(1), false)]
            })
        );
        a.on_packet(Packet::Push {
            default: None,
            entries: vec![(f(1), false)],
        })
        .unwrap();
        assert_eq!(b.poll_packet(), None);
        assert_eq!(a.next_range(), None);
        assert_eq!(a.poll_packet(), Some(Packet::Clock(vec![(f(1), 2)])));
    }

    #[test]
    fn a_reset_to_push_sends_what_was_held_back() {
        let mut a = Session::new(&Policy::Open, clock(&[(1, 4), (2, 2)]), None);
        let mut b = with_modes(Clock::new(), false, vec![(f(2), true)]);
        pump(&mut b, &mut a);
        pump(&mut a, &mut b);
        assert_eq!(a.next_range(), Some((f(2), 1, 2)));
        assert_eq!(a.next_range(), None);
        assert_eq!(b.take_ahead(), vec![(f(1), 4, 0), (f(2), 2, 0)]);
        b.set_modes(Some(true), &[]);
        pump(&mut b, &mut a);
        assert_eq!(a.next_range(), Some((f(1), 1, 4)));
    }

    #[test]
    fn a_one_off_sync_waits_for_the_peer_to_take_its_feeds() {
        let mut a = Session::start(&Policy::Open, clock(&[(1, 3)]), None, true, None);
        let mut b = with_modes(Clock::new(), false, vec![]);
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        assert!(b.peer_is_once());
        assert_eq!(a.next_range(), None);
        assert!(!a.is_caught_up(), "b lacks feed 1: not done");
        b.set_modes(Some(true), &[]);
        pump(&mut b, &mut a);
        assert_eq!(a.next_range(), Some((f(1), 1, 3)));
        assert!(a.is_caught_up());
    }

    #[test]
    fn push_before_hello_is_a_violation() {
        let mut s = Session::new(&Policy::Open, Clock::new(), None);
        assert_eq!(
            s.on_packet(Packet::Push {
                default: Some(true),
                entries: vec![]
            }),
            Err(ProtocolError::Unexpected("push"))
        );
    }

    const GRACE: Duration = Duration::from_millis(400);

    #[test]
    fn the_first_peer_is_the_default_source() {
        let mut s = Sources::new(GRACE);
        assert_eq!(s.connect(f(1)), (true, vec![]));
        assert_eq!(s.connect(f(2)), (false, vec![]));
        assert_eq!(s.source_of(&f(9)), Some(f(1)));
    }

    #[test]
    fn a_duplicate_from_another_peer_turns_it_to_notes() {
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        // f(2) was asked to push feed 9 and delivered it first.
        assert_eq!(s.delivered(f(2), f(9), true, true, 1, Instant::now()), None);
        assert_eq!(s.source_of(&f(9)), Some(f(2)));
        assert_eq!(
            s.delivered(f(1), f(9), true, false, 1, Instant::now()),
            Some(ModeChange {
                peer: f(1),
                reset: None,
                feeds: vec![(f(9), false)]
            })
        );
        // The source's own duplicates (a race) change nothing.
        assert_eq!(
            s.delivered(f(2), f(9), true, false, 1, Instant::now()),
            None
        );
        // A reconnecting peer learns its modes in one short packet.
        assert_eq!(s.modes_for(f(1)), (true, vec![(f(9), false)]));
        assert_eq!(s.modes_for(f(2)), (false, vec![(f(9), true)]));
    }

    #[test]
    fn a_disconnected_source_falls_back_to_the_default() {
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.delivered(f(2), f(9), true, true, 1, Instant::now());
        s.delivered(f(1), f(9), true, false, 1, Instant::now());
        assert_eq!(
            s.disconnect(f(2)),
            vec![ModeChange {
                peer: f(1),
                reset: None,
                feeds: vec![(f(9), true)]
            }]
        );
        assert_eq!(s.source_of(&f(9)), Some(f(1)));
        assert_eq!(s.disconnect(f(2)), vec![], "only once");
    }

    #[test]
    fn a_disconnected_default_hands_over_to_the_next_peer() {
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.connect(f(3));
        s.delivered(f(3), f(9), true, true, 1, Instant::now());
        assert_eq!(
            s.disconnect(f(1)),
            vec![ModeChange {
                peer: f(2),
                reset: Some(true),
                feeds: vec![(f(9), false)]
            }]
        );
        assert_eq!(s.source_of(&f(8)), Some(f(2)));
        assert_eq!(s.source_of(&f(9)), Some(f(3)));
        s.disconnect(f(2));
        s.disconnect(f(3));
        assert_eq!(s.source_of(&f(9)), None);
    }

    #[test]
    fn a_source_that_falls_behind_is_replaced_after_the_grace_time() {
        let t0 = Instant::now();
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.connect(f(3));
        s.delivered(f(1), f(9), true, true, 3, Instant::now());
        // Two peers note more than the source brought.
        assert_eq!(s.noted(f(2), f(9), 5, 3, t0), None);
        assert_eq!(s.noted(f(3), f(9), 4, 3, t0 + GRACE / 2), None);
        let head = |_: &FeedId| 3;
        assert_eq!(s.poll(t0 + GRACE / 2, head), vec![]);
        let asked = s.poll(t0 + GRACE, head);
        assert_eq!(
            asked,
            vec![ModeChange {
                peer: f(2),
                reset: None,
                feeds: vec![(f(9), true)]
            }]
        );
        assert_eq!(s.source_of(&f(9)), Some(f(2)));
        // f(2) does not deliver either: f(3) gets a turn, a grace later.
        assert_eq!(s.poll(t0 + GRACE + GRACE / 2, head), vec![]);
        assert_eq!(s.poll(t0 + GRACE * 2, head)[0].peer, f(3));
        // Once held, nothing more is asked.
        s.noted(f(2), f(9), 6, 3, t0 + GRACE * 2);
        assert_eq!(s.poll(t0 + GRACE * 9, |_| 6), vec![]);
        assert_eq!(s.lagging(), 0);
    }

    #[test]
    fn the_grace_time_stretches_on_a_busy_node() {
        let t0 = Instant::now();
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.delivered(f(1), f(9), true, true, 1, t0);
        assert_eq!(s.grace(t0), GRACE);
        // Deliveries keep coming 2 s after the notes: the source is slow
        // because everything is, not because it stalled.
        for seq in 2..40u64 {
            let t = t0 + Duration::from_secs(seq);
            s.noted(f(2), f(9), seq, seq - 1, t);
            s.delivered(f(1), f(9), true, true, seq, t + Duration::from_secs(2));
        }
        let t = t0 + Duration::from_secs(42);
        assert!(s.grace(t) >= Duration::from_secs(5), "{:?}", s.grace(t));
        assert!(s.grace(t) <= GRACE * MAX_GRACE_FACTOR);
        // Quiet again: the stretch wears off.
        assert_eq!(s.grace(t + DELAY_HALF_LIFE * 10), GRACE);
    }

    #[test]
    fn a_delivery_in_time_cancels_the_switch() {
        let t0 = Instant::now();
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.delivered(f(1), f(9), true, true, 3, Instant::now());
        s.noted(f(2), f(9), 4, 3, t0);
        s.delivered(f(1), f(9), true, true, 4, Instant::now());
        assert_eq!(s.lagging(), 0);
        assert_eq!(s.poll(t0 + GRACE * 2, |_| 4), vec![]);
        // A source that keeps delivering, however far behind, is kept.
        let t1 = t0 + GRACE * 3;
        s.noted(f(2), f(9), 9, 4, t1);
        s.delivered(f(1), f(9), true, true, 5, t1 + GRACE / 2);
        s.delivered(f(1), f(9), true, true, 6, t1 + GRACE);
        assert_eq!(s.poll(t1 + GRACE + GRACE / 2, |_| 6), vec![]);
        // It stops: the peer that is ahead gets the feed.
        let later = t1 + GRACE + s.grace(t1 + GRACE);
        assert_eq!(s.poll(later, |_| 6)[0].peer, f(2));
    }

    #[test]
    fn an_unknown_feed_noted_ahead_is_asked_for_at_once() {
        let t0 = Instant::now();
        let mut s = Sources::new(GRACE);
        s.connect(f(1));
        s.connect(f(2));
        s.connect(f(3));
        // The default source noted it (it is pushing it): wait for it.
        assert_eq!(s.noted(f(1), f(8), 2, 0, t0), None);
        assert_eq!(s.noted(f(2), f(8), 2, 0, t0), None);
        // Nobody known pushes feed 9: ask the first peer that has it.
        assert_eq!(
            s.noted(f(2), f(9), 1, 0, t0),
            Some(ModeChange {
                peer: f(2),
                reset: None,
                feeds: vec![(f(9), true)]
            })
        );
        assert_eq!(s.noted(f(3), f(9), 1, 0, t0), None, "asked already");
    }

    // -----------------------------------------------------------------
    // A whole mesh of sans-io nodes: sessions on every link, one Sources
    // per node, packets delivered in random order (FIFO per link), links
    // cut and restored, time advancing. Every node must end up with every
    // message, whatever the order.

    struct SimNode {
        heads: BTreeMap<FeedId, u64>,
        sources: Sources,
        sessions: BTreeMap<usize, Session>,
        duplicates: u64,
    }

    /// What a node holds of `feed` (0 when it never heard of it: a feed
    /// nobody wrote to need not reach everyone).
    fn sim_head(node: &SimNode, feed: &FeedId) -> u64 {
        node.heads.get(feed).copied().unwrap_or(0)
    }

    fn sim_id(i: usize) -> FeedId {
        f(i as u8 + 1)
    }

    struct Sim {
        nodes: Vec<SimNode>,
        wire: BTreeMap<(usize, usize), VecDeque<Packet>>,
        now: Instant,
    }

    impl Sim {
        fn new(n: usize) -> Sim {
            let nodes = (0..n)
                .map(|i| SimNode {
                    heads: BTreeMap::from([(sim_id(i), 0)]),
                    sources: Sources::new(GRACE),
                    sessions: BTreeMap::new(),
                    duplicates: 0,
                })
                .collect();
            Sim {
                nodes,
                wire: BTreeMap::new(),
                now: Instant::now(),
            }
        }

        /// `n` nodes on a ring plus `n` random chords, all connected.
        fn ring_with_chords(n: usize, rng: &mut rand::rngs::StdRng) -> Sim {
            use rand::Rng;
            let mut sim = Sim::new(n);
            let mut links: BTreeSet<(usize, usize)> = (0..n)
                .map(|i| (i.min((i + 1) % n), i.max((i + 1) % n)))
                .collect();
            for _ in 0..n {
                let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
                if a != b {
                    links.insert((a.min(b), a.max(b)));
                }
            }
            for &(a, b) in &links {
                sim.connect(a, b, None);
            }
            sim
        }

        fn connect(&mut self, a: usize, b: usize, memories: Option<(PeerMemory, PeerMemory)>) {
            let (ma, mb) = memories.map_or((None, None), |(x, y)| (Some(x), Some(y)));
            for (x, y, m) in [(a, b, ma), (b, a, mb)] {
                let modes = self.nodes[x].sources.connect(sim_id(y));
                let mine = self.nodes[x].heads.clone();
                let s = Session::start(&Policy::Open, mine, m, false, Some(modes));
                self.nodes[x].sessions.insert(y, s);
                self.wire.insert((x, y), VecDeque::new());
            }
        }

        fn disconnect(&mut self, a: usize, b: usize) -> (PeerMemory, PeerMemory) {
            let mut memories = Vec::new();
            for (x, y) in [(a, b), (b, a)] {
                let s = self.nodes[x].sessions.remove(&y).unwrap();
                memories.push(s.memory());
                self.wire.remove(&(x, y));
                let changes = self.nodes[x].sources.disconnect(sim_id(y));
                self.apply(x, changes);
            }
            let b_mem = memories.pop().unwrap();
            (memories.pop().unwrap(), b_mem)
        }

        fn apply(&mut self, x: usize, changes: Vec<ModeChange>) {
            for c in changes {
                let peer = usize::from(c.peer.0[0] - 1);
                if let Some(s) = self.nodes[x].sessions.get_mut(&peer) {
                    s.set_modes(c.reset, &c.feeds);
                }
            }
        }

        /// Moves what every session wants to send onto the wire.
        fn flush(&mut self) {
            for x in 0..self.nodes.len() {
                for (&y, s) in &mut self.nodes[x].sessions {
                    let q = self.wire.get_mut(&(x, y)).unwrap();
                    while let Some(p) = s.poll_packet() {
                        q.push_back(p);
                    }
                    while let Some((feed, first, last)) = s.next_range() {
                        for seq in first..=last {
                            let mut bytes = feed.0.to_vec();
                            bytes.extend_from_slice(&seq.to_be_bytes());
                            q.push_back(Packet::Message(bytes));
                        }
                    }
                }
            }
        }

        fn appended(&mut self, x: usize, feed: FeedId, seq: u64) {
            for s in self.nodes[x].sessions.values_mut() {
                s.on_local_append(feed, seq);
            }
        }

        fn publish(&mut self, x: usize) {
            let feed = sim_id(x);
            let seq = self.nodes[x].heads[&feed] + 1;
            self.nodes[x].heads.insert(feed, seq);
            self.appended(x, feed, seq);
        }

        /// Delivers the next packet on link `from → to`.
        fn deliver(&mut self, from: usize, to: usize) {
            let Some(p) = self.wire.get_mut(&(from, to)).and_then(|q| q.pop_front()) else {
                return;
            };
            let peer = sim_id(from);
            let node = &mut self.nodes[to];
            let s = node.sessions.get_mut(&from).unwrap();
            let mut changes = Vec::new();
            match s.on_packet(p).unwrap() {
                Incoming::Message(bytes) => {
                    let feed = FeedId(bytes[..32].try_into().unwrap());
                    let seq = u64::from_be_bytes(bytes[32..].try_into().unwrap());
                    let held = node.heads.get(&feed).copied().unwrap_or(0);
                    assert!(seq <= held + 1, "a gap in a feed: {seq} after {held}");
                    let new = seq == held + 1;
                    if new {
                        node.heads.insert(feed, seq);
                    } else {
                        node.duplicates += 1;
                    }
                    s.on_received(feed, seq);
                    let head = node.heads[&feed];
                    let pushing = s.asks_push(&feed);
                    changes.extend(
                        node.sources
                            .delivered(peer, feed, pushing, new, head, self.now),
                    );
                    if new {
                        self.appended(to, feed, seq);
                    }
                }
                Incoming::Goodbye => unreachable!(),
                Incoming::Nothing | Incoming::ClockReady => {
                    for (feed, seq, head) in s.take_ahead() {
                        changes.extend(node.sources.noted(peer, feed, seq, head, self.now));
                    }
                }
            }
            self.apply(to, changes);
        }

        fn tick(&mut self, by: Duration) {
            self.now += by;
            for x in 0..self.nodes.len() {
                let heads = self.nodes[x].heads.clone();
                let now = self.now;
                let changes = self.nodes[x]
                    .sources
                    .poll(now, |f| heads.get(f).copied().unwrap_or(0));
                self.apply(x, changes);
            }
        }

        fn in_flight(&self) -> bool {
            self.wire.values().any(|q| !q.is_empty())
        }
    }

    /// Runs a random mesh to quiescence; returns (heads per node, the
    /// expected heads, duplicates).
    /// `max_tick_ms` is the most time that passes at once (20 % of steps):
    /// large values make links slow against the grace time.
    fn run_mesh(
        seed: u64,
        n: usize,
        publishes: usize,
        cut: bool,
        max_tick_ms: u64,
    ) -> (Sim, BTreeMap<FeedId, u64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sim = Sim::ring_with_chords(n, &mut rng);
        let ring_link = (0, 1);
        let mut cut_at = cut.then(|| rng.gen_range(0..800usize));
        let mut cut_memories = None;
        let mut published = 0;
        let links: Vec<(usize, usize)> = sim.wire.keys().copied().collect();
        for step in 0..3_000usize {
            sim.flush();
            if cut_at == Some(step) && sim.nodes[0].sessions.contains_key(&1) {
                cut_memories = Some(sim.disconnect(ring_link.0, ring_link.1));
                cut_at = None;
            }
            if step == 1_500
                && let Some(m) = cut_memories.take()
            {
                sim.connect(ring_link.0, ring_link.1, Some(m));
                continue;
            }
            match rng.gen_range(0..100) {
                0..70 => {
                    let (a, b) = links[rng.gen_range(0..links.len())];
                    sim.deliver(a, b);
                }
                70..80 if published < publishes => {
                    sim.publish(rng.gen_range(0..n));
                    published += 1;
                }
                _ => sim.tick(Duration::from_millis(rng.gen_range(0..=max_tick_ms))),
            }
        }
        if let Some(m) = cut_memories.take() {
            sim.connect(ring_link.0, ring_link.1, Some(m));
        }
        let expected: BTreeMap<FeedId, u64> = (0..n)
            .map(|i| (sim_id(i), sim.nodes[i].heads[&sim_id(i)]))
            .collect();
        // Drain: deliver everything, let grace times pass; bounded.
        for _ in 0..200 {
            sim.flush();
            while sim.in_flight() {
                let links: Vec<(usize, usize)> = sim.wire.keys().copied().collect();
                for (a, b) in links {
                    sim.deliver(a, b);
                }
                sim.flush();
            }
            if sim
                .nodes
                .iter()
                .all(|node| expected.iter().all(|(f, s)| sim_head(node, f) == *s))
            {
                break;
            }
            sim.tick(GRACE / 2);
        }
        (sim, expected)
    }

    /// Links of equal speed: each round delivers what was on every link
    /// at its start (one hop); a message is published every `every`
    /// rounds. Returns the duplicates received in the first and the second
    /// half of the publishes.
    fn run_rounds(seed: u64, n: usize, publishes: usize, every: usize) -> (u64, u64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sim = Sim::ring_with_chords(n, &mut rng);
        let mut halves = [0, 0];
        for k in 0..publishes + 50 {
            if k < publishes {
                sim.publish(rng.gen_range(0..n));
            }
            for _ in 0..every {
                sim.flush();
                let lens: Vec<((usize, usize), usize)> =
                    sim.wire.iter().map(|(l, q)| (*l, q.len())).collect();
                for ((a, b), len) in lens {
                    for _ in 0..len {
                        sim.deliver(a, b);
                    }
                }
                sim.tick(Duration::from_millis(5));
            }
            let dups: u64 = sim.nodes.iter().map(|n| n.duplicates).sum();
            halves[usize::from(k >= publishes / 2)] = dups;
        }
        for (i, node) in sim.nodes.iter().enumerate() {
            for x in 0..n {
                let feed = sim_id(x);
                assert_eq!(
                    sim_head(node, &feed),
                    sim_head(&sim.nodes[x], &feed),
                    "node {i}"
                );
            }
        }
        (halves[0], halves[1] - halves[0])
    }

    #[test]
    fn duplicates_stop_once_each_feed_has_its_source() {
        // Messages one hop apart: the first ones of each feed may come
        // twice while sources are chosen; later ones come once.
        let (first, second) = run_rounds(7, 8, 200, 1);
        assert!(first <= 8 * 8, "{first} duplicates while choosing sources");
        assert!(second <= 8, "{second} duplicates once sources are chosen");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn every_node_of_a_mesh_converges(seed in proptest::prelude::any::<u64>(), n in 2usize..7, cut in proptest::prelude::any::<bool>()) {
            let (sim, expected) = run_mesh(seed, n, 40, cut, 60);
            for (i, node) in sim.nodes.iter().enumerate() {
                for (feed, seq) in &expected {
                    proptest::prop_assert_eq!(sim_head(node, feed), *seq, "node {}", i);
                }
            }
        }
    }
}
