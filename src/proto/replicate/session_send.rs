//! What a session sends (sans-io): its clock, notes, push modes and
//! ranges of messages, in the order the peer must read them.

use crate::feed::message::FeedId;
use crate::proto::wire::{
    self, FLAG_ONCE, FLAG_OPEN, FORGET, MAX_CLOCK_ENTRIES, MAX_CLOCK_SEQUENCE, MAX_PUSH_ENTRIES,
    PROTOCOL_VERSION, Packet,
};

use super::super::RANGE_CHUNK;
use super::{Phase, Session};

impl Session {
    /// Queues our clock: a diff against what the peer knows, or in full.
    pub(super) fn send_clock(&mut self, full: bool) {
        let remembered = !self.mine_as_known.is_empty() && !full;
        let baseline = if remembered {
            wire::clock_digest(self.mine_as_known.iter())
        } else {
            [0; 32]
        };
        let mut entries: Vec<(FeedId, u64)> = Vec::new();
        if remembered {
            for (feed, value) in self.mine.iter() {
                if self.mine_as_known.get(feed) != Some(*value) {
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
            digest: wire::clock_digest(self.mine.iter()),
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
                .is_some_and(|v| v <= MAX_CLOCK_SEQUENCE)
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
    pub fn handle_modes(&mut self, reset: Option<bool>, entries: &[(FeedId, bool)]) {
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

    /// Queues `feed` for sending if the peer wants it and lacks some of it:
    /// its messages if the peer wants it pushed, otherwise a note of our
    /// latest sequence (if the peer does not know it yet).
    pub(super) fn consider(&mut self, feed: FeedId) {
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
    pub fn poll_range(&mut self) -> Option<(FeedId, u64, u64)> {
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
    pub fn handle_damaged(&mut self, feed: FeedId, sent_until: u64) {
        self.theirs.insert(feed, sent_until);
        self.mine_as_known.insert(feed, sent_until);
        self.withheld.insert(feed);
        self.notes.remove(&feed);
        self.queued.remove(&feed);
        self.pending.retain(|f| *f != feed);
        self.outbox
            .push_back(Packet::Clock(vec![(feed, sent_until)]));
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

    /// True when feeds wait to be sent through [`Session::poll_range`].
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
}
