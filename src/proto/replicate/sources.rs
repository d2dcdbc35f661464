//! Which connected peer each feed comes live from (sans-io).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::feed::message::FeedId;

/// The grace time stretches with the delay a busy node sees, up to this
/// many times its base (see [`Sources::grace`]).
pub const MAX_GRACE_FACTOR: u32 = 40;
/// How fast the delay estimate of [`Sources`] forgets a slow delivery.
pub const DELAY_HALF_LIFE: Duration = Duration::from_secs(10);

/// A change of push modes for one connection, decided by [`Sources`]:
/// pass it to that connection's [`Link::handle_modes`](super::Link::handle_modes).
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
    /// (for [`Link::open`](super::Link::open)): a default, and the feeds that differ.
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

#[cfg(test)]
#[path = "sources_tests.rs"]
mod tests;
