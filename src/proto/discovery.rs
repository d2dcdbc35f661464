//! LAN discovery: nodes announce themselves on the local network and find
//! each other with no configuration.
//!
//! An announcement is readable only by nodes with the network key, and is
//! signed by the announcing node, so a listener without the key learns no
//! identities (the old Scuttlebutt broadcast sent public keys in clear),
//! and a member of the network cannot pass itself off as someone else.
//!
//! ```text
//! packet    = version (u8 = 1) ‖ nonce (12 bytes) ‖ ChaCha20-Poly1305(key, nonce, payload)
//! key       = BLAKE3 derive_key("potluck lan discovery v1", network key)
//! payload   = feed (32) ‖ port (u16 BE) ‖ timestamp ms (i64 BE) ‖ random (16) ‖ signature (64)
//! signature = ed25519 over "potluck-lan-announce-v1:" ‖ feed ‖ port ‖ timestamp ‖ random
//! ```
//!
//! A receiver drops a packet that does not decrypt, whose signature fails,
//! whose timestamp is more than a minute from its own clock, or whose
//! `random` it has already seen from that feed (a replay). This module is
//! sans-io; `node.rs` sends and receives the datagrams.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signature, Signer, SigningKey};
use thiserror::Error;

use crate::feed::message::FeedId;
use crate::proto::handshake::NetworkKey;
use crate::proto::peerbook::{PeerRecord, PeerSource};

/// Default UDP port for announcements.
pub const DISCOVERY_PORT: u16 = 7644;
/// Default destination: the local network's broadcast address.
pub const DEFAULT_TARGET: &str = "255.255.255.255:7644";
/// Seconds between announcements.
pub const ANNOUNCE_EVERY_SECS: u64 = 5;
/// How far an announcement's timestamp may be from our clock.
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;
/// Largest datagram read.
pub const MAX_PACKET: usize = 512;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 32 + 2 + 8 + 16 + 64;
const PACKET_LEN: usize = 1 + 12 + PAYLOAD_LEN + 16;
const KEY_CONTEXT: &str = "potluck lan discovery v1";
const SIGN_DOMAIN: &[u8] = b"potluck-lan-announce-v1:";
/// Announcements remembered per feed, and feeds remembered, within the
/// replay window (an honest node sends 12 a minute).
const SEEN_PER_FEED: usize = 64;
const SEEN_FEEDS: usize = 1024;

/// A node saying where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// Who announces.
    pub feed: FeedId,
    /// The TCP port it listens on (the address is the packet's source).
    pub port: u16,
    /// When it was sent (sender's clock), ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// Fresh randomness, to recognise replays.
    pub random: [u8; 16],
}

/// Why a datagram was dropped.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Wrong size or version: not an announcement of ours.
    #[error("not a potluck announcement")]
    NotAnnouncement,
    /// Does not decrypt: another network, or tampered.
    #[error("announcement for another network, or damaged")]
    OtherNetwork,
    /// The signature does not match the feed.
    #[error("announcement with a forged signature")]
    Forged,
    /// The timestamp is too far from our clock.
    #[error("announcement too old or from the future")]
    Stale,
    /// Already seen.
    #[error("replayed announcement")]
    Replayed,
    /// Too many announcements within the replay window to track more.
    #[error("too many recent announcements; dropping new ones")]
    Busy,
}

fn cipher(network: &NetworkKey) -> ChaCha20Poly1305 {
    let key = blake3::derive_key(KEY_CONTEXT, &network.0);
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

fn signed_part(a: &Announcement) -> Vec<u8> {
    let mut v = Vec::with_capacity(SIGN_DOMAIN.len() + 58);
    v.extend_from_slice(SIGN_DOMAIN);
    v.extend_from_slice(&a.feed.0);
    v.extend_from_slice(&a.port.to_be_bytes());
    v.extend_from_slice(&a.timestamp_ms.to_be_bytes());
    v.extend_from_slice(&a.random);
    v
}

/// Builds the datagram for an announcement by `key`.
pub fn seal(
    key: &SigningKey,
    network: &NetworkKey,
    port: u16,
    timestamp_ms: i64,
    random: [u8; 16],
    nonce: [u8; 12],
) -> Vec<u8> {
    let announcement = Announcement {
        feed: FeedId(key.verifying_key().to_bytes()),
        port,
        timestamp_ms,
        random,
    };
    let signed = signed_part(&announcement);
    let signature = key.sign(&signed);
    let mut payload = signed[SIGN_DOMAIN.len()..].to_vec();
    payload.extend_from_slice(&signature.to_bytes());
    // Encrypting a 122-byte payload with a fresh nonce cannot fail.
    let sealed = cipher(network)
        .encrypt(Nonce::from_slice(&nonce), payload.as_slice())
        .unwrap_or_default();
    let mut packet = Vec::with_capacity(PACKET_LEN);
    packet.push(VERSION);
    packet.extend_from_slice(&nonce);
    packet.extend_from_slice(&sealed);
    packet
}

/// Decrypts and verifies a datagram (no freshness check: see [`Recent`]).
pub fn open(packet: &[u8], network: &NetworkKey) -> Result<Announcement, DiscoveryError> {
    if packet.len() != PACKET_LEN || packet[0] != VERSION {
        return Err(DiscoveryError::NotAnnouncement);
    }
    let payload = cipher(network)
        .decrypt(Nonce::from_slice(&packet[1..13]), &packet[13..])
        .map_err(|_| DiscoveryError::OtherNetwork)?;
    if payload.len() != PAYLOAD_LEN {
        return Err(DiscoveryError::NotAnnouncement);
    }
    let take = |from: usize, len: usize| &payload[from..from + len];
    let announcement = Announcement {
        feed: FeedId(
            take(0, 32)
                .try_into()
                .map_err(|_| DiscoveryError::NotAnnouncement)?,
        ),
        port: u16::from_be_bytes(
            take(32, 2)
                .try_into()
                .map_err(|_| DiscoveryError::NotAnnouncement)?,
        ),
        timestamp_ms: i64::from_be_bytes(
            take(34, 8)
                .try_into()
                .map_err(|_| DiscoveryError::NotAnnouncement)?,
        ),
        random: take(42, 16)
            .try_into()
            .map_err(|_| DiscoveryError::NotAnnouncement)?,
    };
    let signature = Signature::from_bytes(
        take(58, 64)
            .try_into()
            .map_err(|_| DiscoveryError::NotAnnouncement)?,
    );
    let key = announcement
        .feed
        .verifying_key()
        .map_err(|_| DiscoveryError::Forged)?;
    key.verify_strict(&signed_part(&announcement), &signature)
        .map_err(|_| DiscoveryError::Forged)?;
    Ok(announcement)
}

/// Remembers recent announcements, to drop stale ones and replays.
///
/// An announcement can only be replayed while its timestamp is within
/// [`MAX_CLOCK_SKEW_MS`] of our clock, so each `random` is kept exactly
/// that long. When the table is full of live entries (a flood of fresh
/// identities), new ones are refused rather than old ones forgotten:
/// forgetting would re-open the replay window.
#[derive(Default)]
pub struct Recent {
    seen: HashMap<FeedId, VecDeque<([u8; 16], i64)>>,
}

impl Recent {
    /// Checks freshness and records the announcement.
    pub fn accept(&mut self, a: &Announcement, now_ms: i64) -> Result<(), DiscoveryError> {
        if now_ms.saturating_sub(a.timestamp_ms).abs() > MAX_CLOCK_SKEW_MS {
            return Err(DiscoveryError::Stale);
        }
        if !self.seen.contains_key(&a.feed) && self.seen.len() >= SEEN_FEEDS {
            self.forget_expired(now_ms);
            if self.seen.len() >= SEEN_FEEDS {
                return Err(DiscoveryError::Busy);
            }
        }
        let entries = self.seen.entry(a.feed).or_default();
        entries.retain(|(_, ts)| now_ms.saturating_sub(*ts) <= MAX_CLOCK_SKEW_MS);
        if entries.iter().any(|(r, _)| *r == a.random) {
            return Err(DiscoveryError::Replayed);
        }
        if entries.len() >= SEEN_PER_FEED {
            // More announcements in a minute than an honest node sends.
            return Err(DiscoveryError::Busy);
        }
        entries.push_back((a.random, a.timestamp_ms));
        Ok(())
    }

    /// Drops entries that can no longer be replayed.
    fn forget_expired(&mut self, now_ms: i64) {
        self.seen.retain(|_, entries| {
            entries.retain(|(_, ts)| now_ms.saturating_sub(*ts) <= MAX_CLOCK_SKEW_MS);
            !entries.is_empty()
        });
    }
}

/// Where discovery reaches: the whole LAN, or this machine only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Listen on every interface, announce to the LAN's broadcast
    /// address, dial what is heard from anywhere.
    Lan,
    /// The node listens on this loopback address only: discovery listens
    /// on loopback, announces to `127.255.255.255`, and hears (so dials)
    /// only loopback sources. Announcing a port that other machines cannot
    /// reach, or dialing their addresses, would only leak who is here.
    Loopback(Ipv4Addr),
}

impl Reach {
    /// The reach of a node listening on `listen`; `None` when discovery
    /// cannot work there: an IPv6 loopback address (IPv6 has no
    /// broadcast, and an announcement sent over IPv4 would name an
    /// address the node does not listen on).
    pub fn for_listen(listen: IpAddr) -> Option<Reach> {
        match listen {
            IpAddr::V4(ip) if ip.is_loopback() => Some(Reach::Loopback(ip)),
            IpAddr::V6(ip) if ip.is_loopback() => None,
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) if v4.is_loopback() => Some(Reach::Loopback(v4)),
                _ => Some(Reach::Lan),
            },
            IpAddr::V4(_) => Some(Reach::Lan),
        }
    }

    /// The local addresses to receive announcements on: every interface;
    /// or, on loopback, the node's own address (which announcements are
    /// sent from, and which hears datagrams sent to it directly) and the
    /// loopback broadcast address (which hears the other local nodes).
    pub fn binds(self, port: u16) -> Vec<SocketAddr> {
        match self {
            Reach::Lan => vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))],
            Reach::Loopback(ip) => vec![
                SocketAddr::from((ip, port)),
                SocketAddr::from((LOOPBACK_BROADCAST, port)),
            ],
        }
    }

    /// Where to announce when nothing is configured.
    pub fn default_target(self, port: u16) -> SocketAddr {
        match self {
            Reach::Lan => SocketAddr::from((Ipv4Addr::BROADCAST, port)),
            Reach::Loopback(_) => SocketAddr::from((LOOPBACK_BROADCAST, port)),
        }
    }

    /// Whether announcements may go to `target`.
    pub fn allows_target(self, target: SocketAddr) -> bool {
        self.hears(target.ip())
    }

    /// Whether an announcement from `source` is heard (and so dialed).
    pub fn hears(self, source: IpAddr) -> bool {
        match self {
            Reach::Lan => true,
            Reach::Loopback(_) => match source {
                IpAddr::V4(ip) => ip.is_loopback(),
                IpAddr::V6(ip) => {
                    ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            },
        }
    }
}

/// The loopback network's broadcast address: reaches every local socket
/// bound to the port, and nothing off the machine.
pub const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

/// Discovered addresses dialed at once. Separate from the dial loops of
/// configured and invited peers, so that forged announcements (anyone on
/// the LAN can make up identities on the public network) cannot take the
/// slots those need, and small, because an honest LAN has few nodes and
/// each dial either fails or connects within the handshake deadline.
pub const DISCOVERY_DIALS: usize = 4;
/// Discovered addresses remembered as candidates to dial.
pub const DISCOVERY_CANDIDATES: usize = 256;

/// One address heard on the LAN.
#[derive(Clone, Debug)]
struct Candidate {
    /// What the peer book knows (or would know) about it.
    record: PeerRecord,
    /// Not to be dialed before this (ms), after a failure.
    not_before_ms: i64,
    /// Order of the last sighting: among equals, the most recently heard
    /// goes first, so a real node's repeated announcements overtake
    /// forged ones heard once.
    heard: u64,
    /// Being dialed now.
    dialing: bool,
}

impl Candidate {
    /// Sort key: addresses that have worked first, then fewer failures,
    /// then the most recently heard (smaller is better).
    fn rank(&self) -> (bool, u32, std::cmp::Reverse<u64>) {
        (
            self.record.last_success_ms.is_none(),
            self.record.failures,
            std::cmp::Reverse(self.heard),
        )
    }
}

/// Which discovered addresses to dial, and when: a small budget of dials
/// of its own ([`DISCOVERY_DIALS`]), addresses that have worked before
/// first, and a backoff (the peer book's) for addresses that failed.
/// Sans-io: the node tells it what it heard and how each dial ended, and
/// asks it what to dial next.
#[derive(Debug)]
pub struct DialPlan {
    candidates: HashMap<SocketAddr, Candidate>,
    max_dials: usize,
    max_candidates: usize,
    sightings: u64,
}

impl Default for DialPlan {
    fn default() -> DialPlan {
        DialPlan::new(DISCOVERY_DIALS, DISCOVERY_CANDIDATES)
    }
}

impl DialPlan {
    /// A plan with these bounds.
    pub fn new(max_dials: usize, max_candidates: usize) -> DialPlan {
        DialPlan {
            candidates: HashMap::new(),
            max_dials: max_dials.max(1),
            max_candidates: max_candidates.max(1),
            sightings: 0,
        }
    }

    /// `feed` announced `addr` at `now_ms`; `known` is the peer book's
    /// record of the address, if any. Returns the record to keep in the
    /// book, or `None` when the table is full of better candidates (the
    /// sighting is dropped). `Some((record, evicted))` may name an address
    /// that made room and is forgotten (never worked; the caller removes
    /// it from the book too).
    pub fn heard(
        &mut self,
        feed: FeedId,
        addr: SocketAddr,
        known: Option<PeerRecord>,
        now_ms: i64,
    ) -> Option<(PeerRecord, Option<SocketAddr>)> {
        self.sightings += 1;
        let heard = self.sightings;
        let mut evicted = None;
        if !self.candidates.contains_key(&addr) && self.candidates.len() >= self.max_candidates {
            let newcomer_worked = known.as_ref().is_some_and(|r| r.last_success_ms.is_some());
            let worst = self
                .candidates
                .iter()
                .filter(|(_, c)| !c.dialing)
                .max_by_key(|(_, c)| c.rank())
                .map(|(a, c)| (*a, c.record.last_success_ms.is_some(), c.record.failures));
            match worst {
                // Only an address that never worked, and that failed, or
                // that is no better than the newcomer, makes room.
                Some((a, false, failures)) if failures > 0 || newcomer_worked => {
                    self.candidates.remove(&a);
                    evicted = Some(a);
                }
                _ => return None,
            }
        }
        let candidate = self.candidates.entry(addr).or_insert_with(|| Candidate {
            record: known.unwrap_or_else(|| {
                PeerRecord::new(addr.to_string(), Some(feed), PeerSource::Discovered)
            }),
            not_before_ms: now_ms,
            heard,
            dialing: false,
        });
        candidate.record.feed = Some(feed);
        candidate.record.seen(now_ms);
        candidate.heard = heard;
        Some((candidate.record.clone(), evicted))
    }

    /// The next address to dial now, if the budget has room: the best
    /// candidate that is not being dialed, not waiting after a failure,
    /// and whose feed is not `connected` already. It counts as being
    /// dialed until [`DialPlan::finished`].
    pub fn next(
        &mut self,
        now_ms: i64,
        connected: impl Fn(&FeedId) -> bool,
    ) -> Option<(FeedId, SocketAddr)> {
        let dialing = self.candidates.values().filter(|c| c.dialing).count();
        if dialing >= self.max_dials {
            return None;
        }
        let (addr, candidate) = self
            .candidates
            .iter_mut()
            .filter(|(_, c)| {
                !c.dialing
                    && c.not_before_ms <= now_ms
                    && c.record.feed.as_ref().is_some_and(|f| !connected(f))
            })
            .min_by_key(|(_, c)| c.rank())?;
        let feed = candidate.record.feed?;
        candidate.dialing = true;
        Some((feed, *addr))
    }

    /// The dial of `addr` ended: `reached` when the handshake completed
    /// (the session may go on), else it failed. `jitter` in `[0, 1)`
    /// spreads retries. Returns the record to keep in the book.
    pub fn finished(
        &mut self,
        addr: SocketAddr,
        reached: bool,
        now_ms: i64,
        jitter: f64,
    ) -> Option<PeerRecord> {
        let candidate = self.candidates.get_mut(&addr)?;
        candidate.dialing = false;
        if reached {
            let feed = candidate.record.feed?;
            candidate.record.succeeded(feed, now_ms);
            candidate.not_before_ms = now_ms;
        } else {
            candidate.record.failed();
            let wait = candidate.record.backoff(jitter);
            candidate.not_before_ms =
                now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        }
        Some(candidate.record.clone())
    }

    /// Addresses being dialed now.
    pub fn dialing(&self) -> usize {
        self.candidates.values().filter(|c| c.dialing).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    const NET: NetworkKey = NetworkKey([7; 32]);

    #[test]
    fn announcements_round_trip_within_the_network_only() {
        let packet = seal(&key(1), &NET, 7643, 1_000, [2; 16], [3; 12]);
        let a = open(&packet, &NET).unwrap();
        assert_eq!(a.feed, FeedId(key(1).verifying_key().to_bytes()));
        assert_eq!(a.port, 7643);
        assert_eq!(a.timestamp_ms, 1_000);
        // Another network key learns nothing.
        assert_eq!(
            open(&packet, &NetworkKey([8; 32])),
            Err(DiscoveryError::OtherNetwork)
        );
        // The feed id is not in the clear.
        let feed = key(1).verifying_key().to_bytes();
        assert!(!packet.windows(32).any(|w| w == feed));
    }

    #[test]
    fn tampering_and_forgery_are_caught() {
        let mut packet = seal(&key(1), &NET, 7643, 1_000, [2; 16], [3; 12]);
        packet[40] ^= 1;
        assert_eq!(open(&packet, &NET), Err(DiscoveryError::OtherNetwork));
        assert_eq!(
            open(&packet[..20], &NET),
            Err(DiscoveryError::NotAnnouncement)
        );
        // A network member claiming someone else's feed: signs with its own
        // key, but names another feed.
        let mut forged_payload = Vec::new();
        let victim = FeedId(key(9).verifying_key().to_bytes());
        let a = Announcement {
            feed: victim,
            port: 1,
            timestamp_ms: 1_000,
            random: [4; 16],
        };
        let signed = signed_part(&a);
        forged_payload.extend_from_slice(&signed[SIGN_DOMAIN.len()..]);
        forged_payload.extend_from_slice(&key(1).sign(&signed).to_bytes());
        let sealed = cipher(&NET)
            .encrypt(Nonce::from_slice(&[5; 12]), forged_payload.as_slice())
            .unwrap();
        let mut packet = vec![VERSION];
        packet.extend_from_slice(&[5; 12]);
        packet.extend_from_slice(&sealed);
        assert_eq!(open(&packet, &NET), Err(DiscoveryError::Forged));
    }

    #[test]
    fn replays_and_stale_announcements_are_dropped() {
        let mut recent = Recent::default();
        let a = open(&seal(&key(1), &NET, 1, 100_000, [1; 16], [0; 12]), &NET).unwrap();
        assert_eq!(recent.accept(&a, 100_500), Ok(()));
        assert_eq!(recent.accept(&a, 100_600), Err(DiscoveryError::Replayed));
        let old = open(&seal(&key(1), &NET, 1, 0, [2; 16], [0; 12]), &NET).unwrap();
        assert_eq!(recent.accept(&old, 100_000), Err(DiscoveryError::Stale));
        let fresh = open(&seal(&key(1), &NET, 1, 100_000, [3; 16], [0; 12]), &NET).unwrap();
        assert_eq!(recent.accept(&fresh, 100_000), Ok(()));
    }

    #[test]
    fn a_flood_of_identities_cannot_reopen_the_replay_window() {
        let mut recent = Recent::default();
        let victim = open(&seal(&key(1), &NET, 1, 100_000, [1; 16], [0; 12]), &NET).unwrap();
        recent.accept(&victim, 100_000).unwrap();
        for i in 0..SEEN_FEEDS as u32 + 10 {
            let a = Announcement {
                feed: FeedId(blake3::hash(&i.to_be_bytes()).into()),
                port: 1,
                timestamp_ms: 100_000,
                random: [2; 16],
            };
            let _ = recent.accept(&a, 100_000);
        }
        assert_eq!(
            recent.accept(&victim, 100_010),
            Err(DiscoveryError::Replayed)
        );
        // A minute later everything expired and new feeds are welcome.
        let later = Announcement {
            feed: FeedId([9; 32]),
            port: 1,
            timestamp_ms: 200_000,
            random: [3; 16],
        };
        assert_eq!(recent.accept(&later, 200_000), Ok(()));
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn forged(n: u32) -> FeedId {
        FeedId(blake3::hash(&n.to_be_bytes()).into())
    }

    #[test]
    fn a_flood_of_forged_announcements_does_not_hide_a_real_node() {
        let mut plan = DialPlan::default();
        let nobody = |_: &FeedId| false;
        for n in 0..80 {
            plan.heard(forged(n), addr(10_000 + n as u16), None, 1_000)
                .unwrap();
        }
        // The budget fills with forged addresses, and stops there.
        let mut in_flight = Vec::new();
        while let Some((_, a)) = plan.next(1_000, nobody) {
            in_flight.push(a);
            assert!(in_flight.len() <= DISCOVERY_DIALS, "the budget holds");
        }
        assert_eq!(in_flight.len(), DISCOVERY_DIALS);
        let real = FeedId([7; 32]);
        let (record, evicted) = plan.heard(real, addr(7643), None, 1_001).unwrap();
        assert_eq!(record.feed, Some(real));
        assert_eq!(evicted, None);
        assert_eq!(plan.next(1_001, nobody), None, "no room yet");
        // One forged dial fails (closed port): the real node goes next,
        // ahead of the 76 forged addresses heard before it.
        plan.finished(in_flight[0], false, 1_002, 0.5).unwrap();
        assert_eq!(plan.next(1_002, nobody), Some((real, addr(7643))));
        // The failed address waits out its backoff.
        for a in &in_flight[1..] {
            plan.finished(*a, false, 1_003, 0.5);
        }
        let mut next = Vec::new();
        while let Some((_, a)) = plan.next(1_003, nobody) {
            next.push(a);
        }
        assert_eq!(next.len(), DISCOVERY_DIALS - 1);
        assert!(next.iter().all(|a| !in_flight.contains(a)), "{next:?}");
        assert_eq!(plan.dialing(), DISCOVERY_DIALS);
    }

    #[test]
    fn addresses_that_worked_go_first_and_connected_feeds_are_skipped() {
        let mut plan = DialPlan::default();
        let nobody = |_: &FeedId| false;
        for n in 0..10 {
            plan.heard(forged(n), addr(10_000 + n as u16), None, 1_000);
        }
        let mut worked = PeerRecord::new(addr(7000).to_string(), None, PeerSource::Discovered);
        worked.succeeded(FeedId([1; 32]), 500);
        worked.failed();
        plan.heard(FeedId([1; 32]), addr(7000), Some(worked), 900);
        // Heard before the others, and failed once since: still first.
        assert_eq!(
            plan.next(1_000, nobody),
            Some((FeedId([1; 32]), addr(7000)))
        );
        let record = plan.finished(addr(7000), true, 1_100, 0.5).unwrap();
        assert_eq!(record.last_success_ms, Some(1_100));
        assert_eq!(record.failures, 0);
        // Connected now: not dialed again while it is.
        let connected = |f: &FeedId| *f == FeedId([1; 32]);
        let (feed, _) = plan.next(1_100, connected).unwrap();
        assert_ne!(feed, FeedId([1; 32]));
        // Once the session is over, it is first again.
        assert_eq!(
            plan.next(1_200, nobody),
            Some((FeedId([1; 32]), addr(7000)))
        );
    }

    #[test]
    fn the_candidate_table_is_bounded_and_keeps_what_worked() {
        let mut plan = DialPlan::new(2, 8);
        for n in 0..8 {
            assert!(
                plan.heard(forged(n), addr(10_000 + n as u16), None, 1_000)
                    .is_some()
            );
        }
        // Full of untried addresses: a new stranger is not taken.
        assert!(plan.heard(forged(99), addr(9_999), None, 1_000).is_none());
        // Dial two and let them fail: a failed one makes room.
        let a = plan.next(1_000, |_| false).unwrap().1;
        let b = plan.next(1_000, |_| false).unwrap().1;
        plan.finished(a, false, 1_001, 0.5);
        plan.finished(b, false, 1_001, 0.5);
        let (_, evicted) = plan.heard(forged(99), addr(9_999), None, 1_002).unwrap();
        assert!(evicted == Some(a) || evicted == Some(b), "{evicted:?}");
        assert_eq!(plan.candidates.len(), 8);
        // An address that worked before always gets in.
        let mut worked = PeerRecord::new(addr(7000).to_string(), None, PeerSource::Discovered);
        worked.succeeded(FeedId([1; 32]), 500);
        let (_, evicted) = plan
            .heard(FeedId([1; 32]), addr(7000), Some(worked), 1_003)
            .unwrap();
        assert!(evicted.is_some());
        assert_eq!(plan.candidates.len(), 8);
    }

    #[test]
    fn a_loopback_node_discovers_on_loopback_only() {
        let lo = Reach::for_listen("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(lo, Reach::Loopback(Ipv4Addr::LOCALHOST));
        assert_eq!(
            lo.binds(7644),
            vec![addr(7644), "127.255.255.255:7644".parse().unwrap()]
        );
        assert_eq!(
            lo.default_target(7644),
            "127.255.255.255:7644".parse::<SocketAddr>().unwrap()
        );
        assert!(lo.hears("127.0.0.9".parse().unwrap()));
        assert!(lo.hears("::1".parse().unwrap()));
        assert!(!lo.hears("192.168.1.20".parse().unwrap()));
        assert!(!lo.hears("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!lo.allows_target("255.255.255.255:7644".parse().unwrap()));
        assert!(lo.allows_target("127.255.255.255:7644".parse().unwrap()));
        assert_eq!(
            Reach::for_listen("::ffff:127.0.0.2".parse().unwrap()),
            Some(Reach::Loopback(Ipv4Addr::new(127, 0, 0, 2)))
        );
        assert_eq!(Reach::for_listen("::1".parse().unwrap()), None);
        // Any other address: the whole LAN.
        for listen in ["0.0.0.0", "192.168.1.5", "::"] {
            let reach = Reach::for_listen(listen.parse().unwrap()).unwrap();
            assert_eq!(reach, Reach::Lan, "{listen}");
            assert!(reach.hears("192.168.1.20".parse().unwrap()));
            assert_eq!(
                reach.binds(7644),
                vec!["0.0.0.0:7644".parse::<SocketAddr>().unwrap()]
            );
        }
    }
}
