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
//! - A hub faces the internet (issue 20): some handshake slots are
//!   reserved for *known* addresses, ones a trusted peer authenticated
//!   from lately ([`KnownAddresses`], a bounded LRU), and the addresses
//!   of one subnet that are not known share [`Limits::per_subnet`] slots.
//!   A flood of unfinished handshakes from a few hundred addresses thus
//!   cannot keep a member out, and a flood from one provider's range
//!   cannot keep out anyone else either.
//! - [`RateLimitedLog`] keeps a flood of refusals from flooding the log.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The limits of one node.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Inbound connections still in the handshake.
    pub handshaking: usize,
    /// Of [`Limits::handshaking`], the slots only known addresses may
    /// take (addresses unknown share the rest).
    pub reserved: usize,
    /// Handshakes one known address holds as known at most; more from it
    /// count as unknown (so one shared address, say a NAT a member once
    /// used, cannot take the whole reserve).
    pub known_per_address: usize,
    /// Handshakes from the unknown addresses of one subnet at once.
    pub per_subnet: usize,
    /// The prefix length of an IPv4 subnet (24: a /24).
    pub subnet_v4: u8,
    /// The prefix length of an IPv6 subnet (48: a site's /48).
    pub subnet_v6: u8,
    /// Known addresses remembered at most (the least recently
    /// authenticated goes first).
    pub known_addresses: usize,
    /// How long an address stays known after a trusted peer last
    /// authenticated from it.
    pub known_for: Duration,
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
            reserved: 8,
            known_per_address: 2,
            per_subnet: 8,
            subnet_v4: 24,
            subnet_v6: 48,
            known_addresses: 4096,
            known_for: Duration::from_secs(30 * 24 * 3600),
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
    /// The unknown addresses of this subnet hold too many handshakes.
    Subnet,
    /// Every established slot is taken by a peer that is not idle.
    Full,
}

impl Refusal {
    /// A few words for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Handshakes => "too many connections in the handshake",
            Refusal::PerAddress => "too many connections from this address",
            Refusal::Subnet => "too many handshakes from this subnet",
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

/// One connection in the handshake: known (a reserved slot may be its)
/// or the subnet it counts against.
#[derive(Clone, Copy, Debug)]
enum Shaking {
    Known,
    Unknown(IpAddr),
}

/// The inbound connections of a node.
#[derive(Debug)]
pub struct Connections {
    limits: Limits,
    /// Connections in the handshake, by their remote socket address (one
    /// TCP connection each).
    handshaking: HashMap<SocketAddr, Shaking>,
    /// Handshakes of unknown addresses, per subnet.
    per_subnet: HashMap<IpAddr, usize>,
    known: KnownAddresses,
    per_address: HashMap<IpAddr, usize>,
    established: HashMap<ConnectionId, Established>,
    next_id: ConnectionId,
}

impl Connections {
    /// No connections yet, under `limits`.
    pub fn new(limits: Limits) -> Connections {
        Connections {
            handshaking: HashMap::new(),
            per_subnet: HashMap::new(),
            known: KnownAddresses::new(limits.known_addresses, limits.known_for),
            per_address: HashMap::new(),
            established: HashMap::new(),
            next_id: 0,
            limits,
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

    /// A connection from `remote` was accepted: may it start the
    /// handshake? On `Ok`, [`Connections::handshake_ended`] must follow.
    /// A known address may take any free slot; an unknown one only those
    /// not reserved, within its subnet's share.
    pub fn begin_handshake(&mut self, remote: SocketAddr, now: Instant) -> Result<(), Refusal> {
        let address = remote.ip();
        if self.handshaking.len() >= self.limits.handshaking {
            return Err(Refusal::Handshakes);
        }
        let from_here = self.per_address.get(&address).copied().unwrap_or(0);
        // The same socket address twice at once cannot happen with TCP;
        // refused rather than counted twice.
        if from_here >= self.limits.per_address || self.handshaking.contains_key(&remote) {
            return Err(Refusal::PerAddress);
        }
        let shaking = if self.known.contains(address, now)
            && self.known_handshakes(address) < self.limits.known_per_address
        {
            Shaking::Known
        } else {
            let unknown = self.handshaking.len() - self.known_handshakes_all();
            if unknown >= self.limits.handshaking.saturating_sub(self.limits.reserved) {
                return Err(Refusal::Handshakes);
            }
            let subnet = subnet(address, &self.limits);
            if self.per_subnet.get(&subnet).copied().unwrap_or(0) >= self.limits.per_subnet {
                return Err(Refusal::Subnet);
            }
            Shaking::Unknown(subnet)
        };
        if self.established.len() >= self.limits.established && self.idlest(now).is_none() {
            // It could never become established: say so now.
            return Err(Refusal::Full);
        }
        if let Shaking::Unknown(subnet) = shaking {
            *self.per_subnet.entry(subnet).or_insert(0) += 1;
        }
        self.handshaking.insert(remote, shaking);
        *self.per_address.entry(address).or_insert(0) += 1;
        Ok(())
    }

    /// The handshake of the connection from `remote` ended, successfully
    /// or not (its address slot stays taken if it becomes established).
    pub fn handshake_ended(&mut self, remote: SocketAddr, established: bool) {
        let Some(shaking) = self.handshaking.remove(&remote) else {
            return;
        };
        if let Shaking::Unknown(subnet) = shaking
            && let Some(n) = self.per_subnet.get_mut(&subnet)
        {
            *n -= 1;
            if *n == 0 {
                self.per_subnet.remove(&subnet);
            }
        }
        if !established {
            self.release_address(remote.ip());
        }
    }

    /// A trusted peer authenticated from `address`: from now on it is
    /// known, and may take a reserved handshake slot.
    pub fn remember_known(&mut self, address: IpAddr, now: Instant) {
        self.known.remember(address, now);
    }

    /// Handshakes `address` holds as known.
    fn known_handshakes(&self, address: IpAddr) -> usize {
        self.handshaking
            .iter()
            .filter(|(r, s)| matches!(s, Shaking::Known) && r.ip() == address)
            .count()
    }

    /// Handshakes held as known, from any address.
    fn known_handshakes_all(&self) -> usize {
        self.handshaking
            .values()
            .filter(|s| matches!(s, Shaking::Known))
            .count()
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
        (self.handshaking.len(), self.established.len())
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

/// The subnet `address` is in under `limits` (its first `subnet_v4` or
/// `subnet_v6` bits; an IPv4-mapped IPv6 address counts as IPv4).
fn subnet(address: IpAddr, limits: &Limits) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(limits.subnet_v4.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::from((u32::from(a) & mask).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let bits = u32::from(limits.subnet_v6.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::from((u128::from(a) & mask).to_be_bytes())
        }
    }
}

/// Addresses trusted peers authenticated from lately: at most `capacity`,
/// the least recently authenticated forgotten first, each for `keep`
/// after its last authentication. Lost when the node stops.
#[derive(Debug, Default)]
pub struct KnownAddresses {
    capacity: usize,
    keep: Duration,
    last: HashMap<IpAddr, Instant>,
    /// The same entries, oldest first.
    order: BTreeSet<(Instant, IpAddr)>,
}

impl KnownAddresses {
    /// None yet; at most `capacity`, each kept for `keep`.
    pub fn new(capacity: usize, keep: Duration) -> KnownAddresses {
        KnownAddresses {
            capacity,
            keep,
            ..KnownAddresses::default()
        }
    }

    /// A trusted peer authenticated from `address` at `now`.
    pub fn remember(&mut self, address: IpAddr, now: Instant) {
        let address = address.to_canonical();
        if let Some(before) = self.last.insert(address, now) {
            self.order.remove(&(before, address));
        }
        self.order.insert((now, address));
        while self.last.len() > self.capacity
            || self
                .order
                .first()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= self.keep)
        {
            let Some((_, gone)) = self.order.pop_first() else {
                break;
            };
            self.last.remove(&gone);
        }
    }

    /// Whether `address` is known at `now`.
    pub fn contains(&self, address: IpAddr, now: Instant) -> bool {
        self.last
            .get(&address.to_canonical())
            .is_some_and(|t| now.saturating_duration_since(*t) < self.keep)
    }

    /// Addresses remembered (some perhaps expired, until the next
    /// [`KnownAddresses::remember`]).
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
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

    /// The `port`-th connection from 192.0.2.`n`.
    fn at(n: u8, port: u16) -> SocketAddr {
        SocketAddr::new(ip(n), port)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    /// Small limits, without a reserve or a subnet rule (a /32 subnet is
    /// one address), for the rules that predate them.
    fn small() -> Limits {
        Limits {
            handshaking: 3,
            reserved: 0,
            per_subnet: 3,
            subnet_v4: 32,
            established: 2,
            per_address: 2,
            evict_idle: Duration::from_secs(30),
            ..Limits::default()
        }
    }

    #[test]
    fn handshakes_and_addresses_have_their_own_limits() {
        let now = Instant::now();
        let mut c = Connections::new(small());
        c.begin_handshake(at(1, 1), now).unwrap();
        c.begin_handshake(at(1, 2), now).unwrap();
        assert_eq!(c.begin_handshake(at(1, 3), now), Err(Refusal::PerAddress));
        c.begin_handshake(at(2, 1), now).unwrap();
        assert_eq!(c.begin_handshake(at(3, 1), now), Err(Refusal::Handshakes));
        // A failed handshake frees both its slots.
        c.handshake_ended(at(1, 1), false);
        c.begin_handshake(at(1, 4), now).unwrap();
        assert_eq!(c.counts(), (3, 0));
    }

    #[test]
    fn established_peers_do_not_count_against_handshakes() {
        let now = Instant::now();
        let mut c = Connections::new(small());
        for n in 1..=2 {
            c.begin_handshake(at(n, 1), now).unwrap();
            c.handshake_ended(at(n, 1), true);
            c.establish(ip(n), now).unwrap();
        }
        assert_eq!(c.counts(), (0, 2));
        // Full, and nobody idle: refused before any handshake work.
        assert_eq!(c.begin_handshake(at(3, 1), now), Err(Refusal::Full));
    }

    #[test]
    fn the_idlest_peer_makes_room_only_once_idle_long_enough() {
        let start = Instant::now();
        let mut c = Connections::new(small());
        let mut ids = Vec::new();
        for n in 1..=2 {
            c.begin_handshake(at(n, 1), start).unwrap();
            c.handshake_ended(at(n, 1), true);
            ids.push(c.establish(ip(n), start).unwrap().0);
        }
        let later = start + Duration::from_secs(31);
        // The second peer sent a message lately; the first only pings.
        c.useful(ids[1], later - Duration::from_secs(1));
        c.begin_handshake(at(3, 1), later).unwrap();
        c.handshake_ended(at(3, 1), true);
        let (new, evicted) = c.establish(ip(3), later).unwrap();
        assert_eq!(evicted, Some(ids[0]));
        assert_eq!(c.counts(), (0, 2));
        // The evicted connection's end changes nothing more.
        c.end(ids[0]);
        assert_eq!(c.counts(), (0, 2));
        // Nobody is idle now: the next one is refused, its address freed.
        assert_eq!(c.begin_handshake(at(4, 1), later), Err(Refusal::Full));
        c.end(new);
        c.begin_handshake(at(4, 1), later).unwrap();
    }

    /// Four handshake slots, two of them reserved; no subnet rule.
    fn reserving() -> Limits {
        Limits {
            handshaking: 4,
            reserved: 2,
            known_per_address: 2,
            subnet_v4: 32,
            ..Limits::default()
        }
    }

    #[test]
    fn only_known_addresses_take_the_reserved_slots() {
        let now = Instant::now();
        let mut c = Connections::new(reserving());
        c.remember_known(ip(9), now);
        // Unknown addresses fill the slots not reserved, and no more.
        c.begin_handshake(at(1, 1), now).unwrap();
        c.begin_handshake(at(2, 1), now).unwrap();
        assert_eq!(c.begin_handshake(at(3, 1), now), Err(Refusal::Handshakes));
        // The known address gets in, twice as known; a third handshake
        // from it counts as unknown, and there is no room for that.
        c.begin_handshake(at(9, 1), now).unwrap();
        c.begin_handshake(at(9, 2), now).unwrap();
        assert_eq!(c.begin_handshake(at(9, 3), now), Err(Refusal::Handshakes));
        assert_eq!(c.counts(), (4, 0));
        // Once an unknown handshake ends, an unknown slot is free again
        // (for the known address's third one as well).
        c.handshake_ended(at(1, 1), false);
        c.begin_handshake(at(9, 3), now).unwrap();
        assert_eq!(c.begin_handshake(at(3, 1), now), Err(Refusal::Handshakes));
        // A known address may use free slots that are not reserved.
        let mut c = Connections::new(reserving());
        c.remember_known(ip(9), now);
        c.begin_handshake(at(9, 1), now).unwrap();
        c.begin_handshake(at(9, 2), now).unwrap();
        c.begin_handshake(at(1, 1), now).unwrap();
        c.begin_handshake(at(2, 1), now).unwrap();
        assert_eq!(c.counts(), (4, 0));
    }

    #[test]
    fn unknown_addresses_of_one_subnet_share_a_few_slots() {
        let now = Instant::now();
        let limits = Limits {
            per_subnet: 2,
            ..Limits::default()
        };
        let mut c = Connections::new(limits.clone());
        c.begin_handshake(at(1, 1), now).unwrap();
        c.begin_handshake(at(2, 1), now).unwrap();
        assert_eq!(c.begin_handshake(at(3, 1), now), Err(Refusal::Subnet));
        // Another /24 has its own share; a known address of the full one
        // is not held to it.
        let other = SocketAddr::from(([198, 51, 100, 1], 1));
        c.begin_handshake(other, now).unwrap();
        c.remember_known(ip(4), now);
        c.begin_handshake(at(4, 1), now).unwrap();
        // The share frees as handshakes end.
        c.handshake_ended(at(1, 1), true);
        c.begin_handshake(at(3, 1), now).unwrap();
        assert_eq!(c.begin_handshake(at(5, 1), now), Err(Refusal::Subnet));
        // IPv6: a /48 is one subnet; an IPv4-mapped address counts as
        // IPv4 (its /24 is the full one).
        let v6 = |text: &str| SocketAddr::new(text.parse().unwrap(), 1);
        c.begin_handshake(v6("2001:db8:1::1"), now).unwrap();
        c.begin_handshake(v6("2001:db8:1:ffff::2"), now).unwrap();
        assert_eq!(
            c.begin_handshake(v6("2001:db8:1:1::3"), now),
            Err(Refusal::Subnet)
        );
        c.begin_handshake(v6("2001:db8:2::1"), now).unwrap();
        assert_eq!(
            c.begin_handshake(v6("::ffff:192.0.2.77"), now),
            Err(Refusal::Subnet)
        );
        // With /32 subnets (as a test on 127.0.0.0/8 might want), each
        // address is its own subnet.
        let mut c = Connections::new(Limits {
            subnet_v4: 32,
            ..limits
        });
        for n in 1..=5 {
            c.begin_handshake(at(n, 1), now).unwrap();
        }
    }

    #[test]
    fn known_addresses_are_bounded_and_expire() {
        let start = Instant::now();
        let day = Duration::from_secs(24 * 3600);
        let mut known = KnownAddresses::new(2, 30 * day);
        known.remember(ip(1), start);
        known.remember(ip(2), start + day);
        // Authenticating again makes 1 the most recent: 2 goes first.
        known.remember(ip(1), start + 2 * day);
        known.remember(ip(3), start + 3 * day);
        let now = start + 3 * day;
        assert!(known.contains(ip(1), now));
        assert!(!known.contains(ip(2), now));
        assert!(known.contains(ip(3), now));
        assert_eq!(known.len(), 2);
        // IPv4-mapped is the same address.
        let mapped: IpAddr = "::ffff:192.0.2.3".parse().unwrap();
        assert!(known.contains(mapped, now));
        // Known for 30 days after the last authentication.
        let later = start + 2 * day + 30 * day;
        assert!(!known.contains(ip(1), later));
        assert!(known.contains(ip(3), later));
        // Expired entries go at the next remember.
        known.remember(ip(4), later);
        assert_eq!(known.len(), 2);
        // A node's limits give it a bounded set.
        let mut c = Connections::new(Limits {
            known_addresses: 3,
            ..Limits::default()
        });
        for n in 1..=10 {
            c.remember_known(ip(n), start);
        }
        assert_eq!(c.known.len(), 3);
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
