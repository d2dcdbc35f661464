//! One connection's replication joined to the node's choice of live
//! sources (sans-io): the glue between a connection's session and the
//! node-wide [`Sources`], with the connection's timers as data (a
//! [`TimerTable`]).
//!
//! A driver (the tokio node, or the simulator `replicate::sim`) owns one
//! `Link` per connection and one [`Sources`] per node. Its methods come in
//! three kinds: **`handle_*`** tells the link what happened (time is one
//! more input, never read from a clock), **`poll_*`** asks what to do, and
//! a few commands ([`Link::close`], [`Link::leave`]) end it. Each time the
//! driver wakes up it calls, in this order:
//!
//! 1. `handle_*` for what happened: packets from the peer
//!    ([`Link::handle_packet`], then [`Link::handle_batch_end`] once per
//!    batch), messages from the peer ([`Link::handle_messages`] and
//!    [`Link::accepts`] before the store sees them, and
//!    [`Link::handle_ingested`] after), news from the node (local appends,
//!    push-mode changes, blocks, missed notices), and
//!    [`Link::handle_timeout`] once [`Link::poll_timeout`] has passed;
//! 2. `poll_*` for what to do: [`Link::poll_finish`] (a one-off sync
//!    says goodbye once caught up), [`Link::poll_progress`] (what to tell
//!    front ends), and, while [`Link::wants_to_send`], [`Link::poll_packet`]
//!    and [`Link::poll_range`], then [`Link::handle_sent`];
//! 3. it sleeps until [`Link::poll_timeout`] or the next event.
//!
//! Every method that touches [`Sources`] returns the push-mode changes it
//! decided; the driver hands each to the link of the peer it names
//! ([`Link::handle_modes`]). A link that takes part in the choice of
//! sources must [`Link::leave`] it when the connection ends, however it
//! ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::feed::message::FeedId;
use crate::proto::wire::{Packet, RefuseReason};

use super::session::{Incoming, Session};
use super::timer::{Timer, TimerTable};
use super::{Clock, Holding, ModeChange, PeerMemory, Policy, ProtocolError, Sources};

/// How often a link that saw a lagging feed checks [`Sources`] for feeds
/// past their grace time.
pub const SOURCE_CHECK: Duration = Duration::from_millis(200);
/// Notes (latest sequences for peers that take a feed as notes only) go
/// out at most this often per connection, together: on a busy node one
/// frame carries many feeds' notes instead of one frame per new message,
/// and a note mostly arrives after the message it announces came from the
/// source, so it costs the receiver nothing. Notes only serve to notice a
/// lagging source, which waits at least the grace time anyway.
pub const NOTES_EVERY: Duration = Duration::from_millis(200);
/// How often a connection tells front ends how its catch-up goes.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// While nothing moves on a connection, how often its progress is checked
/// anyway: the check walks both clocks (a peer's may hold 200,000
/// entries), so an idle or stalling peer must not make it run every second.
pub const PROGRESS_IDLE_RECHECK: Duration = Duration::from_secs(10);

/// The timers of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTiming {
    /// Send a ping when nothing was sent for this long.
    pub keepalive: Duration,
    /// The connection is dead when nothing arrived for this long.
    pub idle: Duration,
    /// See [`NOTES_EVERY`].
    pub notes_every: Duration,
    /// See [`SOURCE_CHECK`].
    pub source_check: Duration,
    /// See [`PROGRESS_EVERY`].
    pub progress_every: Duration,
    /// See [`PROGRESS_IDLE_RECHECK`].
    pub progress_idle_recheck: Duration,
}

impl LinkTiming {
    /// The given keepalive and idle times, and the default for the rest.
    pub fn new(keepalive: Duration, idle: Duration) -> LinkTiming {
        LinkTiming {
            keepalive,
            idle,
            notes_every: NOTES_EVERY,
            source_check: SOURCE_CHECK,
            progress_every: PROGRESS_EVERY,
            progress_idle_recheck: PROGRESS_IDLE_RECHECK,
        }
    }

    /// How often the keepalive and the idle time are checked.
    fn keepalive_check(&self) -> Duration {
        self.keepalive.min(self.idle) / 2
    }
}

/// Why a link ended.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Nothing arrived from the peer for the idle time.
    #[error("peer went silent")]
    Idle,
}

/// What the store made of a batch of the peer's messages, for
/// [`Link::handle_ingested`].
#[derive(Clone, Copy, Debug)]
pub struct Ingested<'a> {
    /// `(feed, sequence)` of every message of the batch, in order.
    pub positions: &'a [(FeedId, u64)],
    /// How many of `positions`, from the start, the store now holds
    /// (stored now or before); the rest follow a message it refused.
    pub held: usize,
    /// Feeds of which the batch brought at least one message we lacked.
    pub new: &'a BTreeSet<FeedId>,
    /// Feeds found forked by the batch, with what we hold of each: they
    /// are no longer exchanged on this link.
    pub forked: &'a [(FeedId, u64)],
    /// How many messages were newly stored.
    pub accepted: u64,
}

/// How the peer ended the session ([`Link::handle_packet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerEnd {
    /// A clean goodbye: store what came before it, then close.
    Goodbye,
    /// The peer refused the session (right after the handshake), and why.
    Refused(RefuseReason),
}

/// How a link's catch-up goes, for front ends ([`Link::poll_progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Messages received from this peer and newly stored so far.
    pub received: u64,
    /// Messages the peer's clock promises that we want and lack.
    pub remaining: u64,
    /// Both sides hold what the other can give.
    pub caught_up: bool,
    /// `caught_up` or `received` changed since the last report: worth
    /// telling front ends.
    pub changed: bool,
}

/// What a link starts from (see [`Link::open`]).
#[derive(Clone, Debug)]
pub struct Opening<'a> {
    /// The peer's feed.
    pub peer: FeedId,
    /// Which feeds we replicate.
    pub policy: &'a Policy,
    /// Our clock.
    pub mine: Clock,
    /// A clock the node's sessions share, against which this link keeps
    /// its clocks (see [`Link::wants_new_base`]); any clock will do, an
    /// empty one shares nothing.
    pub base: Arc<Clock>,
    /// What we remember of the peer from the last session.
    pub memory: Option<PeerMemory>,
    /// Our side is a one-off sync: it takes every feed pushed and leaves
    /// once caught up.
    pub once: bool,
    /// The link's timers.
    pub timing: LinkTiming,
}

/// One connection's replication: its session (clocks, ranges, notes and
/// push modes), its place in the node's [`Sources`], and its timers.
pub struct Link {
    session: Session,
    peer: FeedId,
    /// Our side is a one-off sync: it leaves once caught up.
    once: bool,
    /// Takes part in the node's choice of live sources.
    active: bool,
    /// Our goodbye is queued.
    closing: bool,
    timing: LinkTiming,
    timers: TimerTable,
    /// When anything last went on the wire (a keepalive is due after
    /// [`LinkTiming::keepalive`] of silence).
    last_sent: Instant,
    /// Notes went out in what the driver polled since it last reported a
    /// send: the next ones are held back for [`LinkTiming::notes_every`].
    notes_sent: bool,
    /// Messages received and stored, and messages sent, on this link.
    received: u64,
    sent: u64,
    /// When progress was last checked, and (received, sent) then.
    progress_at: Option<Instant>,
    progress_moved: (u64, u64),
    reported_received: u64,
    caught_up: bool,
    /// Hub packets from the peer that the node has not taken yet.
    hub_inbox: std::collections::VecDeque<Packet>,
    /// Something that can change the catch-up happened since the last
    /// progress check (anything but a ping): a caught-up link is checked
    /// again only then, so that an idle hub with many members does not
    /// walk every member's clocks every few seconds.
    changed_since_check: bool,
    /// The link asks for a new base once its clocks keep more entries
    /// of their own than this (see [`Link::wants_new_base`]).
    rebase_at: usize,
}

/// A link keeps this many clock entries of its own before it asks for a
/// new base, however small its clocks.
const MIN_REBASE_AT: usize = 64;

/// Most hub packets waiting for the node at once; a peer that sends more
/// before the node takes them breaks the protocol.
const MAX_HUB_INBOX: usize = 64;

impl Link {
    /// Opens a link: starts the session. A lasting connection (`once`
    /// false) joins the choice of live sources and starts with the push
    /// modes [`Sources::connect`] gives it; a one-off sync takes every
    /// feed pushed and leaves once caught up.
    pub fn open(opening: Opening<'_>, sources: &mut Sources, now: Instant) -> Link {
        let Opening {
            peer,
            policy,
            mine,
            base,
            memory,
            once,
            timing,
        } = opening;
        let modes = (!once).then(|| sources.connect(peer));
        let session = Session::start(policy, mine, memory, once, modes, base);
        let mut timers = TimerTable::default();
        timers.set(Timer::Idle, now + timing.idle);
        timers.set(Timer::KeepAlive, now + timing.keepalive_check());
        Link {
            session,
            peer,
            once,
            active: !once,
            closing: false,
            timing,
            timers,
            last_sent: now,
            notes_sent: false,
            received: 0,
            sent: 0,
            progress_at: None,
            progress_moved: (0, 0),
            reported_received: 0,
            caught_up: false,
            hub_inbox: std::collections::VecDeque::new(),
            changed_since_check: true,
            rebase_at: MIN_REBASE_AT,
        }
    }

    // ----- getters

    /// The peer's feed.
    pub fn peer(&self) -> FeedId {
        self.peer
    }

    /// Still takes part in the node's choice of live sources.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Our side is a one-off sync: it says goodbye once caught up.
    pub fn is_one_off(&self) -> bool {
        self.once
    }

    /// The peer is a one-off sync (its `Hello` said so).
    pub fn peer_is_once(&self) -> bool {
        self.session.peer_is_once()
    }

    /// Our goodbye is queued.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// The peer's clock is known (the session got past its opening): only
    /// then is [`Link::memory`] worth keeping.
    pub fn is_live(&self) -> bool {
        self.session.is_live()
    }

    /// Entries in the peer's clock as we know it (what this link holds for
    /// it; a node bounds it for strangers).
    pub fn peer_clock_len(&self) -> usize {
        self.session.peer_clock_len()
    }

    /// How far the peer holds `feed`, as this link knows its clock.
    pub fn peer_holding(&self, feed: &FeedId) -> Option<Holding> {
        self.session.peer_holding(feed)
    }

    /// Should a message of `feed` from this peer be stored?
    pub fn accepts(&self, feed: &FeedId) -> bool {
        self.session.accepts(feed)
    }

    /// What to remember about this peer for the next session.
    pub fn memory(&self) -> PeerMemory {
        self.session.memory()
    }

    // ----- the clocks' shared base

    /// The link's clocks keep so many entries of their own that a newer
    /// base would save memory: the node should hand it one with
    /// [`Link::rebase`] (a base made from [`Link::own_clock`] when it has
    /// none newer than [`Link::clock_base`]). The threshold grows with the
    /// clocks and with what a rebase could not remove (a peer that is far
    /// behind, or holds feeds we do not), so rebasing costs a constant per
    /// change, amortized.
    pub fn wants_new_base(&self) -> bool {
        self.session.clock_differences() > self.rebase_at
    }

    /// The base the link's clocks are kept against.
    pub fn clock_base(&self) -> &Arc<Clock> {
        self.session.clock_base()
    }

    /// Our clock as this link holds it.
    pub fn own_clock(&self) -> Clock {
        self.session.own_clock()
    }

    /// Keeps the link's clocks against `base` (what they hold does not
    /// change; only the memory they take).
    pub fn rebase(&mut self, base: &Arc<Clock>) {
        self.session.rebase(base);
        let left = self.session.clock_differences();
        self.rebase_at = MIN_REBASE_AT.max(base.len() / 8) + 2 * left;
    }

    // ----- handle_*: what happened

    /// Something arrived from the peer: it is alive.
    fn heard(&mut self, now: Instant) {
        self.timers.set(Timer::Idle, now + self.timing.idle);
    }

    /// A control packet from the peer. Returns how the peer ended the
    /// session, if this packet ends it. Message packets go through
    /// [`Link::handle_messages`] instead: a driver decodes and checks them
    /// before the link sees them.
    pub fn handle_packet(
        &mut self,
        packet: Packet,
        now: Instant,
    ) -> Result<Option<PeerEnd>, ProtocolError> {
        self.heard(now);
        self.changed_since_check |= !matches!(packet, Packet::Ping);
        Ok(match self.session.handle_packet(packet)? {
            Incoming::Goodbye => Some(PeerEnd::Goodbye),
            Incoming::Refused(reason) => Some(PeerEnd::Refused(reason)),
            Incoming::Hub(packet) => {
                if self.hub_inbox.len() >= MAX_HUB_INBOX {
                    return Err(ProtocolError::Unexpected(
                        "hub packets faster than we handle",
                    ));
                }
                self.hub_inbox.push_back(packet);
                None
            }
            Incoming::Nothing | Incoming::ClockReady => None,
        })
    }

    /// Queues a hub packet to send to the peer (a hub's `TunnelCall` or
    /// `Members`, a member's `TunnelDecline`).
    pub fn handle_hub_send(&mut self, packet: Packet) {
        self.session.queue_hub_packet(packet);
    }

    /// The next hub packet the peer sent, for the node to act on.
    pub fn poll_hub_packet(&mut self) -> Option<Packet> {
        self.hub_inbox.pop_front()
    }

    /// Messages arrived from the peer: fails if the peer may not send any
    /// yet. Store only those of them that [`Link::accepts`].
    pub fn handle_messages(&mut self, now: Instant) -> Result<(), ProtocolError> {
        self.heard(now);
        self.changed_since_check = true;
        self.session.check_message_allowed()
    }

    /// The end of a batch of packets: a peer that turned out to be a
    /// one-off sync leaves the choice of sources (it gets every feed
    /// pushed), and feeds the peer noted ahead of us go to [`Sources`].
    /// While receiving without pause, a ping now and then tells the peer
    /// we are here (a sender that hears nothing times out).
    pub fn handle_batch_end(&mut self, sources: &mut Sources, now: Instant) -> Vec<ModeChange> {
        let mut changes = Vec::new();
        if self.active && self.session.peer_is_once() {
            changes = self.leave(sources);
            self.session.handle_modes(Some(true), &[]);
        }
        let ahead = self.session.poll_ahead();
        if self.active {
            changes.extend(
                ahead
                    .into_iter()
                    .filter_map(|(feed, seq, head)| sources.noted(self.peer, feed, seq, head, now)),
            );
        }
        self.schedule_source_check(sources, now);
        if now.saturating_duration_since(self.last_sent) >= self.timing.keepalive
            && !self.closing
            && !self.session.has_outgoing()
        {
            self.session.ping();
        }
        changes
    }

    /// The store ingested a batch of the peer's messages: forked feeds
    /// stop being exchanged on this link, the session learns what we now
    /// hold, and [`Sources`] learns who brought what (a peer that only
    /// brings what we hold is not the feed's source and should send notes
    /// instead).
    pub fn handle_ingested(
        &mut self,
        sources: &mut Sources,
        ingested: &Ingested<'_>,
        now: Instant,
    ) -> Vec<ModeChange> {
        self.changed_since_check = true;
        let forked: BTreeSet<FeedId> = ingested.forked.iter().map(|(f, _)| *f).collect();
        for &(feed, head) in ingested.forked {
            self.session.handle_blocking(feed, true, head);
        }
        let held = &ingested.positions[..ingested.held.min(ingested.positions.len())];
        let mut fed: BTreeMap<FeedId, u64> = BTreeMap::new();
        for &(feed, seq) in held.iter().filter(|(f, _)| !forked.contains(f)) {
            self.session.handle_received(feed, seq);
            let top = fed.entry(feed).or_insert(0);
            *top = (*top).max(seq);
        }
        self.received += ingested.accepted;
        self.schedule_progress();
        if !self.active {
            return Vec::new();
        }
        let changes = fed
            .into_iter()
            .filter_map(|(feed, head)| {
                let pushing = self.session.asks_push(&feed);
                let new = ingested.new.contains(&feed);
                sources.delivered(self.peer, feed, pushing, new, head, now)
            })
            .collect();
        self.schedule_source_check(sources, now);
        changes
    }

    /// We now hold `feed` up to `sequence` (published here or received
    /// from any peer).
    pub fn handle_local_append(&mut self, feed: FeedId, sequence: u64) {
        self.changed_since_check = true;
        self.session.handle_local_append(feed, sequence);
    }

    /// [`Sources`] changed push modes; applies the change if it is for
    /// this link's peer.
    pub fn handle_modes(&mut self, change: &ModeChange) {
        if self.active && change.peer == self.peer {
            self.changed_since_check = true;
            self.session.handle_modes(change.reset, &change.feeds);
        }
    }

    /// We blocked (or unblocked) `feed`, of which we hold `head`.
    pub fn handle_blocking(&mut self, feed: FeedId, blocked: bool, head: u64) {
        self.changed_since_check = true;
        self.session.handle_blocking(feed, blocked, head);
    }

    /// The driver missed some of the node's notices: re-reads the push
    /// modes, every blocked feed and every head.
    pub fn handle_missed(
        &mut self,
        sources: &Sources,
        blocked: impl IntoIterator<Item = FeedId>,
        heads: impl IntoIterator<Item = (FeedId, u64)>,
    ) {
        self.changed_since_check = true;
        if self.active {
            let (default_push, feeds) = sources.modes_for(self.peer);
            self.session.handle_modes(Some(default_push), &feeds);
        }
        for feed in blocked {
            self.session.handle_blocking(feed, true, 0);
        }
        for (feed, head) in heads {
            self.session.handle_local_append(feed, head);
        }
    }

    /// Our copy of `feed` cannot be sent beyond `sent_until`: the next
    /// message is damaged on disk. The link sends nothing more of that
    /// feed, and tells the peer it offers it only that far.
    pub fn handle_damaged(&mut self, feed: FeedId, sent_until: u64) {
        self.changed_since_check = true;
        self.session.handle_damaged(feed, sent_until);
    }

    /// The driver sent what it polled: `messages` messages, and `wrote`
    /// tells whether anything went on the wire at all.
    pub fn handle_sent(&mut self, messages: u64, wrote: bool, now: Instant) {
        self.sent += messages;
        self.schedule_progress();
        if std::mem::take(&mut self.notes_sent) && self.timers.get(Timer::Notes).is_none() {
            self.timers.set(Timer::Notes, now + self.timing.notes_every);
        }
        if wrote {
            self.last_sent = now;
        }
    }

    /// Time passed: fails when the peer went silent; otherwise queues a
    /// keepalive when due, lets held-back notes go, and asks [`Sources`]
    /// for feeds past their grace time (`head(feed)`: what we hold now).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        sources: &mut Sources,
        head: impl Fn(&FeedId) -> u64,
    ) -> Result<Vec<ModeChange>, LinkError> {
        if self.timers.is_expired(Timer::Idle, now) {
            return Err(LinkError::Idle);
        }
        if self.timers.is_expired(Timer::KeepAlive, now) {
            self.timers
                .set(Timer::KeepAlive, now + self.timing.keepalive_check());
            if now.saturating_duration_since(self.last_sent) >= self.timing.keepalive
                && !self.closing
            {
                self.session.ping();
            }
        }
        if self.timers.is_expired(Timer::Notes, now) {
            self.timers.stop(Timer::Notes);
        }
        let mut changes = Vec::new();
        if self.timers.is_expired(Timer::SourceCheck, now) {
            self.timers.stop(Timer::SourceCheck);
            if self.active {
                changes = sources.poll(now, head);
            }
            self.schedule_source_check(sources, now);
        }
        Ok(changes)
    }

    // ----- commands

    /// Queues our goodbye (once).
    pub fn close(&mut self) {
        if !self.closing {
            self.session.close();
            self.closing = true;
        }
    }

    /// Leaves the node's choice of live sources (the connection ends, or
    /// the peer is a one-off sync): its feeds fall back to other peers.
    /// Returns the changes to hand out. Does nothing the second time.
    pub fn leave(&mut self, sources: &mut Sources) -> Vec<ModeChange> {
        if std::mem::take(&mut self.active) {
            sources.disconnect(self.peer)
        } else {
            Vec::new()
        }
    }

    // ----- poll_*: what to do

    /// A one-off sync says goodbye once both sides are caught up.
    pub fn poll_finish(&mut self) {
        if self.once && !self.closing && self.session.is_caught_up() {
            self.close();
        }
    }

    /// How the catch-up goes, at most once per [`PROGRESS_EVERY`] while
    /// messages move, once per [`PROGRESS_IDLE_RECHECK`] while nothing
    /// does (the check is a walk over both clocks). `None` when no check
    /// is due.
    pub fn poll_progress(&mut self, now: Instant) -> Option<Progress> {
        if self.progress_due().is_some_and(|at| now < at) {
            return None;
        }
        // Caught up, and only pings since: nothing to learn.
        if self.caught_up
            && !self.changed_since_check
            && (self.received, self.sent) == self.progress_moved
        {
            return None;
        }
        self.changed_since_check = false;
        self.progress_at = Some(now);
        self.progress_moved = (self.received, self.sent);
        let caught_up = self.session.is_caught_up();
        let changed = caught_up != self.caught_up || self.received != self.reported_received;
        self.caught_up = caught_up;
        self.reported_received = self.received;
        self.schedule_progress();
        Some(Progress {
            received: self.received,
            remaining: self.session.wanted_from_peer(),
            caught_up,
            changed,
        })
    }

    /// When the driver must call [`Link::handle_timeout`] (or
    /// [`Link::poll_progress`]) next, if nothing else happens before: the
    /// earliest running timer. The idle timer always runs, so there is
    /// always one while the link is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Something waits to be sent: control packets, ranges of messages,
    /// or notes no longer held back.
    pub fn wants_to_send(&self) -> bool {
        self.session.has_outgoing()
            || self.session.has_pending()
            || (self.session.has_notes() && self.timers.get(Timer::Notes).is_none())
    }

    /// The next control packet to send (clocks, notes, push modes, resync,
    /// keepalive, goodbye).
    pub fn poll_packet(&mut self) -> Option<Packet> {
        let notes = self.session.has_notes();
        let packet = self.session.poll_packet();
        self.notes_sent |= notes && !self.session.has_notes();
        packet
    }

    /// The next range of our messages to send: `(feed, first, last)`,
    /// inclusive. The driver must send exactly those messages, in order
    /// (or report the first it cannot read with [`Link::handle_damaged`]).
    pub fn poll_range(&mut self) -> Option<(FeedId, u64, u64)> {
        self.session.poll_range()
    }

    // ----- timers

    /// Checks [`Sources`] again after [`SOURCE_CHECK`] while some feed
    /// waits for a peer that is ahead.
    fn schedule_source_check(&mut self, sources: &Sources, now: Instant) {
        if self.active && self.timers.get(Timer::SourceCheck).is_none() && sources.lagging() > 0 {
            self.timers
                .set(Timer::SourceCheck, now + self.timing.source_check);
        }
    }

    /// When the next progress check is due: sooner while messages move
    /// than while nothing does. `None` before the first.
    fn progress_due(&self) -> Option<Instant> {
        let every = if (self.received, self.sent) != self.progress_moved {
            self.timing.progress_every
        } else {
            self.timing.progress_idle_recheck
        };
        self.progress_at.map(|at| at + every)
    }

    /// Wakes the driver for the next progress check until caught up (a
    /// caught-up link is checked when something else wakes it).
    fn schedule_progress(&mut self) {
        match self.progress_due() {
            Some(at) if !self.caught_up => self.timers.set(Timer::Progress, at),
            _ => self.timers.stop(Timer::Progress),
        }
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
