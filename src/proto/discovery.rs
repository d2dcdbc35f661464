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

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signature, Signer, SigningKey};
use thiserror::Error;

use crate::feed::message::FeedId;
use crate::proto::handshake::NetworkKey;

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
}
