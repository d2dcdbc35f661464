//! One connection's replication state machine (sans-io): clocks, ranges,
//! notes and push modes. Private to [`replicate`](super): drivers reach it
//! through a [`Link`](super::Link). What it hears and knows is here; what
//! it sends, in [`send`].

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use crate::feed::message::FeedId;
use crate::proto::wire::{
    self, FLAG_ONCE, FLAG_OPEN, FORGET, MAX_CLOCK_SEQUENCE, PROTOCOL_VERSION, Packet, RefuseReason,
    UNWANTED,
};

use super::shared::SharedClock;
use super::{Clock, Holding, MAX_PEER_FEEDS, PeerMemory, Policy, ProtocolError};

/// What the driver must do with an incoming control packet. (Messages
/// have one way in: the driver decodes and validates them, asks
/// [`Session::check_message_allowed`] and [`Session::accepts`], and reports
/// what the store held with [`Session::handle_received`]; see
/// [`Link`](super::Link).)
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Incoming {
    /// Nothing beyond any packets now waiting in [`Session::poll_packet`].
    Nothing,
    /// The peer's clock is complete; streaming can start.
    ClockReady,
    /// The peer closed the session cleanly.
    Goodbye,
    /// The peer refused the session.
    Refused(RefuseReason),
    /// A hub's packet in a live session (`TunnelCall`, `TunnelDecline`,
    /// `Members`): the node decides what to do with it.
    Hub(Packet),
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
///
/// Its three clocks (ours, ours as the peer knows it, and the peer's) are
/// [`SharedClock`]s against one base that the node shares among its
/// sessions (see [`Session::rebase`]).
pub(super) struct Session {
    open: bool,
    once: bool,
    mine: SharedClock,
    mine_as_known: SharedClock,
    peer_open: bool,
    peer_once: bool,
    theirs: SharedClock,
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
    /// ours), for [`Session::poll_ahead`].
    ahead: Vec<(FeedId, u64, u64)>,
    /// Feeds we stopped sending in this session (see [`Session::handle_damaged`]).
    withheld: HashSet<FeedId>,
    /// Where [`Session::is_caught_up`]'s last walk found a feed still
    /// lagging: its next walk starts there.
    lag_hints: LagHints,
}

/// The feeds [`Session::is_caught_up`] last found lagging, one per clock.
#[derive(Debug, Default)]
struct LagHints {
    /// In our clock: a feed the peer wants that we have not given it all of.
    to_give: Option<FeedId>,
    /// In the peer's clock: a feed we want that we do not hold all of.
    to_take: Option<FeedId>,
}

/// The first feed of `clock`, from `start` on and round to the start
/// again, for which `lags` holds: the whole clock is walked, but a walk
/// that starts where the last one found a lagging feed usually stops at
/// once.
fn first_lagging(
    clock: &SharedClock,
    start: Option<FeedId>,
    mut lags: impl FnMut(&FeedId, u64) -> bool,
) -> Option<FeedId> {
    let mut found = |(feed, &value): (&FeedId, &u64)| lags(feed, value).then_some(*feed);
    match start {
        Some(start) => clock.iter_from(&start).find_map(&mut found).or_else(|| {
            clock
                .iter()
                .take_while(|(feed, _)| **feed < start)
                .find_map(&mut found)
        }),
        None => clock.iter().find_map(found),
    }
}

impl Session {
    /// Starts a session that takes every feed pushed from the peer: queues
    /// our `Hello`, clock and `ClockEnd`. `mine` is our current clock;
    /// `memory` what we remember of this peer.
    #[cfg(test)]
    pub fn new(policy: &Policy, mine: Clock, memory: Option<PeerMemory>) -> Session {
        Session::start(policy, mine, memory, false, None, Arc::default())
    }

    /// Starts a session: queues our `Hello`, our push modes (when given:
    /// the default for every feed, and the feeds that differ from it), our
    /// clock and `ClockEnd`. The modes go before the clock so that the peer
    /// knows them before it starts sending ranges. `once` marks a one-off
    /// sync (`Hello` flag `ONCE`). The clocks are kept against `base`
    /// (any clock: it decides only how much memory they take).
    pub fn start(
        policy: &Policy,
        mine: Clock,
        memory: Option<PeerMemory>,
        once: bool,
        modes: Option<(bool, Vec<(FeedId, bool)>)>,
        base: Arc<Clock>,
    ) -> Session {
        let memory = memory.unwrap_or_default();
        let mut session = Session {
            open: *policy == Policy::Open,
            once,
            mine: SharedClock::new(mine, base.clone()),
            mine_as_known: SharedClock::new(memory.mine_as_known, base.clone()),
            peer_open: false,
            peer_once: false,
            theirs: SharedClock::new(memory.theirs, base),
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
            lag_hints: LagHints::default(),
        };
        session.send_clock(false);
        if let Some((default_push, entries)) = modes {
            // Right behind the Hello: the peer reads it before our clock.
            let mut clock = std::mem::take(&mut session.outbox);
            let hello = clock.pop_front();
            session.handle_modes(Some(default_push), &entries);
            let modes = std::mem::take(&mut session.outbox);
            session.outbox.extend(hello);
            session.outbox.extend(modes);
            session.outbox.extend(clock);
        }
        session
    }

    /// Did we ask the peer to push `feed` (rather than notes only)?
    pub fn asks_push(&self, feed: &FeedId) -> bool {
        self.our_modes.push(feed)
    }

    /// Does the peer want `feed` pushed (rather than notes only)?
    #[cfg(test)]
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
    pub fn poll_ahead(&mut self) -> Vec<(FeedId, u64, u64)> {
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
    pub fn handle_packet(&mut self, packet: Packet) -> Result<Incoming, ProtocolError> {
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
                    baseline != wire::clock_digest(self.theirs.iter())
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
                if discard || digest != wire::clock_digest(self.theirs.iter()) {
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
                // A clock read from scratch shares nothing yet.
                let base = self.mine.base().clone();
                self.theirs.rebase(&base);
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
            // Messages come through the driver's decoder, never here.
            Packet::Message(_) => Err(ProtocolError::Unexpected("undecoded message")),
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
            // Sent instead of `Hello`, but it ends the session at any point.
            Packet::Refuse(reason) => Ok(Incoming::Refused(reason)),
            Packet::TunnelCall { .. } | Packet::TunnelDecline { .. } | Packet::Members(_) => {
                self.check_message_allowed()
                    .map_err(|_| ProtocolError::Unexpected("hub packet before hello"))?;
                Ok(Incoming::Hub(packet))
            }
            // These open a connection (before `Hello`), never in a session.
            Packet::Join { .. } => Err(ProtocolError::Unexpected("join")),
            Packet::Welcome => Err(ProtocolError::Unexpected("welcome")),
            Packet::Tunnel { .. } => Err(ProtocolError::Unexpected("tunnel")),
            Packet::TunnelAccept { .. } => Err(ProtocolError::Unexpected("tunnel accept")),
            Packet::TunnelReady => Err(ProtocolError::Unexpected("tunnel ready")),
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

    /// Queues a hub packet (`TunnelCall`, `TunnelDecline`, `Members`) to
    /// send in this session.
    pub fn queue_hub_packet(&mut self, packet: Packet) {
        self.outbox.push_back(packet);
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

    fn peer_wants(&self, feed: &FeedId) -> bool {
        match self.theirs.get(feed) {
            Some(UNWANTED) => false,
            Some(_) => true,
            None => self.peer_open,
        }
    }

    fn peer_holds(&self, feed: &FeedId) -> u64 {
        match self.theirs.get(feed) {
            Some(v) if v <= MAX_CLOCK_SEQUENCE => v,
            _ => 0,
        }
    }

    /// Our latest sequence of `feed` as the peer knows it.
    fn known_mine(&self, feed: &FeedId) -> u64 {
        match self.mine_as_known.get(feed) {
            Some(v) if v <= MAX_CLOCK_SEQUENCE => v,
            _ => 0,
        }
    }

    fn my_head(&self, feed: &FeedId) -> u64 {
        match self.mine.get(feed) {
            Some(v) if v <= MAX_CLOCK_SEQUENCE => v,
            _ => 0,
        }
    }

    /// How far the peer holds `feed`, as this session knows its clock
    /// (what we sent counts as held).
    pub fn peer_holding(&self, feed: &FeedId) -> Option<Holding> {
        Holding::of_entry(self.theirs.get(feed))
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
            Some(UNWANTED) => false,
            Some(_) => true,
            None => self.open,
        }
    }

    /// The peer sent us `feed` up to `sequence` and we now hold it
    /// (ingested, or already held).
    pub fn handle_received(&mut self, feed: FeedId, sequence: u64) {
        let up = |clock: &mut SharedClock| {
            let held = clock.get(&feed).unwrap_or(0);
            clock.insert(feed, held.max(sequence));
        };
        up(&mut self.theirs);
        up(&mut self.mine_as_known);
        up(&mut self.mine);
    }

    /// We now hold `feed` up to `sequence` (published here or received
    /// from another peer): queue it for this peer if it wants it.
    pub fn handle_local_append(&mut self, feed: FeedId, sequence: u64) {
        // A feed absent from a closed clock that the store took anyway
        // (a follow, or a hub's new member, since the session began) is
        // one we replicate now.
        match self.mine.get(&feed) {
            Some(UNWANTED) => return,
            Some(v) if v >= sequence => return,
            _ => {}
        }
        self.mine.insert(feed, sequence);
        self.consider(feed);
    }

    /// We blocked (or unblocked) `feed`: stop taking and giving it, and
    /// tell the peer with a clock entry. `head` is what we hold of it.
    pub fn handle_blocking(&mut self, feed: FeedId, blocked: bool, head: u64) {
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
            if self.mine.get(&feed) == Some(value) {
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
    ///
    /// Both clocks are walked side by side in feed order, not our clock
    /// looked up for each of the peer's feeds: with 50,000 feeds, run
    /// once a second, the lookups took 30 % of a 10M sync's sender.
    pub fn wanted_from_peer(&self) -> u64 {
        let mut mine = self.mine.iter().peekable();
        let mut wanted = 0u64;
        for (feed, &v) in self.theirs.iter() {
            while mine.next_if(|(f, _)| *f < feed).is_some() {}
            let ours = mine.next_if(|(f, _)| *f == feed).map(|(_, &v)| v);
            let accepted = match ours {
                Some(UNWANTED) => false,
                Some(_) => true,
                None => self.open,
            };
            if v > MAX_CLOCK_SEQUENCE || !accepted {
                continue;
            }
            let head = ours.filter(|&h| h <= MAX_CLOCK_SEQUENCE).unwrap_or(0);
            wanted = wanted.saturating_add(v.saturating_sub(head));
        }
        wanted
    }

    /// True when the peer has everything we can give it and we have
    /// everything it advertised that we want.
    ///
    /// A walk over both clocks, asked for after every step of a one-off
    /// sync: with 50,000 feeds, walking from the start each time took a
    /// sixth of a 10M sync's receiver. So each walk starts at
    /// the feed the last one found lagging (still lagging, or the next
    /// lagging one is near) and goes round; the answer is the same.
    pub fn is_caught_up(&mut self) -> bool {
        if self.phase != Phase::Live
            || !self.pending.is_empty()
            || !self.outbox.is_empty()
            || !self.notes.is_empty()
        {
            return false;
        }
        let to_take = first_lagging(&self.theirs, self.lag_hints.to_take, |feed, v| {
            self.still_to_take(feed, v)
        });
        self.lag_hints.to_take = to_take;
        if to_take.is_some() {
            return false;
        }
        let to_give = first_lagging(&self.mine, self.lag_hints.to_give, |feed, v| {
            self.still_to_give(feed, v)
        });
        self.lag_hints.to_give = to_give;
        to_give.is_none()
    }

    /// Our clock says we hold `feed` up to `v`: does the peer still wait
    /// for some of it from us? A feed the peer takes as notes only is not
    /// sent: it waits until the peer asks for it pushed (or gets it
    /// elsewhere).
    fn still_to_give(&self, feed: &FeedId, v: u64) -> bool {
        v <= MAX_CLOCK_SEQUENCE
            && self.peer_wants(feed)
            && self.peer_holds(feed) < v
            && !self.withheld.contains(feed)
    }

    /// The peer's clock says it holds `feed` up to `v`: do we still want
    /// some of it?
    fn still_to_take(&self, feed: &FeedId, v: u64) -> bool {
        v <= MAX_CLOCK_SEQUENCE && self.accepts(feed) && self.my_head(feed) < v
    }

    /// What to remember about this peer for the next session.
    pub fn memory(&self) -> PeerMemory {
        PeerMemory {
            theirs: self.theirs.to_clock(),
            mine_as_known: self.mine_as_known.to_clock(),
        }
    }

    /// Entries the session's clocks keep of their own, beyond the shared
    /// base: what it costs in memory.
    pub fn clock_differences(&self) -> usize {
        self.mine.differences() + self.mine_as_known.differences() + self.theirs.differences()
    }

    /// The base the clocks are kept against.
    pub fn clock_base(&self) -> &Arc<Clock> {
        self.mine.base()
    }

    /// Our clock as this session holds it, in full: a good base for the
    /// node's sessions to share.
    pub fn own_clock(&self) -> Clock {
        self.mine.to_clock()
    }

    /// Keeps the clocks against `base` instead (what they hold does not
    /// change).
    pub fn rebase(&mut self, base: &Arc<Clock>) {
        self.mine.rebase(base);
        self.mine_as_known.rebase(base);
        self.theirs.rebase(base);
    }
}

#[path = "session_send.rs"]
mod send;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
