//! The peer book: every peer address this node knows (configured,
//! discovered on the LAN, or learned from an invite), with when it was
//! last seen, last synced, and how often in a row dialing it failed.
//!
//! Pure rules over [`PeerRecord`]s: how long to wait before the next dial
//! (exponential in the failures, so dead addresses are not hammered), when
//! to give up on an address, and which peers to prefer. The store keeps
//! the records; the node dials.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::feed::message::FeedId;

/// Where a peer address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerSource {
    /// `config.json` or `serve --peer`.
    Configured,
    /// A LAN announcement.
    Discovered,
    /// `potluck join`.
    Invite,
    /// It connected to us.
    Inbound,
    /// A hub told us a member can be dialed here (a port mapped on the
    /// member's router).
    Hub,
}

/// What the node knows about one peer address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// `host:port`.
    pub addr: String,
    /// The feed last reached there (or expected, when pinned).
    pub feed: Option<FeedId>,
    /// Where the address came from.
    pub source: PeerSource,
    /// Last time the peer was heard of (connected, or announced), ms.
    pub last_seen_ms: Option<i64>,
    /// Last time a session with it completed its handshake, ms.
    pub last_success_ms: Option<i64>,
    /// Dial failures since the last success.
    pub failures: u32,
}

/// First wait after a failure.
pub const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between dials of a failing address.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Failures in a row after which an address that has not worked for
/// [`GIVE_UP_AFTER_MS`] is no longer dialed (until it is seen again).
pub const GIVE_UP_FAILURES: u32 = 20;
/// See [`GIVE_UP_FAILURES`]: a week.
pub const GIVE_UP_AFTER_MS: i64 = 7 * 24 * 3600 * 1000;

impl PeerRecord {
    /// A new record.
    pub fn new(addr: String, feed: Option<FeedId>, source: PeerSource) -> PeerRecord {
        PeerRecord {
            addr,
            feed,
            source,
            last_seen_ms: None,
            last_success_ms: None,
            failures: 0,
        }
    }

    /// A dial failed.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// A session with `feed` was established at `now_ms`.
    pub fn succeeded(&mut self, feed: FeedId, now_ms: i64) {
        self.failures = 0;
        self.feed = Some(feed);
        self.last_seen_ms = Some(now_ms);
        self.last_success_ms = Some(now_ms);
    }

    /// The peer was heard of (an announcement) at `now_ms`: worth trying
    /// again even if it failed before.
    pub fn seen(&mut self, now_ms: i64) {
        self.last_seen_ms = Some(now_ms);
        self.failures = self.failures.min(GIVE_UP_FAILURES / 2);
    }

    /// How long to wait before dialing again: doubles with every failure
    /// in a row, up to [`MAX_BACKOFF`]. `jitter` in `[0, 1)` spreads
    /// reconnects of many nodes (±25 %).
    pub fn backoff(&self, jitter: f64) -> Duration {
        doubling(BASE_BACKOFF, MAX_BACKOFF, self.failures)
            .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// True when the address has failed so often, for so long, that
    /// dialing it is pointless until it shows up again.
    pub fn given_up(&self, now_ms: i64) -> bool {
        let recent = self
            .last_seen_ms
            .max(self.last_success_ms)
            .is_some_and(|t| now_ms.saturating_sub(t) < GIVE_UP_AFTER_MS);
        self.failures >= GIVE_UP_FAILURES && !recent
    }
}

/// `base` doubled once per failure in a row, up to `max`: the wait
/// before trying again (a dial here, a port mapping in
/// [`super::portmap`]).
pub fn doubling(base: Duration, max: Duration, failures: u32) -> Duration {
    base.saturating_mul(1u32 << failures.min(20)).min(max)
}

/// Orders records so that peers that worked most recently come first,
/// then the ones with fewest failures.
pub fn preferred_order(records: &mut [PeerRecord]) {
    records.sort_by(|a, b| {
        b.last_success_ms
            .cmp(&a.last_success_ms)
            .then(a.failures.cmp(&b.failures))
            .then(a.addr.cmp(&b.addr))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut r = PeerRecord::new("h:1".into(), None, PeerSource::Configured);
        assert_eq!(r.backoff(0.5), BASE_BACKOFF);
        r.failed();
        assert_eq!(r.backoff(0.5), BASE_BACKOFF * 2);
        for _ in 0..40 {
            r.failed();
        }
        assert_eq!(r.backoff(0.5), MAX_BACKOFF);
        assert!(r.backoff(0.0) < r.backoff(0.99));
        r.succeeded(FeedId([1; 32]), 10);
        assert_eq!(r.failures, 0);
        assert_eq!(r.backoff(0.5), BASE_BACKOFF);
    }

    #[test]
    fn dead_addresses_are_given_up_gradually() {
        let now = 100 * GIVE_UP_AFTER_MS;
        let mut r = PeerRecord::new("h:1".into(), None, PeerSource::Discovered);
        for _ in 0..GIVE_UP_FAILURES - 1 {
            r.failed();
        }
        assert!(!r.given_up(now), "not before the threshold");
        r.failed();
        assert!(r.given_up(now));
        // Seen again: back in the game, with a shorter backoff.
        r.seen(now);
        assert!(!r.given_up(now));
        // Worked recently: never given up, whatever the failures.
        let mut ok = PeerRecord::new("h:2".into(), None, PeerSource::Configured);
        ok.succeeded(FeedId([1; 32]), now - 1000);
        for _ in 0..50 {
            ok.failed();
        }
        assert!(!ok.given_up(now));
    }

    #[test]
    fn recently_working_peers_come_first() {
        let mut a = PeerRecord::new("a:1".into(), None, PeerSource::Configured);
        let mut b = PeerRecord::new("b:1".into(), None, PeerSource::Configured);
        let mut c = PeerRecord::new("c:1".into(), None, PeerSource::Configured);
        a.succeeded(FeedId([1; 32]), 10);
        b.succeeded(FeedId([2; 32]), 20);
        c.failed();
        let mut list = vec![c.clone(), a.clone(), b.clone()];
        preferred_order(&mut list);
        let order: Vec<_> = list.iter().map(|r| r.addr.as_str()).collect();
        assert_eq!(order, ["b:1", "a:1", "c:1"]);
    }
}
