//! Who may hold a connection to this node: sans-io bookkeeping of inbound
//! connections, so that strangers cannot starve the node of connections
//! (issue 14, defect 4). The node asks [`Connections`] before it spends
//! anything on a connection and tells it when one ends.
//!
//! - Connections still in the handshake and established ones have
//!   separate limits, so idle sockets cannot keep authenticated peers out,
//!   and the handshake has a short deadline (the node's `Timing`).
//! - One address holds at most [`Limits::per_address`] connections of
//!   either kind.
//! - When every established slot is taken, the peer that has been idle
//!   longest (nothing but pings) for at least [`Limits::evict_idle`] makes
//!   room for a new one; when nobody is that idle, the newcomer is told
//!   the node is busy. Peers that only ping thus cannot hold the node for
//!   good, and a stranger cannot push out peers that are exchanging data.
//! - [`RateLimitedLog`] keeps a flood of refusals from flooding the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The limits of one node.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Inbound connections still in the handshake.
    pub handshaking: usize,
    /// Inbound connections past the handshake.
    pub established: usize,
    /// Inbound connections (of both kinds) from one IP address.
    pub per_address: usize,
    /// How long an established peer must have sent nothing but pings
    /// before a newcomer may take its slot.
    pub evict_idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            handshaking: 32,
            established: 64,
            per_address: 8,
            evict_idle: Duration::from_secs(30),
        }
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many connections are in the handshake.
    Handshakes,
    /// This address holds too many connections.
    PerAddress,
    /// Every established slot is taken by a peer that is not idle.
    Full,
}

impl Refusal {
    /// A few words for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Handshakes => "too many connections in the handshake",
            Refusal::PerAddress => "too many connections from this address",
            Refusal::Full => "every connection slot is in use",
        }
    }
}

/// Names an established connection.
pub type ConnectionId = u64;

#[derive(Debug)]
struct Established {
    address: IpAddr,
    last_useful: Instant,
}

/// The inbound connections of a node.
#[derive(Debug, Default)]
pub struct Connections {
    limits: Limits,
    handshaking: usize,
    per_address: HashMap<IpAddr, usize>,
    established: HashMap<ConnectionId, Established>,
    next_id: ConnectionId,
}

impl Connections {
    /// No connections yet, under `limits`.
    pub fn new(limits: Limits) -> Connections {
        Connections {
            limits,
            ..Connections::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (a hub's own, `HubLimits::connections`): the
    /// connections already held stay, later ones are counted against the
    /// new limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// A connection from `address` was accepted: may it start the
    /// handshake? On `Ok`, [`Connections::handshake_ended`] must follow.
    pub fn begin_handshake(&mut self, address: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.handshaking >= self.limits.handshaking {
            return Err(Refusal::Handshakes);
        }
        let from_here = self.per_address.get(&address).copied().unwrap_or(0);
        if from_here >= self.limits.per_address {
            return Err(Refusal::PerAddress);
        }
        if self.established.len() >= self.limits.established && self.idlest(now).is_none() {
            // It could never become established: say so now.
            return Err(Refusal::Full);
        }
        self.handshaking += 1;
        *self.per_address.entry(address).or_insert(0) += 1;
        Ok(())
    }

    /// The handshake of a connection from `address` ended, successfully
    /// or not (its address slot stays taken if it becomes established).
    pub fn handshake_ended(&mut self, address: IpAddr, established: bool) {
        self.handshaking = self.handshaking.saturating_sub(1);
        if !established {
            self.release_address(address);
        }
    }

    /// A connection from `address` finished its handshake: its id, and the
    /// established connection to close to make room, if one must go. When
    /// every slot is taken by a peer that is not idle enough, `Err`: the
    /// new connection must close (its address slot is released).
    pub fn establish(
        &mut self,
        address: IpAddr,
        now: Instant,
    ) -> Result<(ConnectionId, Option<ConnectionId>), Refusal> {
        let evict = if self.established.len() >= self.limits.established {
            match self.idlest(now) {
                Some(id) => {
                    self.end(id);
                    Some(id)
                }
                None => {
                    self.release_address(address);
                    return Err(Refusal::Full);
                }
            }
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        self.established.insert(
            id,
            Established {
                address,
                last_useful: now,
            },
        );
        Ok((id, evict))
    }

    /// The connection sent something other than a ping.
    pub fn useful(&mut self, id: ConnectionId, now: Instant) {
        if let Some(e) = self.established.get_mut(&id) {
            e.last_useful = now;
        }
    }

    /// An established connection ended (also after it was evicted: then
    /// this does nothing).
    pub fn end(&mut self, id: ConnectionId) {
        if let Some(e) = self.established.remove(&id) {
            self.release_address(e.address);
        }
    }

    /// Connections in the handshake, and established ones.
    pub fn counts(&self) -> (usize, usize) {
        (self.handshaking, self.established.len())
    }

    /// The established connection idle longest, if idle long enough.
    fn idlest(&self, now: Instant) -> Option<ConnectionId> {
        self.established
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_useful) >= self.limits.evict_idle)
            .min_by_key(|(id, e)| (e.last_useful, **id))
            .map(|(id, _)| *id)
    }

    fn release_address(&mut self, address: IpAddr) {
        if let Some(n) = self.per_address.get_mut(&address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
    }
}

/// At most one log line per `every` for a recurring event; the lines in
/// between are counted and reported with the next one.
#[derive(Debug)]
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// One line per `every` at most.
    pub fn new(every: Duration) -> RateLimitedLog {
        RateLimitedLog {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now: `Some(n)` with the number of events not logged
    /// since the last line, or `None` to stay quiet (the event is counted).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn small() -> Limits {
        Limits {
            handshaking: 3,
            established: 2,
            per_address: 2,
            evict_idle: Duration::from_secs(30),
        }
    }

    #[test]
    fn handshakes_and_addresses_have_their_own_limits() {
        let now = Instant::now();
        let mut c = Connections::new(small());
        c.begin_handshake(ip(1), now).unwrap();
        c.begin_handshake(ip(1), now).unwrap();
        assert_eq!(c.begin_handshake(ip(1), now), Err(Refusal::PerAddress));
        c.begin_handshake(ip(2), now).unwrap();
        assert_eq!(c.begin_handshake(ip(3), now), Err(Refusal::Handshakes));
        // A failed handshake frees both its slots.
        c.handshake_ended(ip(1), false);
        c.begin_handshake(ip(1), now).unwrap();
        assert_eq!(c.counts(), (3, 0));
    }

    #[test]
    fn established_peers_do_not_count_against_handshakes() {
        let now = Instant::now();
        let mut c = Connections::new(small());
        for n in 1..=2 {
            c.begin_handshake(ip(n), now).unwrap();
            c.handshake_ended(ip(n), true);
            c.establish(ip(n), now).unwrap();
        }
        assert_eq!(c.counts(), (0, 2));
        // Full, and nobody idle: refused before any handshake work.
        assert_eq!(c.begin_handshake(ip(3), now), Err(Refusal::Full));
    }

    #[test]
    fn the_idlest_peer_makes_room_only_once_idle_long_enough() {
        let start = Instant::now();
        let mut c = Connections::new(small());
        let mut ids = Vec::new();
        for n in 1..=2 {
            c.begin_handshake(ip(n), start).unwrap();
            c.handshake_ended(ip(n), true);
            ids.push(c.establish(ip(n), start).unwrap().0);
        }
        let later = start + Duration::from_secs(31);
        // The second peer sent a message lately; the first only pings.
        c.useful(ids[1], later - Duration::from_secs(1));
        c.begin_handshake(ip(3), later).unwrap();
        c.handshake_ended(ip(3), true);
        let (new, evicted) = c.establish(ip(3), later).unwrap();
        assert_eq!(evicted, Some(ids[0]));
        assert_eq!(c.counts(), (0, 2));
        // The evicted connection's end changes nothing more.
        c.end(ids[0]);
        assert_eq!(c.counts(), (0, 2));
        // Nobody is idle now: the next one is refused, its address freed.
        assert_eq!(c.begin_handshake(ip(4), later), Err(Refusal::Full));
        c.end(new);
        c.begin_handshake(ip(4), later).unwrap();
    }

    #[test]
    fn a_flood_of_refusals_logs_one_line_per_period() {
        let start = Instant::now();
        let mut log = RateLimitedLog::new(Duration::from_secs(10));
        assert_eq!(log.allow(start), Some(0));
        for i in 1..1000u64 {
            assert_eq!(log.allow(start + Duration::from_millis(i)), None);
        }
        assert_eq!(log.allow(start + Duration::from_secs(11)), Some(999));
    }
}
