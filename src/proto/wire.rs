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
            RefuseReason::Other(code) => code,
        }
    }

    /// The reason a code stands for.
    pub fn from_code(code: u8) -> RefuseReason {
        match code {
            1 => RefuseReason::AlreadyConnected,
            2 => RefuseReason::Crossed,
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
            other => return Err(WireError::UnknownKind(other)),
        };
        Ok((packet, rest))
    }
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

    fn sample() -> Vec<Packet> {
        vec![
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
