//! The wire format of a feed message: the fixed binary header, the
//! signature over it, the message id, and the encoded bytes that are stored
//! and forwarded exactly as signed.
//!
//! Layout of an encoded message (all integers big-endian), see
//! `docs/protocol.md`:
//!
//! ```text
//! header (117 bytes) | signature (64 bytes) | content (content_length bytes, or absent)
//! ```
//!
//! This module only encodes and decodes; it never decides whether a message
//! fits a feed (that is [`crate::feed::validate`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The only header format version this implementation reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 1 + 32 + 8 + 32 + 8 + 4 + 32;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of header plus signature: the part of a message that the chain
/// needs, and all that remains once content is dropped.
pub const SIGNED_LEN: usize = HEADER_LEN + SIGNATURE_LEN;
/// Largest content a message may carry, in bytes of UTF-8.
pub const MAX_CONTENT_LEN: usize = 16 * 1024;
/// Largest encoded message.
pub const MAX_MESSAGE_LEN: usize = SIGNED_LEN + MAX_CONTENT_LEN;
/// Domain-separation tag prepended to the header bytes before signing, so a
/// potluck signature can never be replayed as a signature in another protocol.
pub const SIGNATURE_DOMAIN: &[u8] = b"potluck-message-v1:";

/// Offsets of the header fields.
mod offset {
    pub const VERSION: usize = 0;
    pub const AUTHOR: usize = 1;
    pub const SEQUENCE: usize = 33;
    pub const PREVIOUS: usize = 41;
    pub const TIMESTAMP: usize = 73;
    pub const CONTENT_LEN: usize = 81;
    pub const CONTENT_HASH: usize = 85;
}

/// A failure to decode bytes or text into a message, id or feed id.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a header and signature need.
    #[error("message is truncated: {len} bytes, but a header and signature need {SIGNED_LEN}")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than the largest possible message.
    #[error("message is {len} bytes, more than the limit of {MAX_MESSAGE_LEN}")]
    Oversize {
        /// Bytes received.
        len: usize,
    },
    /// The bytes after the signature are neither empty nor exactly the
    /// declared content length.
    #[error("message carries {actual} content bytes but its header declares {declared}")]
    ContentLengthMismatch {
        /// Length in the header.
        declared: u32,
        /// Bytes present after the signature.
        actual: usize,
    },
    /// The author field is not a valid ed25519 public key.
    #[error("author field is not a valid ed25519 public key")]
    BadAuthorKey,
    /// A text id did not have the expected sigil, suffix or base64 body.
    #[error("`{text}` is not a valid {kind} (expected {expected})")]
    BadText {
        /// What was being parsed.
        kind: &'static str,
        /// The offending text, shortened.
        text: String,
        /// What the text should look like.
        expected: &'static str,
    },
}

/// An author's identity: an ed25519 public key, written `@<base64>.ed25519`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedId(pub [u8; 32]);

/// A message id: blake3 over header and signature, written `%<base64>.blake3`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub [u8; 32]);

fn parse_sigil(
    text: &str,
    sigil: char,
    suffix: &str,
    kind: &'static str,
    expected: &'static str,
) -> Result<[u8; 32], DecodeError> {
    let bad = || DecodeError::BadText {
        kind,
        text: text.chars().take(80).collect(),
        expected,
    };
    let body = text
        .strip_prefix(sigil)
        .and_then(|t| t.strip_suffix(suffix))
        .ok_or_else(bad)?;
    let bytes = B64.decode(body).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

impl FeedId {
    /// Parses `@<base64>.ed25519`.
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        parse_sigil(
            text.trim(),
            '@',
            ".ed25519",
            "feed id",
            "@<base64 of 32 bytes>.ed25519",
        )
        .map(FeedId)
    }

    /// The ed25519 key, if these bytes are a valid curve point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, DecodeError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| DecodeError::BadAuthorKey)
    }
}

impl MessageId {
    /// Parses `%<base64>.blake3`.
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        parse_sigil(
            text.trim(),
            '%',
            ".blake3",
            "message id",
            "%<base64 of 32 bytes>.blake3",
        )
        .map(MessageId)
    }

    /// The base64 body of the text form, without sigil and suffix.
    pub fn base64(&self) -> String {
        B64.encode(self.0)
    }

    /// True for the all-zero id that stands for "no previous message".
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}.ed25519", B64.encode(self.0))
    }
}
impl fmt::Debug for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}.blake3", B64.encode(self.0))
    }
}
impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$t>::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
text_serde!(FeedId);
text_serde!(MessageId);

/// The decoded fields of a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version; only [`FORMAT_VERSION`] is accepted by validation.
    pub version: u8,
    /// The author's public key.
    pub author: FeedId,
    /// Position in the author's feed, starting at 1.
    pub sequence: u64,
    /// Id of the message at `sequence - 1`, zero for the first.
    pub previous: MessageId,
    /// The author's claimed time of writing, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Length of the content in bytes.
    pub content_length: u32,
    /// blake3 of the content bytes.
    pub content_hash: [u8; 32],
}

impl Header {
    /// The fixed 117-byte encoding.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[offset::VERSION] = self.version;
        out[offset::AUTHOR..offset::SEQUENCE].copy_from_slice(&self.author.0);
        out[offset::SEQUENCE..offset::PREVIOUS].copy_from_slice(&self.sequence.to_be_bytes());
        out[offset::PREVIOUS..offset::TIMESTAMP].copy_from_slice(&self.previous.0);
        out[offset::TIMESTAMP..offset::CONTENT_LEN].copy_from_slice(&self.timestamp.to_be_bytes());
        out[offset::CONTENT_LEN..offset::CONTENT_HASH]
            .copy_from_slice(&self.content_length.to_be_bytes());
        out[offset::CONTENT_HASH..HEADER_LEN].copy_from_slice(&self.content_hash);
        out
    }

    /// Decodes the fixed header layout. Never fails on a 117-byte input:
    /// every field accepts every value; validation judges them.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let arr32 = |at: usize| -> [u8; 32] {
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes[at..at + 32]);
            a
        };
        let arr8 = |at: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            a
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[offset::CONTENT_LEN..offset::CONTENT_HASH]);
        Header {
            version: bytes[offset::VERSION],
            author: FeedId(arr32(offset::AUTHOR)),
            sequence: u64::from_be_bytes(arr8(offset::SEQUENCE)),
            previous: MessageId(arr32(offset::PREVIOUS)),
            timestamp: i64::from_be_bytes(arr8(offset::TIMESTAMP)),
            content_length: u32::from_be_bytes(len),
            content_hash: arr32(offset::CONTENT_HASH),
        }
    }
}

/// The bytes an author signs: the domain tag followed by the header.
pub fn signing_input(header: &[u8; HEADER_LEN]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNATURE_DOMAIN.len() + HEADER_LEN);
    input.extend_from_slice(SIGNATURE_DOMAIN);
    input.extend_from_slice(header);
    input
}

/// A message as encoded bytes plus its decoded header. The bytes are the
/// source of truth; nothing is ever re-encoded from the decoded fields.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    bytes: Vec<u8>,
    header: Header,
    id: MessageId,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("author", &self.header.author)
            .field("sequence", &self.header.sequence)
            .finish()
    }
}

impl Message {
    /// Decodes an encoded message. Checks only the framing (lengths); the
    /// signature, chain and content are judged by [`crate::feed::validate`].
    pub fn decode(bytes: Vec<u8>) -> Result<Message, DecodeError> {
        if bytes.len() < SIGNED_LEN {
            return Err(DecodeError::Truncated { len: bytes.len() });
        }
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::Oversize { len: bytes.len() });
        }
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&bytes[..HEADER_LEN]);
        let header = Header::decode(&head);
        let carried = bytes.len() - SIGNED_LEN;
        if carried != 0 && carried != header.content_length as usize {
            return Err(DecodeError::ContentLengthMismatch {
                declared: header.content_length,
                actual: carried,
            });
        }
        let id = MessageId(*blake3::hash(&bytes[..SIGNED_LEN]).as_bytes());
        Ok(Message { bytes, header, id })
    }

    /// Signs and encodes a new message. The caller supplies the chain
    /// position (`sequence`, `previous`) and the claimed time.
    pub fn sign(
        key: &SigningKey,
        sequence: u64,
        previous: MessageId,
        timestamp: i64,
        content: &[u8],
    ) -> Result<Message, DecodeError> {
        if content.len() > MAX_CONTENT_LEN {
            return Err(DecodeError::Oversize {
                len: SIGNED_LEN + content.len(),
            });
        }
        let header = Header {
            version: FORMAT_VERSION,
            author: FeedId(key.verifying_key().to_bytes()),
            sequence,
            previous,
            timestamp,
            // Bounded by MAX_CONTENT_LEN above.
            content_length: content.len() as u32,
            content_hash: *blake3::hash(content).as_bytes(),
        };
        let head = header.encode();
        let signature = key.sign(&signing_input(&head));
        let mut bytes = Vec::with_capacity(SIGNED_LEN + content.len());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&signature.to_bytes());
        bytes.extend_from_slice(content);
        Message::decode(bytes)
    }

    /// The encoded bytes, exactly as signed and received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Consumes the message, returning its encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The message id.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The author's feed id.
    pub fn author(&self) -> FeedId {
        self.header.author
    }

    /// Position in the author's feed.
    pub fn sequence(&self) -> u64 {
        self.header.sequence
    }

    /// The header bytes.
    pub fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        self.bytes[..HEADER_LEN]
            .try_into()
            .expect("decode guarantees at least SIGNED_LEN bytes")
    }

    /// Header plus signature: what the chain and the id cover.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..SIGNED_LEN]
    }

    /// The signature bytes.
    pub fn signature(&self) -> Signature {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(&self.bytes[HEADER_LEN..SIGNED_LEN]);
        Signature::from_bytes(&sig)
    }

    /// The content bytes, or `None` once the content has been dropped.
    pub fn content(&self) -> Option<&[u8]> {
        if self.bytes.len() == SIGNED_LEN && self.header.content_length != 0 {
            None
        } else {
            Some(&self.bytes[SIGNED_LEN..])
        }
    }

    /// A copy of this message without its content: the chain still
    /// verifies, but the content is gone.
    pub fn without_content(&self) -> Message {
        Message {
            bytes: self.bytes[..SIGNED_LEN].to_vec(),
            header: self.header.clone(),
            id: self.id,
        }
    }

    /// The JSON view for display and export (never signed or re-encoded).
    /// Content that is valid but has no decoded form here (a number beyond
    /// an `f64`, such as `1e400`) shows as `null`; bundles carry the exact
    /// bytes.
    pub fn to_json(&self) -> serde_json::Value {
        let content = self
            .content()
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok());
        serde_json::json!({
            "id": self.id,
            "author": self.header.author,
            "sequence": self.header.sequence,
            "previous": if self.header.previous.is_zero() { None } else { Some(self.header.previous) },
            "timestamp": self.header.timestamp,
            "content": content,
            "signature": B64.encode(self.signature().to_bytes()),
        })
    }
}

/// Encodes bytes as standard base64 (the encoding used in every text form).
pub fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn header_round_trips() {
        let msg = Message::sign(&key(), 3, MessageId([9; 32]), -5, br#"{"type":"x"}"#).unwrap();
        let decoded = Header::decode(msg.header_bytes());
        assert_eq!(&decoded, msg.header());
        assert_eq!(decoded.encode(), *msg.header_bytes());
        assert_eq!(decoded.sequence, 3);
        assert_eq!(decoded.timestamp, -5);
    }

    #[test]
    fn ids_round_trip_through_text() {
        let msg = Message::sign(&key(), 1, MessageId::default(), 0, br#"{"type":"x"}"#).unwrap();
        assert_eq!(MessageId::parse(&msg.id().to_string()).unwrap(), msg.id());
        assert_eq!(
            FeedId::parse(&msg.author().to_string()).unwrap(),
            msg.author()
        );
        assert!(FeedId::parse("@abc.ed25519").is_err());
        assert!(MessageId::parse(&msg.author().to_string()).is_err());
    }

    #[test]
    fn decode_rejects_bad_lengths() {
        let msg = Message::sign(&key(), 1, MessageId::default(), 0, br#"{"type":"x"}"#).unwrap();
        let mut bytes = msg.bytes().to_vec();
        bytes.push(b' ');
        assert!(matches!(
            Message::decode(bytes),
            Err(DecodeError::ContentLengthMismatch { .. })
        ));
        assert!(matches!(
            Message::decode(vec![0; 10]),
            Err(DecodeError::Truncated { len: 10 })
        ));
        assert!(matches!(
            Message::decode(vec![0; MAX_MESSAGE_LEN + 1]),
            Err(DecodeError::Oversize { .. })
        ));
    }

    #[test]
    fn dropping_content_keeps_the_id() {
        let msg = Message::sign(&key(), 1, MessageId::default(), 0, br#"{"type":"x"}"#).unwrap();
        let bare = msg.without_content();
        assert_eq!(bare.id(), msg.id());
        assert_eq!(bare.content(), None);
        let again = Message::decode(bare.bytes().to_vec()).unwrap();
        assert_eq!(again.id(), msg.id());
    }
}
