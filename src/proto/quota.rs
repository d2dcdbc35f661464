//! What a stranger may make this node store (issue 14, defect 6): sans-io
//! bookkeeping that the node consults for every message a stranger sends
//! and whenever it keeps replication memory of a peer.
//!
//! Under open replication a node takes every valid feed a peer offers, and
//! anyone can make up identities and feeds. Signatures stop no one from
//! filling the disk with true messages of new feeds, so a peer that is a
//! *stranger* is held to:
//!
//! - [`QuotaLimits::new_feeds_per_peer_per_hour`]: feeds the node did not
//!   hold before, per peer identity, per hour;
//! - [`QuotaLimits::unknown_feed_bytes_per_hour`]: bytes of one feed that
//!   nobody here follows, from strangers, per hour;
//! - [`QuotaLimits::clock_entries_per_peer`]: entries in the peer's clock
//!   (what the node holds in memory for the connection, and may keep).
//!
//! A message over a quota is not stored and the feed is not taken from
//! that peer for the rest of the session (the peer is told, as for a
//! blocked feed); the peer may bring it again in the next hour. Counters
//! live in fixed one-hour windows and are bounded in number, so the
//! bookkeeping itself cannot be grown without end.
//!
//! Replication memory of peers (their clock and ours as they knew it,
//! saved so that a reconnect exchanges only what changed) is bounded
//! per peer ([`QuotaLimits::peer_memory_bytes_per_peer`]) and in total
//! ([`QuotaLimits::peer_memory_total_bytes`]), and expires
//! ([`QuotaLimits::peer_memory_max_age`]): see [`memory_to_forget`].
//!
//! Who is a stranger is the node's call: a peer is trusted when we follow
//! its feed, when it is a configured or invited peer, or when the user
//! asked for a one-off sync with it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::feed::message::FeedId;

/// One hour, the window of the rate quotas.
pub const WINDOW_MS: i64 = 3_600_000;
/// Strangers tracked within one window; past this, new feeds from
/// strangers not yet tracked are refused until the window ends (a flood
/// of identities must not grow the tables).
pub const MAX_TRACKED_PEERS: usize = 4_096;
/// Unknown feeds tracked within one window (likewise).
pub const MAX_TRACKED_FEEDS: usize = 200_000;
/// How often replication memory is trimmed, at most.
pub const TRIM_EVERY_MS: i64 = 60_000;

/// The quotas; `config.json`'s `"quotas"` object sets any of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaLimits {
    /// Feeds the node did not hold that one stranger may bring per hour.
    pub new_feeds_per_peer_per_hour: u32,
    /// Bytes of one feed nobody here follows that strangers may bring
    /// per hour.
    pub unknown_feed_bytes_per_hour: u64,
    /// Most entries in a stranger's clock; a bigger clock ends the
    /// session.
    pub clock_entries_per_peer: usize,
    /// Replication memory kept for one peer, bytes; a bigger one is not
    /// kept (the next session exchanges full clocks).
    pub peer_memory_bytes_per_peer: u64,
    /// Replication memory kept for all peers together, bytes; the least
    /// recently used goes first.
    pub peer_memory_total_bytes: u64,
    /// Replication memory of a peer not seen for this long is forgotten.
    #[serde(with = "days")]
    pub peer_memory_max_age: Duration,
}

impl Default for QuotaLimits {
    fn default() -> QuotaLimits {
        QuotaLimits {
            new_feeds_per_peer_per_hour: 1_000,
            unknown_feed_bytes_per_hour: 4 * 1024 * 1024,
            clock_entries_per_peer: 50_000,
            // Both clocks of a peer holding 25,000 feeds (40 bytes an
            // entry).
            peer_memory_bytes_per_peer: 2 * 1024 * 1024,
            peer_memory_total_bytes: 64 * 1024 * 1024,
            peer_memory_max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `peer_memory_max_age` is written in days in `config.json`.
mod days {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs() / 86_400)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let days = u64::deserialize(d)?;
        Ok(Duration::from_secs(days.saturating_mul(86_400)))
    }
}

/// Why a stranger's message or clock was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum QuotaError {
    /// The peer brought too many new feeds this hour.
    #[error(
        "this peer brought {0} new feeds within the hour (the quota for strangers; `quotas.new_feeds_per_peer_per_hour` in config.json)"
    )]
    NewFeeds(u32),
    /// A feed nobody here follows grew by too much this hour.
    #[error(
        "a feed nobody here follows grew by more than {0} bytes within the hour (`quotas.unknown_feed_bytes_per_hour` in config.json)"
    )]
    FeedBytes(u64),
    /// Too many strangers or feeds are tracked this hour already.
    #[error("too many strangers brought new feeds within the hour; try again later")]
    Busy,
    /// The peer's clock is bigger than a stranger's may be.
    #[error(
        "this peer's clock names more than {0} feeds (the quota for strangers; `quotas.clock_entries_per_peer` in config.json)"
    )]
    Clock(usize),
}

/// What one message asks of the quotas.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The stranger that sent it.
    pub peer: FeedId,
    /// Its feed.
    pub feed: FeedId,
    /// Whether the node holds nothing of the feed yet.
    pub new_feed: bool,
    /// Whether someone here follows the feed (then its size is not
    /// limited).
    pub followed: bool,
    /// Its encoded size.
    pub bytes: u64,
}

/// The counters of the current window.
#[derive(Debug)]
pub struct Quotas {
    limits: QuotaLimits,
    window_start_ms: i64,
    /// New feeds each stranger brought in this window.
    new_feeds: HashMap<FeedId, HashSet<FeedId>>,
    /// Bytes of each unknown feed taken from strangers in this window.
    feed_bytes: HashMap<FeedId, u64>,
    /// When replication memory was last trimmed.
    trimmed_ms: Option<i64>,
}

impl Quotas {
    /// Empty counters under `limits`.
    pub fn new(limits: QuotaLimits) -> Quotas {
        Quotas {
            limits,
            window_start_ms: i64::MIN,
            new_feeds: HashMap::new(),
            feed_bytes: HashMap::new(),
            trimmed_ms: None,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &QuotaLimits {
        &self.limits
    }

    /// Starts a new window when the current one is over.
    fn roll(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.window_start_ms) >= WINDOW_MS || now_ms < self.window_start_ms
        {
            self.window_start_ms = now_ms;
            self.new_feeds.clear();
            self.feed_bytes.clear();
        }
    }

    /// Whether a stranger's message may be stored; counts it if so.
    pub fn admit(&mut self, arrival: &Arrival, now_ms: i64) -> Result<(), QuotaError> {
        self.roll(now_ms);
        let limit = self.limits.new_feeds_per_peer_per_hour;
        let tracked_peers = self.new_feeds.len();
        let brought = self.new_feeds.get(&arrival.peer);
        let counted = brought.is_some_and(|feeds| feeds.contains(&arrival.feed));
        if arrival.new_feed && !counted {
            let count = brought.map_or(0, HashSet::len);
            if brought.is_none() && tracked_peers >= MAX_TRACKED_PEERS {
                return Err(QuotaError::Busy);
            }
            if count >= limit as usize {
                return Err(QuotaError::NewFeeds(limit));
            }
        }
        if !arrival.followed {
            let bytes_limit = self.limits.unknown_feed_bytes_per_hour;
            let taken = self.feed_bytes.get(&arrival.feed).copied();
            if taken.is_none() && self.feed_bytes.len() >= MAX_TRACKED_FEEDS {
                return Err(QuotaError::Busy);
            }
            let total = taken.unwrap_or(0).saturating_add(arrival.bytes);
            if total > bytes_limit {
                return Err(QuotaError::FeedBytes(bytes_limit));
            }
            self.feed_bytes.insert(arrival.feed, total);
        }
        if arrival.new_feed && !counted {
            self.new_feeds
                .entry(arrival.peer)
                .or_default()
                .insert(arrival.feed);
        }
        Ok(())
    }

    /// Whether a stranger's clock of `entries` entries is within bounds.
    pub fn check_clock(&self, entries: usize) -> Result<(), QuotaError> {
        let max = self.limits.clock_entries_per_peer;
        if entries > max {
            return Err(QuotaError::Clock(max));
        }
        Ok(())
    }

    /// Whether it is time to look for replication memory to forget (at
    /// most once a minute); notes that it was done if so.
    pub fn trim_due(&mut self, now_ms: i64) -> bool {
        let due = self
            .trimmed_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= TRIM_EVERY_MS || now_ms < t);
        if due {
            self.trimmed_ms = Some(now_ms);
        }
        due
    }

    /// Whether replication memory of `bytes` bytes may be kept for a peer.
    pub fn keeps_memory(&self, bytes: usize) -> bool {
        bytes as u64 <= self.limits.peer_memory_bytes_per_peer
    }
}

/// Replication memory kept for one peer: its size and when it was saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptMemory {
    /// The peer.
    pub peer: FeedId,
    /// Bytes.
    pub bytes: u64,
    /// When it was last saved (the peer's last session), ms.
    pub saved_ms: i64,
}

/// Which peers' replication memory to forget at `now_ms`: every one older
/// than the maximum age, every one bigger than the per-peer bound, then
/// the least recently saved until the rest fit in the total.
pub fn memory_to_forget(kept: &[KeptMemory], limits: &QuotaLimits, now_ms: i64) -> Vec<FeedId> {
    let max_age_ms = i64::try_from(limits.peer_memory_max_age.as_millis()).unwrap_or(i64::MAX);
    let mut forget = Vec::new();
    let mut rest: Vec<&KeptMemory> = Vec::with_capacity(kept.len());
    for m in kept {
        if now_ms.saturating_sub(m.saved_ms) > max_age_ms
            || m.bytes > limits.peer_memory_bytes_per_peer
        {
            forget.push(m.peer);
        } else {
            rest.push(m);
        }
    }
    // Newest first: keep while they fit.
    rest.sort_by(|a, b| b.saved_ms.cmp(&a.saved_ms).then(a.peer.0.cmp(&b.peer.0)));
    let mut total: u64 = 0;
    for m in rest {
        total = total.saturating_add(m.bytes);
        if total > limits.peer_memory_total_bytes {
            forget.push(m.peer);
        }
    }
    forget
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(n: u32) -> FeedId {
        FeedId(blake3::hash(&n.to_be_bytes()).into())
    }

    fn small() -> QuotaLimits {
        QuotaLimits {
            new_feeds_per_peer_per_hour: 3,
            unknown_feed_bytes_per_hour: 1_000,
            clock_entries_per_peer: 10,
            peer_memory_bytes_per_peer: 500,
            peer_memory_total_bytes: 1_000,
            peer_memory_max_age: Duration::from_secs(100),
        }
    }

    fn arrival(peer: u32, f: u32, new_feed: bool, followed: bool, bytes: u64) -> Arrival {
        Arrival {
            peer: feed(peer),
            feed: feed(f),
            new_feed,
            followed,
            bytes,
        }
    }

    #[test]
    fn new_feeds_per_stranger_are_counted_once_each_and_reset_hourly() {
        let mut q = Quotas::new(small());
        for f in 1..=3 {
            // Several messages of one new feed count once.
            q.admit(&arrival(1, f, true, true, 10), 0).unwrap();
            q.admit(&arrival(1, f, true, true, 10), 0).unwrap();
        }
        assert_eq!(
            q.admit(&arrival(1, 4, true, true, 10), 10),
            Err(QuotaError::NewFeeds(3))
        );
        // Feeds we hold already, and other peers, are not affected.
        q.admit(&arrival(1, 99, false, true, 10), 10).unwrap();
        q.admit(&arrival(2, 4, true, true, 10), 10).unwrap();
        // An hour later the stranger may bring more.
        q.admit(&arrival(1, 4, true, true, 10), WINDOW_MS).unwrap();
    }

    #[test]
    fn an_unknown_feed_grows_by_a_bounded_number_of_bytes_per_hour() {
        let mut q = Quotas::new(small());
        q.admit(&arrival(1, 5, true, false, 600), 0).unwrap();
        // From any stranger: the bound is the feed's.
        assert_eq!(
            q.admit(&arrival(2, 5, false, false, 600), 1),
            Err(QuotaError::FeedBytes(1_000))
        );
        q.admit(&arrival(2, 5, false, false, 400), 1).unwrap();
        // A followed feed is not limited.
        for _ in 0..10 {
            q.admit(&arrival(2, 6, false, true, 600), 1).unwrap();
        }
        q.admit(&arrival(2, 5, false, false, 600), WINDOW_MS + 1)
            .unwrap();
    }

    #[test]
    fn the_tables_are_bounded() {
        let mut q = Quotas::new(QuotaLimits::default());
        for p in 0..MAX_TRACKED_PEERS as u32 {
            q.admit(&arrival(p, 1_000_000 + p, true, true, 1), 0)
                .unwrap();
        }
        assert_eq!(
            q.admit(&arrival(9_999_999, 1, true, true, 1), 0),
            Err(QuotaError::Busy)
        );
        // A tracked stranger goes on; a feed we hold is no new feed.
        q.admit(&arrival(0, 7, true, true, 1), 0).unwrap();
        q.admit(&arrival(9_999_999, 7, false, true, 1), 0).unwrap();
    }

    #[test]
    fn clocks_and_memory_have_bounds() {
        let q = Quotas::new(small());
        assert_eq!(q.check_clock(10), Ok(()));
        assert_eq!(q.check_clock(11), Err(QuotaError::Clock(10)));
        assert!(q.keeps_memory(500));
        assert!(!q.keeps_memory(501));
    }

    #[test]
    fn memory_expires_and_its_total_is_bounded() {
        let limits = small();
        let m = |n: u32, bytes: u64, saved_ms: i64| KeptMemory {
            peer: feed(n),
            bytes,
            saved_ms,
        };
        let now = 1_000_000;
        let kept = [
            m(1, 400, now - 200_000), // older than 100 s
            m(2, 600, now),           // bigger than 500
            m(3, 400, now - 10),
            m(4, 400, now - 20),
            m(5, 400, now - 30), // 400 + 400 + 400 > 1,000: the oldest goes
        ];
        let mut gone = memory_to_forget(&kept, &limits, now);
        gone.sort_by_key(|f| f.0);
        let mut expected = vec![feed(1), feed(2), feed(5)];
        expected.sort_by_key(|f| f.0);
        assert_eq!(gone, expected);
        assert!(memory_to_forget(&kept[2..4], &limits, now).is_empty());
    }

    #[test]
    fn limits_read_from_json_in_days_and_partially() {
        let limits: QuotaLimits =
            serde_json::from_str(r#"{"new_feeds_per_peer_per_hour": 5, "peer_memory_max_age": 2}"#)
                .unwrap();
        assert_eq!(limits.new_feeds_per_peer_per_hour, 5);
        assert_eq!(limits.peer_memory_max_age, Duration::from_secs(2 * 86_400));
        assert_eq!(
            limits.clock_entries_per_peer,
            QuotaLimits::default().clock_entries_per_peer
        );
        assert!(serde_json::from_str::<QuotaLimits>(r#"{"no_such_key": 1}"#).is_err());
    }
}
