//! The replication wire format: packets carried in the plaintext of Noise
//! transport frames (see `docs/protocol.md`, "Replication").
//!
//! A frame's plaintext is a sequence of packets, each
//! `kind (u8) ‖ length (u16, big-endian) ‖ payload`. Decoding is strict
//! and bounded: an unknown kind, a short packet, an oversize clock or a
//! message over the size limit is an error, and the connection closes.

use thiserror::Error;

use crate::feed::message::{FeedId, MAX_MESSAGE_LEN};

/// Largest plaintext in one frame (a 65,535-byte Noise message minus its tag).
pub const MAX_PLAINTEXT: usize = 65_535 - 16;
/// Bytes of a packet header.
pub const PACKET_HEADER: usize = 3;
/// Bytes of one clock entry.
pub const CLOCK_ENTRY: usize = 40;
/// Most clock entries in one packet.
pub const MAX_CLOCK_ENTRIES: usize = (MAX_PLAINTEXT - PACKET_HEADER) / CLOCK_ENTRY;
/// Bytes of one `Push` entry: feed (32) and mode (1).
pub const PUSH_ENTRY: usize = 33;
/// Most `Push` entries in one packet (after its one-byte default).
pub const MAX_PUSH_ENTRIES: usize = (MAX_PLAINTEXT - PACKET_HEADER - 1) / PUSH_ENTRY;
/// Protocol version carried in `Hello`. Version 2 added `Push` (one live
/// source per feed) and [`FLAG_ONCE`]; version 1 peers are refused.
pub const PROTOCOL_VERSION: u8 = 2;

/// Clock value: "never send me this feed" (blocked, or not wanted).
pub const UNWANTED: u64 = u64::MAX;
/// Clock value in a diff: "forget this entry" (neither wanted nor unwanted).
pub const FORGET: u64 = u64::MAX - 1;
/// Largest sequence a clock may carry; larger values are reserved.
pub const MAX_CLOCK_SEQUENCE: u64 = 1 << 62;

const KIND_HELLO: u8 = 1;
const KIND_CLOCK: u8 = 2;
const KIND_CLOCK_END: u8 = 3;
const KIND_MESSAGE: u8 = 4;
const KIND_RESYNC: u8 = 5;
const KIND_PING: u8 = 6;
const KIND_GOODBYE: u8 = 7;
const KIND_PUSH: u8 = 8;
const KIND_REFUSE: u8 = 9;
const KIND_JOIN: u8 = 10;
const KIND_WELCOME: u8 = 11;
const KIND_TUNNEL: u8 = 12;
const KIND_TUNNEL_ACCEPT: u8 = 13;
const KIND_TUNNEL_READY: u8 = 14;
const KIND_TUNNEL_CALL: u8 = 15;
const KIND_TUNNEL_DECLINE: u8 = 16;
const KIND_MEMBERS: u8 = 17;

/// Bytes of a member code's secret and of a tunnel's token.
pub const TOKEN_LEN: usize = 16;
/// Longest address text in a `Members` entry.
pub const MAX_MEMBER_ADDR: usize = 64;

const PUSH_DEFAULT_KEEP: u8 = 0;
const PUSH_DEFAULT_PUSH: u8 = 1;
const PUSH_DEFAULT_NOTES: u8 = 2;

/// `Hello` flag: "send me any feed you have that I have not marked unwanted".
pub const FLAG_OPEN: u8 = 1;
/// `Hello` flag: "this is a one-off sync that ends once caught up": the
/// receiver pushes every feed to this peer and asks no `Push` modes of it
/// that would leave it waiting.
pub const FLAG_ONCE: u8 = 2;

/// Why a node refuses a session (the `Refuse` packet). Codes this version
/// does not know are kept as [`RefuseReason::Other`]: a newer node may
/// give reasons an older one can still report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RefuseReason {
    /// The node already has a session with the dialer's feed, over another
    /// connection (code 1).
    #[error(
        "it is already connected to your feed over another connection: another node of yours with the same identity, or an earlier connection that has not closed yet"
    )]
    AlreadyConnected,
    /// The two nodes dialed each other at the same time; both keep the one
    /// connection dialed by the smaller feed key, and this is the other
    /// (code 2).
    #[error(
        "you dialed each other at the same time, and only the connection dialed by the smaller feed key is kept"
    )]
    Crossed,
    /// A hub-only request (a member code, a tunnel) reached a node that is
    /// not a hub (code 3).
    #[error("it is not a hub: member codes and tunnels work only with a hub")]
    NotAHub,
    /// The hub opens tunnels only between its members, and the asking side
    /// or the other end is not one (any more) (code 4).
    #[error("the hub opens tunnels only between its members, and one of you is not a member")]
    NotAMember,
    /// The member code is unknown, used up or expired (code 5).
    #[error("the member code is unknown, used up or expired: ask the hub's operator for a new one")]
    BadCode,
    /// The other end of a tunnel is not connected to the hub now (code 6).
    #[error("the member you asked for is not connected to the hub right now")]
    Offline,
    /// The other end of a tunnel declined it, now or a short while ago
    /// (code 7).
    #[error(
        "the member you asked for does not take tunnels from you (it does not follow you); the hub will not ask it again for a while"
    )]
    Declined,
    /// Too many tunnels are open or pending for the asking member (code 8).
    #[error("you have too many tunnels open through this hub; try again when one has closed")]
    TooManyTunnels,
    /// The hub's operator removed the dialer from its members (code 9).
    #[error("the hub's operator removed you from its members")]
    Removed,
    /// A reason this version does not know.
    #[error("reason {0}, which this version does not know")]
    Other(u8),
}

impl RefuseReason {
    /// The reason's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            RefuseReason::AlreadyConnected => 1,
            RefuseReason::Crossed => 2,
            RefuseReason::NotAHub => 3,
            RefuseReason::NotAMember => 4,
            RefuseReason::BadCode => 5,
            RefuseReason::Offline => 6,
            RefuseReason::Declined => 7,
            RefuseReason::TooManyTunnels => 8,
            RefuseReason::Removed => 9,
            RefuseReason::Other(code) => code,
        }
    }

    /// The reason a code stands for.
    pub fn from_code(code: u8) -> RefuseReason {
        match code {
            1 => RefuseReason::AlreadyConnected,
            2 => RefuseReason::Crossed,
            3 => RefuseReason::NotAHub,
            4 => RefuseReason::NotAMember,
            5 => RefuseReason::BadCode,
            6 => RefuseReason::Offline,
            7 => RefuseReason::Declined,
            8 => RefuseReason::TooManyTunnels,
            9 => RefuseReason::Removed,
            other => RefuseReason::Other(other),
        }
    }
}

/// One replication packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// First packet of a session (and of a resent full clock).
    Hello {
        /// Protocol version.
        version: u8,
        /// Flags, e.g. [`FLAG_OPEN`].
        flags: u8,
        /// Digest of the clock the sender believes the receiver holds for
        /// it from the last session; all zeros when the clock that follows
        /// is complete rather than a diff.
        baseline: [u8; 32],
    },
    /// Clock entries: feed → latest sequence held (0: wanted, none held),
    /// or [`UNWANTED`], or (in a diff) [`FORGET`].
    Clock(Vec<(FeedId, u64)>),
    /// End of the clock; carries the digest of the sender's full clock so
    /// the receiver can check its reconstruction.
    ClockEnd {
        /// blake3 digest of the full clock (see [`clock_digest`]).
        digest: [u8; 32],
    },
    /// One feed message, exactly as signed.
    Message(Vec<u8>),
    /// "Your diff did not apply: send your full clock."
    Resync,
    /// Keepalive.
    Ping,
    /// Clean end of the session.
    Goodbye,
    /// How the sender wants each feed in live mode: pushed (`true`: send
    /// me its messages as you get them) or notes only (`false`: send me
    /// only clock entries with your latest sequence). Lets a node take
    /// each feed from one peer at a time.
    Push {
        /// When set, first reset every feed to this mode (the per-feed
        /// entries of earlier `Push` packets are forgotten).
        default: Option<bool>,
        /// Per-feed modes, applied after the default.
        entries: Vec<(FeedId, bool)>,
    },
    /// "I will not hold this session, for this reason": sent instead of
    /// `Hello`, right after the handshake; the sender then closes.
    Refuse(RefuseReason),
    /// "Make me a member": a member code's secret, sent alone as the
    /// initiator's first packet to a hub; answered by `Welcome` or
    /// `Refuse`.
    Join {
        /// The code's secret.
        token: [u8; TOKEN_LEN],
    },
    /// The hub took the member code: the sender is now a member. The
    /// session goes on with `Hello`.
    Welcome,
    /// "Connect me to this member": sent alone as the initiator's first
    /// packet to a hub; answered by `TunnelReady` or `Refuse`.
    Tunnel {
        /// The member to reach.
        target: FeedId,
    },
    /// "This connection is my end of that tunnel": sent alone as the
    /// initiator's first packet to a hub, after a `TunnelCall`.
    TunnelAccept {
        /// The token of the `TunnelCall`.
        token: [u8; TOKEN_LEN],
    },
    /// The hub joined both ends: every byte after this frame is the other
    /// end's, relayed as it is (both ends start their own handshake).
    TunnelReady,
    /// In a live session, hub to member: "this member asks for a tunnel to
    /// you"; answered by a new connection with `TunnelAccept`, or by
    /// `TunnelDecline` in this session.
    TunnelCall {
        /// Names the tunnel.
        token: [u8; TOKEN_LEN],
        /// Who asks.
        from: FeedId,
    },
    /// In a live session, member to hub: "I do not take that tunnel".
    TunnelDecline {
        /// The token of the `TunnelCall`.
        token: [u8; TOKEN_LEN],
    },
    /// In a live session, hub to member: members connected to the hub now
    /// that the receiver follows (or that follow it), each with an address
    /// it can be dialed at directly, if the hub knows one.
    Members(Vec<MemberEntry>),
}

/// A member connected to a hub (the `Members` packet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    /// The member's feed.
    pub feed: FeedId,
    /// `HOST:PORT` where it says it can be dialed (a port mapped on its
    /// router), at most [`MAX_MEMBER_ADDR`] bytes of text.
    pub direct: Option<String>,
}

/// A packet that cannot be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The plaintext ends inside a packet.
    #[error("truncated packet")]
    Truncated,
    /// The kind byte is not one this version knows.
    #[error("unknown packet kind {0}")]
    UnknownKind(u8),
    /// The payload does not have the size its kind requires.
    #[error("packet of kind {kind} has a bad length {len}")]
    BadLength {
        /// Packet kind.
        kind: u8,
        /// Payload length.
        len: usize,
    },
    /// A clock value is above the reserved range.
    #[error("clock entry with an impossible sequence {0}")]
    BadSequence(u64),
    /// A `Push` mode byte is not one this version knows.
    #[error("push packet with an unknown mode {0}")]
    BadMode(u8),
    /// The payload is larger than a frame can carry.
    #[error("packet payload of {0} bytes is too large")]
    TooLarge(usize),
}

impl Packet {
    /// Bytes this packet takes on the wire.
    pub fn encoded_len(&self) -> usize {
        PACKET_HEADER
            + match self {
                Packet::Hello { .. } => 34,
                Packet::Clock(entries) => entries.len() * CLOCK_ENTRY,
                Packet::ClockEnd { .. } => 32,
                Packet::Message(bytes) => bytes.len(),
                Packet::Resync | Packet::Ping | Packet::Goodbye => 0,
                Packet::Push { entries, .. } => 1 + entries.len() * PUSH_ENTRY,
                Packet::Refuse(_) => 1,
                Packet::Join { .. }
                | Packet::TunnelAccept { .. }
                | Packet::TunnelDecline { .. } => TOKEN_LEN,
                Packet::Welcome | Packet::TunnelReady => 0,
                Packet::Tunnel { .. } => 32,
                Packet::TunnelCall { .. } => TOKEN_LEN + 32,
                Packet::Members(entries) => entries
                    .iter()
                    .map(|e| 33 + e.direct.as_ref().map_or(0, String::len))
                    .sum(),
            }
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let len = self.encoded_len() - PACKET_HEADER;
        if len > MAX_PLAINTEXT - PACKET_HEADER {
            return Err(WireError::TooLarge(len));
        }
        let kind = match self {
            Packet::Hello { .. } => KIND_HELLO,
            Packet::Clock(_) => KIND_CLOCK,
            Packet::ClockEnd { .. } => KIND_CLOCK_END,
            Packet::Message(_) => KIND_MESSAGE,
            Packet::Resync => KIND_RESYNC,
            Packet::Ping => KIND_PING,
            Packet::Goodbye => KIND_GOODBYE,
            Packet::Push { .. } => KIND_PUSH,
            Packet::Refuse(_) => KIND_REFUSE,
            Packet::Join { .. } => KIND_JOIN,
            Packet::Welcome => KIND_WELCOME,
            Packet::Tunnel { .. } => KIND_TUNNEL,
            Packet::TunnelAccept { .. } => KIND_TUNNEL_ACCEPT,
            Packet::TunnelReady => KIND_TUNNEL_READY,
            Packet::TunnelCall { .. } => KIND_TUNNEL_CALL,
            Packet::TunnelDecline { .. } => KIND_TUNNEL_DECLINE,
            Packet::Members(_) => KIND_MEMBERS,
        };
        out.push(kind);
        // Bounded by the check above.
        out.extend_from_slice(&(len as u16).to_be_bytes());
        match self {
            Packet::Hello {
                version,
                flags,
                baseline,
            } => {
                out.push(*version);
                out.push(*flags);
                out.extend_from_slice(baseline);
            }
            Packet::Clock(entries) => {
                for (feed, value) in entries {
                    out.extend_from_slice(&feed.0);
                    out.extend_from_slice(&value.to_be_bytes());
                }
            }
            Packet::ClockEnd { digest } => out.extend_from_slice(digest),
            Packet::Message(bytes) => out.extend_from_slice(bytes),
            Packet::Resync | Packet::Ping | Packet::Goodbye => {}
            Packet::Push { default, entries } => {
                out.push(match default {
                    None => PUSH_DEFAULT_KEEP,
                    Some(true) => PUSH_DEFAULT_PUSH,
                    Some(false) => PUSH_DEFAULT_NOTES,
                });
                for (feed, push) in entries {
                    out.extend_from_slice(&feed.0);
                    out.push(u8::from(*push));
                }
            }
            Packet::Refuse(reason) => out.push(reason.code()),
            Packet::Join { token }
            | Packet::TunnelAccept { token }
            | Packet::TunnelDecline { token } => out.extend_from_slice(token),
            Packet::Welcome | Packet::TunnelReady => {}
            Packet::Tunnel { target } => out.extend_from_slice(&target.0),
            Packet::TunnelCall { token, from } => {
                out.extend_from_slice(token);
                out.extend_from_slice(&from.0);
            }
            Packet::Members(entries) => {
                for entry in entries {
                    let direct = entry.direct.as_deref().unwrap_or("");
                    if direct.len() > MAX_MEMBER_ADDR {
                        return Err(WireError::TooLarge(direct.len()));
                    }
                    out.extend_from_slice(&entry.feed.0);
                    // Bounded by the check above.
                    out.push(direct.len() as u8);
                    out.extend_from_slice(direct.as_bytes());
                }
            }
        }
        Ok(())
    }

    /// Decodes every packet in one frame's plaintext.
    pub fn decode_all(mut plaintext: &[u8]) -> Result<Vec<Packet>, WireError> {
        let mut packets = Vec::new();
        while !plaintext.is_empty() {
            let (packet, rest) = Packet::decode_one(plaintext)?;
            packets.push(packet);
            plaintext = rest;
        }
        Ok(packets)
    }

    fn decode_one(bytes: &[u8]) -> Result<(Packet, &[u8]), WireError> {
        if bytes.len() < PACKET_HEADER {
            return Err(WireError::Truncated);
        }
        let kind = bytes[0];
        let len = usize::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        let payload = bytes
            .get(PACKET_HEADER..PACKET_HEADER + len)
            .ok_or(WireError::Truncated)?;
        let rest = &bytes[PACKET_HEADER + len..];
        let bad = WireError::BadLength { kind, len };
        let packet = match kind {
            KIND_HELLO => {
                if len != 34 {
                    return Err(bad);
                }
                let mut baseline = [0u8; 32];
                baseline.copy_from_slice(&payload[2..34]);
                Packet::Hello {
                    version: payload[0],
                    flags: payload[1],
                    baseline,
                }
            }
            KIND_CLOCK => {
                if len % CLOCK_ENTRY != 0 || len == 0 {
                    return Err(bad);
                }
                let mut entries = Vec::with_capacity(len / CLOCK_ENTRY);
                for chunk in payload.chunks_exact(CLOCK_ENTRY) {
                    let mut feed = [0u8; 32];
                    feed.copy_from_slice(&chunk[..32]);
                    let mut value = [0u8; 8];
                    value.copy_from_slice(&chunk[32..]);
                    let value = u64::from_be_bytes(value);
                    if value > MAX_CLOCK_SEQUENCE && value != UNWANTED && value != FORGET {
                        return Err(WireError::BadSequence(value));
                    }
                    entries.push((FeedId(feed), value));
                }
                Packet::Clock(entries)
            }
            KIND_CLOCK_END => {
                let digest: [u8; 32] = payload.try_into().map_err(|_| bad)?;
                Packet::ClockEnd { digest }
            }
            KIND_MESSAGE => {
                if len == 0 || len > MAX_MESSAGE_LEN {
                    return Err(bad);
                }
                Packet::Message(payload.to_vec())
            }
            KIND_RESYNC | KIND_PING | KIND_GOODBYE => {
                if len != 0 {
                    return Err(bad);
                }
                match kind {
                    KIND_RESYNC => Packet::Resync,
                    KIND_PING => Packet::Ping,
                    _ => Packet::Goodbye,
                }
            }
            KIND_PUSH => {
                let Some((&default, body)) = payload.split_first() else {
                    return Err(bad);
                };
                if body.len() % PUSH_ENTRY != 0 {
                    return Err(bad);
                }
                let default = match default {
                    PUSH_DEFAULT_KEEP => None,
                    PUSH_DEFAULT_PUSH => Some(true),
                    PUSH_DEFAULT_NOTES => Some(false),
                    other => return Err(WireError::BadMode(other)),
                };
                let mut entries = Vec::with_capacity(body.len() / PUSH_ENTRY);
                for chunk in body.chunks_exact(PUSH_ENTRY) {
                    let mut feed = [0u8; 32];
                    feed.copy_from_slice(&chunk[..32]);
                    let push = match chunk[32] {
                        0 => false,
                        1 => true,
                        other => return Err(WireError::BadMode(other)),
                    };
                    entries.push((FeedId(feed), push));
                }
                Packet::Push { default, entries }
            }
            KIND_REFUSE => match payload {
                &[code] => Packet::Refuse(RefuseReason::from_code(code)),
                _ => return Err(bad),
            },
            KIND_JOIN | KIND_TUNNEL_ACCEPT | KIND_TUNNEL_DECLINE => {
                let token: [u8; TOKEN_LEN] = payload.try_into().map_err(|_| bad)?;
                match kind {
                    KIND_JOIN => Packet::Join { token },
                    KIND_TUNNEL_ACCEPT => Packet::TunnelAccept { token },
                    _ => Packet::TunnelDecline { token },
                }
            }
            KIND_WELCOME | KIND_TUNNEL_READY => {
                if len != 0 {
                    return Err(bad);
                }
                if kind == KIND_WELCOME {
                    Packet::Welcome
                } else {
                    Packet::TunnelReady
                }
            }
            KIND_TUNNEL => Packet::Tunnel {
                target: FeedId(payload.try_into().map_err(|_| bad)?),
            },
            KIND_TUNNEL_CALL => {
                if len != TOKEN_LEN + 32 {
                    return Err(bad);
                }
                let (token, from) = payload.split_at(TOKEN_LEN);
                Packet::TunnelCall {
                    token: token.try_into().map_err(|_| bad.clone())?,
                    from: FeedId(from.try_into().map_err(|_| bad)?),
                }
            }
            KIND_MEMBERS => Packet::Members(decode_members(payload).ok_or(bad)?),
            other => return Err(WireError::UnknownKind(other)),
        };
        Ok((packet, rest))
    }
}

/// The entries of a `Members` payload: `feed (32) ‖ length (u8) ‖
/// address text`, repeated; `None` when malformed (an entry cut short, an
/// address too long or not UTF-8).
fn decode_members(mut payload: &[u8]) -> Option<Vec<MemberEntry>> {
    let mut entries = Vec::new();
    while !payload.is_empty() {
        let feed = FeedId(payload.get(..32)?.try_into().ok()?);
        let len = usize::from(*payload.get(32)?);
        if len > MAX_MEMBER_ADDR {
            return None;
        }
        let text = std::str::from_utf8(payload.get(33..33 + len)?).ok()?;
        entries.push(MemberEntry {
            feed,
            direct: (!text.is_empty()).then(|| text.to_owned()),
        });
        payload = &payload[33 + len..];
    }
    Some(entries)
}

/// Digest of a full clock: blake3 over its entries sorted by feed, each
/// `feed ‖ value (u64 big-endian)`. Both sides compute it the same way.
pub fn clock_digest<'a>(entries: impl IntoIterator<Item = (&'a FeedId, &'a u64)>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"potluck-clock-v1:");
    for (feed, value) in entries {
        hasher.update(&feed.0);
        hasher.update(&value.to_be_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Packs packets into frame plaintexts of at most [`MAX_PLAINTEXT`] bytes.
#[derive(Default)]
pub struct FramePacker {
    frames: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl FramePacker {
    /// An empty packer.
    pub fn new() -> FramePacker {
        FramePacker::default()
    }

    /// Adds a packet, starting a new frame when this one is full.
    pub fn push(&mut self, packet: &Packet) -> Result<(), WireError> {
        if self.current.len() + packet.encoded_len() > MAX_PLAINTEXT {
            self.frames.push(std::mem::take(&mut self.current));
        }
        packet.encode_into(&mut self.current)
    }

    /// Bytes waiting in the unfinished frame.
    pub fn pending_len(&self) -> usize {
        self.current.len() + self.frames.iter().map(Vec::len).sum::<usize>()
    }

    /// True when nothing is packed.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.frames.is_empty()
    }

    /// Takes every packed frame, including the unfinished one.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        let mut frames = std::mem::take(&mut self.frames);
        if !self.current.is_empty() {
            frames.push(std::mem::take(&mut self.current));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn members_entries_are_bounded_and_checked() {
        // An address over the limit is refused on both sides.
        let long = Packet::Members(vec![MemberEntry {
            feed: FeedId([1; 32]),
            direct: Some("a".repeat(MAX_MEMBER_ADDR + 1)),
        }]);
        assert!(long.encode_into(&mut Vec::new()).is_err());
        let mut bad = vec![KIND_MEMBERS, 0, 34];
        bad.extend_from_slice(&[1; 32]);
        bad.extend_from_slice(&[1, 0xff]);
        assert!(matches!(
            Packet::decode_all(&bad),
            Err(WireError::BadLength {
                kind: KIND_MEMBERS,
                ..
            })
        ));
        // An entry cut short.
        let cut = [KIND_MEMBERS, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert!(Packet::decode_all(&cut).is_err());
        // Each refusal has the code protocol.md gives it; unknown ones are
        // kept.
        let named = [
            (1, RefuseReason::AlreadyConnected),
            (2, RefuseReason::Crossed),
            (3, RefuseReason::NotAHub),
            (4, RefuseReason::NotAMember),
            (5, RefuseReason::BadCode),
            (6, RefuseReason::Offline),
            (7, RefuseReason::Declined),
            (8, RefuseReason::TooManyTunnels),
            (9, RefuseReason::Removed),
            (10, RefuseReason::Other(10)),
        ];
        for (code, reason) in named {
            assert_eq!(RefuseReason::from_code(code), reason);
            assert_eq!(reason.code(), code);
        }
    }

    fn sample() -> Vec<Packet> {
        vec![
            Packet::Join {
                token: [7; TOKEN_LEN],
            },
            Packet::Welcome,
            Packet::Tunnel {
                target: FeedId([4; 32]),
            },
            Packet::TunnelAccept {
                token: [8; TOKEN_LEN],
            },
            Packet::TunnelReady,
            Packet::TunnelCall {
                token: [9; TOKEN_LEN],
                from: FeedId([5; 32]),
            },
            Packet::TunnelDecline {
                token: [10; TOKEN_LEN],
            },
            Packet::Members(vec![
                MemberEntry {
                    feed: FeedId([6; 32]),
                    direct: Some("203.0.113.7:7878".into()),
                },
                MemberEntry {
                    feed: FeedId([7; 32]),
                    direct: None,
                },
            ]),
            Packet::Refuse(RefuseReason::Declined),
            Packet::Hello {
                version: 1,
                flags: FLAG_OPEN,
                baseline: [3; 32],
            },
            Packet::Clock(vec![(FeedId([1; 32]), 5), (FeedId([2; 32]), UNWANTED)]),
            Packet::ClockEnd { digest: [9; 32] },
            Packet::Message(vec![7; 300]),
            Packet::Resync,
            Packet::Ping,
            Packet::Goodbye,
            Packet::Push {
                default: Some(false),
                entries: vec![(FeedId([4; 32]), true), (FeedId([5; 32]), false)],
            },
            Packet::Push {
                default: None,
                entries: vec![],
            },
            Packet::Refuse(RefuseReason::AlreadyConnected),
            Packet::Refuse(RefuseReason::Crossed),
            Packet::Refuse(RefuseReason::Other(77)),
        ]
    }

    #[test]
    fn packets_round_trip() {
        let mut out = Vec::new();
        for p in sample() {
            p.encode_into(&mut out).unwrap();
        }
        assert_eq!(Packet::decode_all(&out).unwrap(), sample());
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(Packet::decode_all(&[4, 0]), Err(WireError::Truncated));
        assert_eq!(Packet::decode_all(&[4, 0, 5, 1]), Err(WireError::Truncated));
        assert_eq!(
            Packet::decode_all(&[99, 0, 0]),
            Err(WireError::UnknownKind(99))
        );
        assert!(matches!(
            Packet::decode_all(&[2, 0, 3, 1, 2, 3]),
            Err(WireError::BadLength { kind: 2, .. })
        ));
        assert!(matches!(
            Packet::decode_all(&[6, 0, 1, 0]),
            Err(WireError::BadLength { .. })
        ));
        let mut clock = vec![2, 0, 40];
        clock.extend_from_slice(&[0; 32]);
        clock.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(matches!(
            Packet::decode_all(&clock),
            Err(WireError::BadSequence(_))
        ));
        let mut big = vec![4];
        big.extend_from_slice(&((MAX_MESSAGE_LEN + 1) as u16).to_be_bytes());
        big.extend(std::iter::repeat_n(0, MAX_MESSAGE_LEN + 1));
        assert!(matches!(
            Packet::decode_all(&big),
            Err(WireError::BadLength { .. })
        ));
        // Push: an empty payload, a partial entry, unknown mode bytes.
        assert!(matches!(
            Packet::decode_all(&[8, 0, 0]),
            Err(WireError::BadLength { kind: 8, .. })
        ));
        assert!(matches!(
            Packet::decode_all(&[8, 0, 2, 0, 1]),
            Err(WireError::BadLength { kind: 8, .. })
        ));
        assert_eq!(
            Packet::decode_all(&[8, 0, 1, 3]),
            Err(WireError::BadMode(3))
        );
        let mut push = vec![8, 0, 34, 0];
        push.extend_from_slice(&[1; 32]);
        push.push(2);
        assert_eq!(Packet::decode_all(&push), Err(WireError::BadMode(2)));
        // Refuse: exactly one reason byte.
        for bytes in [&[9, 0, 0][..], &[9, 0, 2, 1, 1]] {
            let decoded = Packet::decode_all(bytes);
            assert!(
                matches!(decoded, Err(WireError::BadLength { kind: 9, .. })),
                "{bytes:?}: {decoded:?}"
            );
        }
    }

    #[test]
    fn a_refusal_is_one_reason_byte_and_unknown_reasons_are_kept() {
        let mut out = Vec::new();
        Packet::Refuse(RefuseReason::AlreadyConnected)
            .encode_into(&mut out)
            .unwrap();
        assert_eq!(out, [9, 0, 1, 1]);
        assert_eq!(
            Packet::decode_all(&[9, 0, 1, 200]),
            Ok(vec![Packet::Refuse(RefuseReason::Other(200))])
        );
        assert_eq!(RefuseReason::from_code(200).code(), 200);
    }

    #[test]
    fn packer_splits_frames_at_the_limit() {
        let mut packer = FramePacker::new();
        let msg = Packet::Message(vec![1; 16_000]);
        for _ in 0..9 {
            packer.push(&msg).unwrap();
        }
        let frames = packer.take();
        assert_eq!(frames.len(), 3);
        let mut total = 0;
        for f in &frames {
            assert!(f.len() <= MAX_PLAINTEXT);
            total += Packet::decode_all(f).unwrap().len();
        }
        assert_eq!(total, 9);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let _ = Packet::decode_all(&bytes);
        }
    }
}
