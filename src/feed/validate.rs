//! Message validation: pure functions over decoded messages and the feed's
//! current head. No I/O, no clocks. The store calls these on every message
//! that enters it, whether published here or received from a peer.

use std::collections::HashMap;
use std::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use thiserror::Error;

use crate::feed::message::{
    DecodeError, FORMAT_VERSION, FeedId, MAX_CONTENT_LEN, Message, MessageId, signing_input,
};

/// Largest number of signatures verified in one ed25519 batch. Larger
/// inputs are split. Batches of 256 ran about 35 % faster per signature
/// than batches of 64 on our machine (curve25519-dalek switches from
/// Straus to Pippenger multiplication above 190 points); a bad signature
/// costs re-checking at most this many one by one.
pub const VERIFY_BATCH: usize = 256;

/// The latest message of a feed, as far as this node knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedHead {
    /// Sequence of the latest message.
    pub sequence: u64,
    /// Id of the latest message.
    pub id: MessageId,
}

/// Why a message was rejected. Each variant is one distinct failure.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// The bytes do not frame a message at all.
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    /// The header's format version is not one this node understands.
    #[error("unknown message format version {0} (this node reads version {FORMAT_VERSION})")]
    UnknownVersion(u8),
    /// The ed25519 signature does not verify against the author's key.
    #[error("bad signature: the message was not signed by its author {author}, or was altered")]
    BadSignature {
        /// The claimed author.
        author: FeedId,
    },
    /// The sequence is not the one after the feed's head.
    #[error("sequence {got} does not follow the feed's head (expected {expected})")]
    BadSequence {
        /// The sequence that would follow the head.
        expected: u64,
        /// The sequence in the message.
        got: u64,
    },
    /// `previous` is not the id of the feed's latest message.
    #[error(
        "wrong previous: message points to {got:?} but the feed's latest message is {expected:?}"
    )]
    WrongPrevious {
        /// The id of the feed's head (zero for an empty feed).
        expected: MessageId,
        /// The id in the message.
        got: MessageId,
    },
    /// The content's blake3 does not match the header.
    #[error("content hash mismatch: the content is not the one the author signed")]
    ContentHashMismatch,
    /// The header declares more content than allowed.
    #[error("oversize: content of {len} bytes is over the limit of {MAX_CONTENT_LEN}")]
    Oversize {
        /// Declared content length.
        len: u32,
    },
    /// The content is not a UTF-8 JSON object with a string `type`.
    #[error("content is not a JSON object with a string `type`: {reason}")]
    BadContent {
        /// What exactly is wrong.
        reason: String,
    },
}

/// Checks everything about a message that needs neither the feed's state
/// nor the signature: version, size, content hash, and content shape.
/// A message whose content was dropped passes the content checks vacuously.
pub fn check_standalone(msg: &Message) -> Result<(), ValidationError> {
    check_standalone_with(msg, content_type).map(drop)
}

/// [`check_standalone`], also giving the content as decoded while checking
/// it (`None` when the content was dropped), so that the store can index
/// the message without reading its content again. The verdict is the same.
pub fn check_standalone_decoded(msg: &Message) -> Result<Option<DecodedContent>, ValidationError> {
    check_standalone_with(msg, content_decoded)
}

/// [`check_standalone`] with `check_content` as the content check; its
/// result is kept.
fn check_standalone_with<T>(
    msg: &Message,
    check_content: impl FnOnce(&[u8]) -> Result<T, ValidationError>,
) -> Result<Option<T>, ValidationError> {
    let header = msg.header();
    if header.version != FORMAT_VERSION {
        return Err(ValidationError::UnknownVersion(header.version));
    }
    if header.content_length as usize > MAX_CONTENT_LEN {
        return Err(ValidationError::Oversize {
            len: header.content_length,
        });
    }
    if let Some(content) = msg.content() {
        if blake3::hash(content).as_bytes() != &header.content_hash {
            return Err(ValidationError::ContentHashMismatch);
        }
        return check_content(content).map(Some);
    }
    Ok(None)
}

/// Checks that `msg` is the next message of a feed whose head is `head`
/// (`None` for a feed this node has nothing of).
pub fn check_chain(head: Option<&FeedHead>, msg: &Message) -> Result<(), ValidationError> {
    let (expected_seq, expected_prev) = match head {
        Some(h) => match h.sequence.checked_add(1) {
            Some(next) => (next, h.id),
            // A feed at the last possible sequence can never grow.
            None => {
                return Err(ValidationError::BadSequence {
                    expected: h.sequence,
                    got: msg.header().sequence,
                });
            }
        },
        None => (1, MessageId::default()),
    };
    let header = msg.header();
    if header.sequence != expected_seq {
        return Err(ValidationError::BadSequence {
            expected: expected_seq,
            got: header.sequence,
        });
    }
    if header.previous != expected_prev {
        return Err(ValidationError::WrongPrevious {
            expected: expected_prev,
            got: header.previous,
        });
    }
    Ok(())
}

/// Verifies one signature with `verify_strict`.
pub fn verify_signature(msg: &Message) -> Result<(), ValidationError> {
    let author = msg.author();
    let bad = ValidationError::BadSignature { author };
    let key = author.verifying_key().map_err(|_| bad.clone())?;
    key.verify_strict(&signing_input(msg.header_bytes()), &msg.signature())
        .map_err(|_| bad)
}

/// Full validation of one message against its feed's head.
pub fn validate(head: Option<&FeedHead>, msg: &Message) -> Result<(), ValidationError> {
    check_standalone(msg)?;
    check_chain(head, msg)?;
    verify_signature(msg)
}

/// Verifies the signatures of many messages, using ed25519 batch
/// verification in chunks of [`VERIFY_BATCH`].
///
/// Returns the index of the first message whose signature is bad. A chunk
/// that fails as a batch is re-checked one by one with `verify_strict`, so
/// the answer is exact. Keys and `R` points of small order, which
/// `verify_strict` rejects but a batch equation would accept, are screened
/// out before batching (see docs/protocol.md, "Signature").
pub fn verify_signatures(msgs: &[Message]) -> Result<(), (usize, ValidationError)> {
    let mut keys = HashMap::new();
    for (chunk_no, chunk) in msgs.chunks(VERIFY_BATCH).enumerate() {
        let base = chunk_no * VERIFY_BATCH;
        if !batch_ok(chunk, &mut keys) {
            for (i, msg) in chunk.iter().enumerate() {
                verify_signature(msg).map_err(|e| (base + i, e))?;
            }
        }
    }
    Ok(())
}

/// The cores this process may use, read once. `available_parallelism`
/// reads the cgroup's files on every call (three opens and seven reads on
/// Linux), and a node verifies every batch it receives: in the 100-node
/// mesh bench that was 5 % of all CPU.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// [`verify_signatures`] spread over the machine's cores when there are
/// enough messages to be worth a thread. Returns the earliest bad index.
pub fn verify_signatures_parallel(msgs: &[Message]) -> Result<(), (usize, ValidationError)> {
    /// Below this, a thread costs more than it saves.
    const PER_THREAD_MIN: usize = 256;
    let threads = cores();
    if threads < 2 || msgs.len() < 2 * PER_THREAD_MIN {
        return verify_signatures(msgs);
    }
    let chunk = msgs.len().div_ceil(threads);
    let results: Vec<Result<(), (usize, ValidationError)>> = std::thread::scope(|s| {
        let handles: Vec<_> = msgs
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                s.spawn(move || verify_signatures(part).map_err(|(i, e)| (n * chunk + i, e)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    // The earliest failure wins: everything before it is valid.
    results
        .into_iter()
        .filter_map(Result::err)
        .min_by_key(|(i, _)| *i)
        .map_or(Ok(()), Err)
}

/// Messages in order, with their signatures already checked: the first
/// bad one, if any, is recorded. Checking is pure CPU work, so it can run
/// apart from (and at the same time as) storing an earlier batch.
#[derive(Debug, Default)]
pub struct Checked {
    msgs: Vec<Message>,
    bad: Option<(usize, ValidationError)>,
}

impl Checked {
    /// Checks the signatures of `msgs` (in parallel when worth it).
    pub fn new(msgs: Vec<Message>) -> Checked {
        let bad = verify_signatures_parallel(&msgs).err();
        Checked { msgs, bad }
    }

    /// The messages, including any after a bad one.
    pub fn messages(&self) -> &[Message] {
        &self.msgs
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// True when there are no messages.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// True once a bad signature was seen: nothing more may be added.
    pub fn has_bad(&self) -> bool {
        self.bad.is_some()
    }

    /// Appends a later run; ignored once this one holds a bad signature,
    /// since nothing after it may be stored.
    pub fn extend(&mut self, other: Checked) {
        if self.bad.is_some() {
            return;
        }
        let base = self.msgs.len();
        self.bad = other.bad.map(|(i, e)| (base + i, e));
        self.msgs.extend(other.msgs);
    }

    /// Keeps the messages for which `keep` holds. Everything after a bad
    /// signature is cut off. The bad message itself is always kept, as the
    /// last one, and the bad mark points at it: it is what makes the store
    /// report the rejection (and the connection close), so it must not be
    /// filtered away with the messages the receiver does not want.
    pub fn retain(&mut self, mut keep: impl FnMut(&Message) -> bool) {
        let stop = self.bad.as_ref().map_or(self.msgs.len(), |(i, _)| *i);
        let mut kept = Vec::with_capacity(stop + 1);
        let mut rest = self.msgs.drain(..);
        for msg in rest.by_ref().take(stop) {
            if keep(&msg) {
                kept.push(msg);
            }
        }
        if let Some((i, _)) = &mut self.bad {
            *i = kept.len();
            kept.extend(rest.next());
        }
        drop(rest);
        self.msgs = kept;
    }

    /// The messages and the first bad signature.
    pub fn into_parts(self) -> (Vec<Message>, Option<(usize, ValidationError)>) {
        (self.msgs, self.bad)
    }
}

/// True when every signature in `chunk` verifies as a batch and passes the
/// screens that make batch acceptance agree with `verify_strict`.
fn batch_ok(chunk: &[Message], keys_seen: &mut HashMap<FeedId, Option<VerifyingKey>>) -> bool {
    let mut inputs = Vec::with_capacity(chunk.len());
    let mut sigs: Vec<Signature> = Vec::with_capacity(chunk.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(chunk.len());
    for msg in chunk {
        // Decompressing a key costs about a third of a verification, and a
        // batch usually holds runs of one feed: decompress each key once.
        let key = *keys_seen
            .entry(msg.author())
            .or_insert_with(|| msg.author().verifying_key().ok().filter(|k| !k.is_weak()));
        let Some(key) = key else {
            return false;
        };
        let sig = msg.signature();
        if !r_is_strict(&sig) {
            return false;
        }
        inputs.push(signing_input(msg.header_bytes()));
        sigs.push(sig);
        keys.push(key);
    }
    let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_ok()
}

/// `verify_strict` rejects an `R` that is non-canonical or of small order;
/// the batch equation alone would not.
///
/// Checked on the encoding, without decompressing `R` (the batch
/// decompresses it anyway, and a decompression costs about a sixth of a
/// verification): the points of small order are exactly the 8 of the
/// 8-torsion subgroup, so an `R` is of small order exactly when its
/// encoding is one of theirs, as libsodium checks it. An `R` that does not
/// decompress at all fails the batch, and the one-by-one check rejects it.
fn r_is_strict(sig: &Signature) -> bool {
    let bytes = sig.r_bytes();
    // Canonical: the y coordinate (sign bit cleared) is below p = 2^255 - 19.
    // The other non-canonical case, x = 0 with the sign bit set, only
    // occurs for y = ±1, which are small-order points rejected below.
    let y_at_least_p =
        bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed;
    !y_at_least_p && !small_order_encodings().contains(bytes)
}

/// The encodings of the 8 points of small order, each also with the sign
/// bit flipped (for x = 0 that is the non-canonical encoding of the same
/// point; otherwise it is its negation, also of small order).
fn small_order_encodings() -> &'static [[u8; 32]; 16] {
    static ENCODINGS: std::sync::OnceLock<[[u8; 32]; 16]> = std::sync::OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let mut out = [[0u8; 32]; 16];
        for (i, point) in curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .enumerate()
        {
            let bytes = point.compress().to_bytes();
            out[2 * i] = bytes;
            out[2 * i + 1] = bytes;
            out[2 * i + 1][31] ^= 0x80;
        }
        out
    })
}

/// Deepest nesting of arrays and objects that content may have; the
/// top-level object is level 1. A documented bound, low enough for every
/// common JSON library (some stop at 100 levels, serde_json at 128), so
/// that every implementation agrees on which content is valid
/// (docs/protocol.md, "Content").
pub const MAX_CONTENT_DEPTH: usize = 64;

/// Returns the `type` of a content object, checking that the content is
/// valid as docs/protocol.md ("Content") defines it: a UTF-8 JSON object
/// whose `type` is a string, whose top-level keys are unique (a duplicate
/// key would let two parsers disagree on the type), nested at most
/// [`MAX_CONTENT_DEPTH`] levels, with no lone surrogate escape in any
/// string. Numbers are checked as grammar only: `1e400` is valid.
pub fn content_type(content: &[u8]) -> Result<String, ValidationError> {
    let text = content_text(content)?;
    let shape: ContentShape<serde::de::IgnoredAny> = parse_content(text).map_err(bad_content)?;
    Ok(shape.kind)
}

/// Content that is valid (as [`content_type`] decides), decoded once: what
/// [`content_decoded`] and [`check_standalone_decoded`] give, for the typed
/// parse (`crate::content::parse_decoded`) to read without the text.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedContent {
    /// The length of the content in bytes.
    len: usize,
    /// The `type`.
    kind: String,
    /// The top-level object, or why this valid content has no decoded
    /// form (as [`content_object`] would say it).
    object: Result<serde_json::Map<String, serde_json::Value>, String>,
}

impl DecodedContent {
    /// The length of the content in bytes.
    pub fn content_len(&self) -> usize {
        self.len
    }

    /// The `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The `type` and the decoded top-level object, exactly as
    /// [`content_object`] gives them for the same content.
    pub fn into_object(
        self,
    ) -> Result<(String, serde_json::Map<String, serde_json::Value>), ValidationError> {
        self.object
            .map(|object| (self.kind, object))
            .map_err(bad_content)
    }
}

/// Checks content as [`content_type`] does (the same verdict and error)
/// and decodes it as [`content_object`] does, reading it once when it
/// decodes, as valid content nearly always does.
pub fn content_decoded(content: &[u8]) -> Result<DecodedContent, ValidationError> {
    let text = content_text(content)?;
    match parse_content::<serde_json::Value>(text) {
        // Decoding accepts less than the content rule's reading (it also
        // refuses numbers beyond `f64`, and nothing the rule refuses), so
        // content that decodes is valid.
        Ok(shape) => Ok(DecodedContent {
            len: content.len(),
            kind: shape.kind,
            object: Ok(shape.object),
        }),
        // Only the rule's own reading decides validity, and names the
        // error: it may differ from the decoder's for the same text.
        Err(reason) => {
            let shape: ContentShape<serde::de::IgnoredAny> =
                parse_content(text).map_err(bad_content)?;
            Ok(DecodedContent {
                len: content.len(),
                kind: shape.kind,
                object: Err(reason),
            })
        }
    }
}

/// Like [`content_type`], and also returns the decoded top-level object for
/// typed parsing. Valid content can still fail here: a number beyond what
/// an `f64` holds (such as `1e400`) has no decoded form. Such a message is
/// valid (it is stored and forwarded) but cannot be read as typed content.
pub fn content_object(
    content: &[u8],
) -> Result<(String, serde_json::Map<String, serde_json::Value>), ValidationError> {
    let text = content_text(content)?;
    let shape: ContentShape<serde_json::Value> = parse_content(text).map_err(bad_content)?;
    Ok((shape.kind, shape.object))
}

/// The content as text, checked for everything the JSON parser does not
/// check: UTF-8, the nesting bound and lone surrogate escapes.
fn content_text(content: &[u8]) -> Result<&str, ValidationError> {
    let text = std::str::from_utf8(content).map_err(|_| ValidationError::BadContent {
        reason: "not valid UTF-8".into(),
    })?;
    check_depth_and_escapes(text).map_err(|reason| ValidationError::BadContent { reason })?;
    Ok(text)
}

/// Parses checked content text as [`ContentShape`]; the error is the
/// parser's reason.
fn parse_content<V: MemberValue>(text: &str) -> Result<ContentShape<V>, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The error of content that is not valid, for `reason`.
fn bad_content(reason: String) -> ValidationError {
    ValidationError::BadContent { reason }
}

/// Scans JSON text for nesting deeper than [`MAX_CONTENT_DEPTH`] and for
/// `\u` escapes of a surrogate that is not half of a high-low pair. The
/// grammar itself is the parser's job; on text that is not JSON this may
/// pass or fail, and the parser then reports the grammar error.
fn check_depth_and_escapes(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let hex4 = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let is_high = |u: u16| (0xd800..0xdc00).contains(&u);
    let is_low = |u: u16| (0xdc00..0xe000).contains(&u);
    let lone = |unit: u16| format!("a lone surrogate escape \\u{unit:04x}");
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (false, b'{' | b'[') => {
                depth += 1;
                if depth > MAX_CONTENT_DEPTH {
                    return Err(format!(
                        "nested deeper than {MAX_CONTENT_DEPTH} levels of arrays and objects"
                    ));
                }
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            (_, b'"') => in_string = !in_string,
            (true, b'\\') => {
                let unit = (bytes.get(i + 1) == Some(&b'u'))
                    .then(|| hex4(i + 2))
                    .flatten();
                match unit {
                    Some(unit) if is_low(unit) => return Err(lone(unit)),
                    Some(unit) if is_high(unit) => {
                        let paired = bytes.get(i + 6..i + 8) == Some(b"\\u")
                            && hex4(i + 8).is_some_and(is_low);
                        if !paired {
                            return Err(lone(unit));
                        }
                        i += 12;
                    }
                    Some(_) => i += 6,
                    // Any other escape is two bytes (so `\"` does not end
                    // the string).
                    None => i += 2,
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The top-level shape of content: an object, unique keys, a string `type`.
/// Member values other than `type` are read as `V`: skipped as grammar
/// only ([`serde::de::IgnoredAny`]) to decide validity, or decoded.
struct ContentShape<V> {
    kind: String,
    /// Every member; one read as grammar only is kept as `null`, since the
    /// object is also the set of keys seen, to find a duplicate.
    object: serde_json::Map<String, serde_json::Value>,
    _values: std::marker::PhantomData<V>,
}

/// A member value as [`ContentShape`] reads it.
trait MemberValue: for<'de> Deserialize<'de> {
    /// The decoded value, or `null` if this reading does not decode.
    fn decoded(self) -> serde_json::Value;
}

impl MemberValue for serde::de::IgnoredAny {
    fn decoded(self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

impl MemberValue for serde_json::Value {
    fn decoded(self) -> serde_json::Value {
        self
    }
}

impl<'de, V: MemberValue> Deserialize<'de> for ContentShape<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ShapeVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: MemberValue> Visitor<'de> for ShapeVisitor<V> {
            type Value = ContentShape<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = serde_json::Map::new();
                let mut kind = None;
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = if key == "type" {
                        match map.next_value::<serde_json::Value>()? {
                            serde_json::Value::String(s) => {
                                kind = Some(s.clone());
                                serde_json::Value::String(s)
                            }
                            _ => return Err(serde::de::Error::custom("`type` is not a string")),
                        }
                    } else {
                        map.next_value::<V>()?.decoded()
                    };
                    object.insert(key, value);
                }
                let kind = kind.ok_or_else(|| serde::de::Error::custom("no `type` field"))?;
                Ok(ContentShape {
                    kind,
                    object,
                    _values: std::marker::PhantomData,
                })
            }
        }
        d.deserialize_map(ShapeVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// The check on `R`'s encoding agrees with decompressing it and asking
    /// whether the point is of small order, wherever it decompresses.
    fn agrees_with_decompression(bytes: [u8; 32]) {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&bytes);
        let by_encoding = r_is_strict(&Signature::from_bytes(&sig));
        let canonical = CompressedEdwardsY(bytes)
            .decompress()
            .is_some_and(|p| p.compress().to_bytes() == bytes);
        if let Some(point) = CompressedEdwardsY(bytes).decompress()
            && canonical
        {
            assert_eq!(by_encoding, !point.is_small_order(), "{bytes:02x?}");
        }
        if CompressedEdwardsY(bytes)
            .decompress()
            .is_some_and(|p| p.is_small_order())
        {
            assert!(!by_encoding, "small order accepted: {bytes:02x?}");
        }
    }

    #[test]
    fn small_order_r_is_found_by_its_encoding() {
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let bytes = point.compress().to_bytes();
            agrees_with_decompression(bytes);
            let mut flipped = bytes;
            flipped[31] ^= 0x80;
            agrees_with_decompression(flipped);
        }
        // Real signatures' R are accepted.
        for n in 0..50u8 {
            let m = Message::sign(
                &SigningKey::from_bytes(&[n; 32]),
                1,
                MessageId::default(),
                1,
                b"{\"type\":\"x\"}",
            )
            .unwrap();
            assert!(r_is_strict(&m.signature()));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_r_check_agrees_with_decompression(bytes in proptest::array::uniform32(proptest::prelude::any::<u8>())) {
            agrees_with_decompression(bytes);
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn first(content: &[u8]) -> Message {
        Message::sign(&key(), 1, MessageId::default(), 1000, content).unwrap()
    }

    /// Re-signs arbitrary header bytes so that only the field under test is wrong.
    fn resign(mut bytes: Vec<u8>) -> Message {
        use ed25519_dalek::Signer;
        let mut head = [0u8; crate::feed::message::HEADER_LEN];
        head.copy_from_slice(&bytes[..crate::feed::message::HEADER_LEN]);
        let sig = key().sign(&signing_input(&head));
        bytes[crate::feed::message::HEADER_LEN..crate::feed::message::SIGNED_LEN]
            .copy_from_slice(&sig.to_bytes());
        Message::decode(bytes).unwrap()
    }

    #[test]
    fn valid_first_and_second_message() {
        let m1 = first(br#"{"type":"about","name":"Ana"}"#);
        validate(None, &m1).unwrap();
        let head = FeedHead {
            sequence: 1,
            id: m1.id(),
        };
        let m2 = Message::sign(&key(), 2, m1.id(), 2000, br#"{"type":"x"}"#).unwrap();
        validate(Some(&head), &m2).unwrap();
    }

    #[test]
    fn bad_signature() {
        let mut bytes = first(br#"{"type":"x"}"#).into_bytes();
        bytes[crate::feed::message::HEADER_LEN + 3] ^= 1;
        let msg = Message::decode(bytes).unwrap();
        assert!(matches!(
            validate(None, &msg),
            Err(ValidationError::BadSignature { .. })
        ));
    }

    #[test]
    fn bad_sequence() {
        let msg = Message::sign(&key(), 2, MessageId::default(), 0, br#"{"type":"x"}"#).unwrap();
        assert_eq!(
            validate(None, &msg),
            Err(ValidationError::BadSequence {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn wrong_previous() {
        let m1 = first(br#"{"type":"x"}"#);
        let head = FeedHead {
            sequence: 1,
            id: m1.id(),
        };
        let m2 = Message::sign(&key(), 2, MessageId([5; 32]), 0, br#"{"type":"x"}"#).unwrap();
        assert!(matches!(
            validate(Some(&head), &m2),
            Err(ValidationError::WrongPrevious { .. })
        ));
    }

    #[test]
    fn content_hash_mismatch() {
        let mut bytes = first(br#"{"type":"x"}"#).into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = b'y';
        let msg = Message::decode(bytes).unwrap();
        assert_eq!(
            validate(None, &msg),
            Err(ValidationError::ContentHashMismatch)
        );
    }

    #[test]
    fn oversize_declared_content() {
        // A header declaring 20 KiB, signed, with content dropped.
        let mut bytes = first(br#"{"type":"x"}"#).into_bytes();
        bytes.truncate(crate::feed::message::SIGNED_LEN);
        bytes[81..85].copy_from_slice(&(20_000u32).to_be_bytes());
        let msg = resign(bytes);
        assert_eq!(
            validate(None, &msg),
            Err(ValidationError::Oversize { len: 20_000 })
        );
    }

    #[test]
    fn unknown_version() {
        let mut bytes = first(br#"{"type":"x"}"#).into_bytes();
        bytes[0] = 2;
        let msg = resign(bytes);
        assert_eq!(
            validate(None, &msg),
            Err(ValidationError::UnknownVersion(2))
        );
    }

    #[test]
    fn content_shapes() {
        for bad in [
            &br#"[1,2]"#[..],
            br#""type""#,
            br#"{"name":"x"}"#,
            br#"{"type":5}"#,
            br#"{"type":"a","type":"b"}"#,
            b"{\"type\":\"\xff\"}",
            br#"{"type":"x""#,
        ] {
            let msg = first(bad);
            assert!(
                matches!(
                    validate(None, &msg),
                    Err(ValidationError::BadContent { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(content_type(br#"{"type":"rsvp","x":[1]}"#).unwrap(), "rsvp");
    }

    /// The content rule of docs/protocol.md at every depth: numbers are
    /// grammar only, strings must be Unicode (paired surrogates), nesting is
    /// bounded (issue 14, defect 9).
    #[test]
    fn content_rule_numbers_surrogates_and_depth() {
        let nested = |levels: usize| {
            let inner = levels - 1;
            format!(
                r#"{{"type":"x","n":{}{}}}"#,
                "[".repeat(inner),
                "]".repeat(inner)
            )
        };
        for good in [
            r#"{"type":"x","n":1e400}"#.to_owned(),
            r#"{"type":"x","n":[-1E-400,123456789012345678901234567890]}"#.to_owned(),
            r#"{"type":"x","s":"\ud83c\udf72 and \u00e9 and \"\\u\""}"#.to_owned(),
            r#"{"type":"x","s":"[[[[{{{{"}"#.to_owned(),
            nested(MAX_CONTENT_DEPTH),
        ] {
            assert_eq!(content_type(good.as_bytes()), Ok("x".into()), "{good}");
        }
        // Valid, but a number beyond f64 has no decoded form.
        assert!(content_object(br#"{"type":"x","n":1e400}"#).is_err());
        assert!(content_object(nested(MAX_CONTENT_DEPTH).as_bytes()).is_ok());
        for bad in [
            r#"{"type":"x","s":"\ud800"}"#.to_owned(),
            r#"{"type":"x","s":["a\udc00b"]}"#.to_owned(),
            r#"{"type":"x","s":"\ud800\u0041"}"#.to_owned(),
            r#"{"type":"x","\ud800":1}"#.to_owned(),
            r#"{"type":"\ud800"}"#.to_owned(),
            nested(MAX_CONTENT_DEPTH + 1),
            nested(200),
        ] {
            assert!(
                matches!(
                    content_type(bad.as_bytes()),
                    Err(ValidationError::BadContent { .. })
                ),
                "{bad}"
            );
        }
    }

    /// Reading content once ([`content_decoded`]) gives the verdict and
    /// error of [`content_type`] and the object of [`content_object`],
    /// also where the decoder and the content rule disagree or fail at
    /// different places.
    #[test]
    fn decoding_once_agrees_with_checking_then_decoding() {
        for text in [
            r#"{"type":"x","a":"b","c":[1,{"d":null}]}"#,
            r#"{"type":"x","n":1e400}"#,
            r#"{"type":"x","n":1e400,"type":"y"}"#,
            r#"{"type":"x","n":1e400,"m":tru}"#,
            r#"{"n":1e400}"#,
            r#"{"n":1e400,"type":5}"#,
            r#"{"type":"x","a":1,"a":2}"#,
            r#"{"type":"x","a":[1,]}"#,
            r#"{"type":"x","a":01}"#,
            r#"{"type":"x","a":"\q"}"#,
            r#"{"type":"x","a":"\t"}"#,
            "{\"type\":\"x\",\"a\":\"tab\there\"}",
            r#"{"type":"x"} x"#,
            r#"{"type":"x","a":-}"#,
            r#"[]"#,
            "",
        ] {
            let once = content_decoded(text.as_bytes());
            assert_eq!(
                once.as_ref()
                    .map(|d| d.kind().to_owned())
                    .map_err(Clone::clone),
                content_type(text.as_bytes()),
                "{text}"
            );
            if let Ok(decoded) = once {
                assert_eq!(decoded.content_len(), text.len());
                assert_eq!(
                    decoded.into_object(),
                    content_object(text.as_bytes()),
                    "{text}"
                );
            }
        }
    }

    proptest::proptest! {
        /// As above, over text made of JSON's tokens.
        #[test]
        fn decoding_once_agrees_on_any_tokens(
            tokens in proptest::collection::vec(proptest::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "\"type\"", "\"x\"", "\"a\"", "1", "1e400",
                "-0.5", "null", "true", " ", "\"\\u00e9\"", "\"\\n\"",
            ]), 0..24)
        ) {
            let text = format!("{{\"type\":\"t\",{}", tokens.concat());
            let once = content_decoded(text.as_bytes());
            proptest::prop_assert_eq!(
                once.as_ref().map(|d| d.kind().to_owned()).map_err(Clone::clone),
                content_type(text.as_bytes())
            );
            if let Ok(decoded) = once {
                proptest::prop_assert_eq!(decoded.into_object(), content_object(text.as_bytes()));
            }
        }
    }

    #[test]
    fn dropped_content_still_validates() {
        let msg = first(br#"{"type":"x"}"#).without_content();
        validate(None, &msg).unwrap();
    }

    /// A chain of `n` messages by [`key`].
    fn chain(n: u64) -> Vec<Message> {
        let mut prev = MessageId::default();
        (1..=n)
            .map(|seq| {
                let m = Message::sign(&key(), seq, prev, 0, br#"{"type":"x"}"#).unwrap();
                prev = m.id();
                m
            })
            .collect()
    }

    /// Flips a bit of the signature of `msg`.
    fn forge(msg: &Message) -> Message {
        let mut bytes = msg.bytes().to_vec();
        bytes[crate::feed::message::HEADER_LEN + 5] ^= 0x04;
        Message::decode(bytes).unwrap()
    }

    #[test]
    fn retain_keeps_the_bad_message_and_its_mark() {
        let mut msgs = chain(5);
        msgs[2] = forge(&msgs[2]);
        let bad_id = msgs[2].id();
        // Whether the filter wants it or not, the bad message stays, last,
        // and the mark points at it (not past the end).
        for keep_all in [true, false] {
            let mut checked = Checked::new(msgs.clone());
            assert!(checked.has_bad());
            checked.retain(|m| keep_all || m.sequence() != 3);
            let (kept, bad) = checked.into_parts();
            let (i, error) = bad.expect("the bad mark survives retain");
            assert_eq!(kept.len(), 3, "two before it, and itself");
            assert!(i < kept.len(), "the mark points at a message");
            assert_eq!(kept[i].id(), bad_id);
            assert!(matches!(error, ValidationError::BadSignature { .. }));
        }
        // Dropping the messages before it moves the mark with them.
        let mut checked = Checked::new(msgs);
        checked.retain(|m| m.sequence() > 2);
        let (kept, bad) = checked.into_parts();
        assert_eq!(bad.map(|(i, _)| i), Some(0));
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn batch_finds_the_bad_one() {
        let mut msgs = Vec::new();
        let mut prev = MessageId::default();
        for seq in 1..=150u64 {
            let m = Message::sign(&key(), seq, prev, 0, br#"{"type":"x"}"#).unwrap();
            prev = m.id();
            msgs.push(m);
        }
        verify_signatures(&msgs).unwrap();
        let mut bytes = msgs[100].bytes().to_vec();
        bytes[10] ^= 0x40;
        msgs[100] = Message::decode(bytes).unwrap();
        assert_eq!(verify_signatures(&msgs).unwrap_err().0, 100);
    }
}
