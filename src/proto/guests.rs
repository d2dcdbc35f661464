//! What guests answering from a browser may make a hub store (issue 21):
//! sans-io bookkeeping that a hub's public pages consult before they
//! take a browser's signed messages.
//!
//! A web guest is not a member and brings no node of its own: anyone can
//! make a browser key, so the hub bounds
//!
//! - [`GuestLimits::new_guests_per_ip_per_hour`]: feeds the hub did not
//!   hold before, per client IP address, per hour (a household behind one
//!   router shares it);
//! - [`GuestLimits::new_guests_per_hour`]: the same from all addresses
//!   together, so that many addresses cannot flood it either;
//! - [`GuestLimits::guest_messages`]: how long one guest's feed may grow
//!   through the pages (a name and answers need few messages).
//!
//! Counters live in fixed one-hour windows, like the stranger quotas of
//! [`super::quota`], and at most [`MAX_TRACKED_ADDRESSES`] addresses are
//! tracked per window, so the bookkeeping itself is bounded.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::quota::WINDOW_MS;

/// Client addresses tracked within one window; past this, new guests from
/// addresses not yet tracked are refused until the window ends.
pub const MAX_TRACKED_ADDRESSES: usize = 16_384;

/// The web guests' limits; `config.json`'s `"web_answers"` object sets any
/// of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuestLimits {
    /// Whether the public pages take answers at all (an event's organizer
    /// can also close its own event to them).
    pub enabled: bool,
    /// New browser identities one IP address may bring per hour.
    pub new_guests_per_ip_per_hour: u32,
    /// New browser identities all addresses together may bring per hour.
    pub new_guests_per_hour: u32,
    /// Most messages a guest's feed may hold when it arrives through the
    /// pages: past it the hub takes no more of that feed from a browser.
    pub guest_messages: u64,
}

impl Default for GuestLimits {
    fn default() -> GuestLimits {
        GuestLimits {
            enabled: true,
            new_guests_per_ip_per_hour: 10,
            new_guests_per_hour: 1_000,
            // A name and an answer per event, changed a few times, for a
            // few dozen events.
            guest_messages: 200,
        }
    }
}

/// Why a browser's messages were refused by the guests' limits.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GuestLimitError {
    /// Too many new guests from this address this hour.
    #[error(
        "too many new answers from your network address within the hour (at most {0}); try again later"
    )]
    PerAddress(u32),
    /// Too many new guests from everyone this hour.
    #[error("this hub took as many new guests as it takes within the hour ({0}); try again later")]
    Total(u32),
    /// Too many addresses tracked this hour already.
    #[error("this hub is busy with new guests; try again later")]
    Busy,
    /// The guest's feed is as long as the pages let it grow.
    #[error("this browser's feed reached the {0} messages a hub takes from a browser")]
    FeedFull(u64),
}

/// The counters of the current window.
#[derive(Debug)]
pub struct GuestQuota {
    limits: GuestLimits,
    window_start_ms: i64,
    per_address: HashMap<IpAddr, u32>,
    total: u32,
}

impl GuestQuota {
    /// Empty counters under `limits`.
    pub fn new(limits: GuestLimits) -> GuestQuota {
        GuestQuota {
            limits,
            window_start_ms: i64::MIN,
            per_address: HashMap::new(),
            total: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &GuestLimits {
        &self.limits
    }

    /// Starts a new window when the current one is over.
    fn roll(&mut self, now_ms: i64) {
        if now_ms.saturating_sub(self.window_start_ms) >= WINDOW_MS || now_ms < self.window_start_ms
        {
            self.window_start_ms = now_ms;
            self.per_address.clear();
            self.total = 0;
        }
    }

    /// Whether a browser at `address` may bring a feed the hub does not
    /// hold (`new_guest`) up to sequence `last_sequence`. Checks only; a
    /// feed that was then stored is counted by [`GuestQuota::count`], so
    /// that a refused submission costs the guest nothing.
    pub fn check(
        &mut self,
        address: IpAddr,
        new_guest: bool,
        last_sequence: u64,
        now_ms: i64,
    ) -> Result<(), GuestLimitError> {
        if last_sequence > self.limits.guest_messages {
            return Err(GuestLimitError::FeedFull(self.limits.guest_messages));
        }
        if !new_guest {
            return Ok(());
        }
        self.roll(now_ms);
        if self.total >= self.limits.new_guests_per_hour {
            return Err(GuestLimitError::Total(self.limits.new_guests_per_hour));
        }
        match self.per_address.get(&address) {
            Some(&n) if n >= self.limits.new_guests_per_ip_per_hour => Err(
                GuestLimitError::PerAddress(self.limits.new_guests_per_ip_per_hour),
            ),
            Some(_) => Ok(()),
            None if self.per_address.len() >= MAX_TRACKED_ADDRESSES => Err(GuestLimitError::Busy),
            None if self.limits.new_guests_per_ip_per_hour == 0 => {
                Err(GuestLimitError::PerAddress(0))
            }
            None => Ok(()),
        }
    }

    /// Takes back a [`GuestQuota::count`] made at `counted_ms` for a feed
    /// that was not stored after all (nothing if a new window began
    /// since: its counters never held it).
    pub fn uncount(&mut self, address: IpAddr, counted_ms: i64) {
        if counted_ms < self.window_start_ms {
            return;
        }
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_address.get_mut(&address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
    }

    /// Counts a new guest's feed, stored after [`GuestQuota::check`].
    pub fn count(&mut self, address: IpAddr, now_ms: i64) {
        self.roll(now_ms);
        self.total = self.total.saturating_add(1);
        let n = self.per_address.entry(address).or_insert(0);
        *n = n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_ip: u32, total: u32) -> GuestQuota {
        GuestQuota::new(GuestLimits {
            new_guests_per_ip_per_hour: per_ip,
            new_guests_per_hour: total,
            guest_messages: 5,
            ..GuestLimits::default()
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn new_guests_are_bounded_per_address_and_in_total() {
        let mut q = quota(2, 3);
        for _ in 0..2 {
            assert_eq!(q.check(A, true, 2, 0), Ok(()));
            q.count(A, 0);
        }
        assert_eq!(q.check(A, true, 2, 10), Err(GuestLimitError::PerAddress(2)));
        // A guest the hub holds already is no new one.
        assert_eq!(q.check(A, false, 3, 10), Ok(()));
        assert_eq!(q.check(B, true, 2, 10), Ok(()));
        q.count(B, 10);
        assert_eq!(q.check(B, true, 2, 10), Err(GuestLimitError::Total(3)));
        // The next hour starts again.
        assert_eq!(q.check(A, true, 2, WINDOW_MS), Ok(()));
    }

    #[test]
    fn a_guest_feed_is_bounded() {
        let mut q = quota(2, 3);
        assert_eq!(q.check(A, false, 5, 0), Ok(()));
        assert_eq!(q.check(A, false, 6, 0), Err(GuestLimitError::FeedFull(5)));
    }

    #[test]
    fn a_count_taken_back_frees_its_place_in_its_window_only() {
        let mut q = quota(1, 10);
        assert_eq!(q.check(A, true, 2, 0), Ok(()));
        q.count(A, 0);
        assert_eq!(q.check(A, true, 2, 5), Err(GuestLimitError::PerAddress(1)));
        q.uncount(A, 0);
        assert_eq!(q.check(A, true, 2, 5), Ok(()));
        q.count(A, 5);
        // Counted in a window that is over: the new one never held it.
        assert_eq!(q.check(A, true, 2, WINDOW_MS + 5), Ok(()));
        q.count(A, WINDOW_MS + 5);
        q.uncount(A, 5);
        assert_eq!(
            q.check(A, true, 2, WINDOW_MS + 6),
            Err(GuestLimitError::PerAddress(1))
        );
    }

    #[test]
    fn a_refused_check_costs_nothing() {
        let mut q = quota(1, 10);
        assert_eq!(q.check(A, true, 9, 0), Err(GuestLimitError::FeedFull(5)));
        assert_eq!(q.check(A, true, 2, 0), Ok(()));
    }
}
