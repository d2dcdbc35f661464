//! Generates the message test vectors in `tests/vectors/`:
//!
//! - `messages.json`: valid messages, each with the secret key seed and
//!   inputs it was signed from and the exact expected bytes and ids;
//! - `invalid.json`: encoded messages that validation must reject, each with
//!   the feed head to validate against and the expected error kind.
//!
//! Run with `cargo run --example gen_vectors`. The output is deterministic
//! (ed25519 signing is deterministic and every key, nonce and input here is
//! fixed), so running it again must not change the files. The format is
//! described in `docs/protocol.md`, section "Messages".
//!
//! A few invalid vectors need signatures that no ordinary signer produces
//! (small-order or mixed-order points, an unreduced `s`). Those are built
//! here from the raw ed25519 equations, with a small SHA-512 of our own
//! because the crate has no direct dependency on one; it is checked against
//! a published digest and against real signatures before use.

use std::path::Path;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use potluck::feed::message::{
    FORMAT_VERSION, FeedId, HEADER_LEN, Header, MAX_CONTENT_LEN, Message, MessageId, SIGNED_LEN,
    signing_input,
};
use potluck::feed::validate::{FeedHead, ValidationError, validate, verify_signatures};
use serde::Serialize;

/// 2026-01-01T00:00:00Z in milliseconds.
const NEW_YEAR_2026: i64 = 1_767_225_600_000;

/// The order of the ed25519 base point, little-endian.
const L_BYTES: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// A deterministic 32-byte seed from a label.
fn seed(label: &str) -> [u8; 32] {
    *blake3::hash(label.as_bytes()).as_bytes()
}

/// A deterministic scalar from a label (for crafted keys and nonces).
fn scalar(label: &str) -> Scalar {
    Scalar::from_bytes_mod_order(seed(label))
}

/// A feed head as written in the vector files.
#[derive(Serialize)]
struct HeadVector {
    sequence: u64,
    id: String,
}

fn head_vector(head: Option<&FeedHead>) -> Option<HeadVector> {
    head.map(|h| HeadVector {
        sequence: h.sequence,
        id: h.id.to_string(),
    })
}

/// One entry of `messages.json` (fields are written in this order).
#[derive(Serialize)]
struct ValidVector {
    name: &'static str,
    description: &'static str,
    seed_hex: String,
    sequence: u64,
    previous: Option<String>,
    timestamp: i64,
    content: String,
    content_dropped: bool,
    head: Option<HeadVector>,
    header_hex: String,
    signature_hex: String,
    message_hex: String,
    id: String,
    author: String,
}

/// One entry of `invalid.json`.
#[derive(Serialize)]
struct InvalidVector {
    name: &'static str,
    description: String,
    message_hex: String,
    head: Option<HeadVector>,
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plain_verify_accepts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mixed_order: Option<bool>,
}

// ---------------------------------------------------------------------------
// Valid messages

struct ValidCase {
    name: &'static str,
    description: &'static str,
    seed_label: &'static str,
    sequence: u64,
    previous: Option<MessageId>,
    timestamp: i64,
    content: String,
    content_dropped: bool,
    head: Option<FeedHead>,
}

fn valid_vector(case: &ValidCase) -> (ValidVector, Message) {
    let seed = seed(case.seed_label);
    let key = SigningKey::from_bytes(&seed);
    let full = Message::sign(
        &key,
        case.sequence,
        case.previous.unwrap_or_default(),
        case.timestamp,
        case.content.as_bytes(),
    )
    .expect("vector content is within the size limit");
    let msg = if case.content_dropped {
        full.without_content()
    } else {
        full.clone()
    };
    validate(case.head.as_ref(), &msg).expect("valid vector must validate");
    let vector = ValidVector {
        name: case.name,
        description: case.description,
        seed_hex: hex::encode(seed),
        sequence: case.sequence,
        previous: case.previous.map(|p| hex::encode(p.0)),
        timestamp: case.timestamp,
        content: case.content.clone(),
        content_dropped: case.content_dropped,
        head: head_vector(case.head.as_ref()),
        header_hex: hex::encode(msg.header_bytes()),
        signature_hex: hex::encode(msg.signature().to_bytes()),
        message_hex: hex::encode(msg.bytes()),
        id: msg.id().to_string(),
        author: msg.author().to_string(),
    };
    (vector, full)
}

fn valid_cases() -> (Vec<ValidVector>, Message) {
    let mut out = Vec::new();
    let author_a = "potluck test vector seed A";
    let author_b = "potluck test vector seed B";

    let first = ValidCase {
        name: "first_message",
        description: "The first message of a feed: sequence 1, previous all zero (null).",
        seed_label: author_a,
        sequence: 1,
        previous: None,
        timestamp: NEW_YEAR_2026,
        content: r#"{"type":"about","name":"Ana"}"#.into(),
        content_dropped: false,
        head: None,
    };
    let (v, m1) = valid_vector(&first);
    out.push(v);

    let head1 = FeedHead {
        sequence: 1,
        id: m1.id(),
    };
    let second_content = r#"{"type":"event","title":"Soup night","start":"2026-01-10T18:00:00+01:00","place":"Community hall"}"#;
    let second = ValidCase {
        name: "second_message",
        description: "The second message of the same feed, chained to first_message.",
        seed_label: author_a,
        sequence: 2,
        previous: Some(m1.id()),
        timestamp: NEW_YEAR_2026 + 60_000,
        content: second_content.into(),
        content_dropped: false,
        head: Some(head1),
    };
    let (v, m2) = valid_vector(&second);
    out.push(v);

    let third = ValidCase {
        name: "non_ascii_content",
        description: "Content with multi-byte UTF-8 (2, 3 and 4 byte sequences), \
                      signed and hashed as raw UTF-8 bytes, never \\u-escaped.",
        seed_label: author_a,
        sequence: 3,
        previous: Some(m2.id()),
        timestamp: NEW_YEAR_2026 + 120_000,
        content: r#"{"type":"event","title":"Café Ümlaut – 🍲 potluck","place":"Kraków, ul. Św. Marka","note":"日本語もOK"}"#.into(),
        content_dropped: false,
        head: Some(FeedHead {
            sequence: 2,
            id: m2.id(),
        }),
    };
    let (v, m3) = valid_vector(&third);
    out.push(v);

    let negative = ValidCase {
        name: "negative_timestamp",
        description: "A first message from another author with a timestamp before the \
                      Unix epoch (1969-12-31T00:00:00Z), encoded as two's complement i64.",
        seed_label: author_b,
        sequence: 1,
        previous: None,
        timestamp: -86_400_000,
        content: r#"{"type":"about","name":"Grace"}"#.into(),
        content_dropped: false,
        head: None,
    };
    let (v, b1) = valid_vector(&negative);
    out.push(v);

    let whitespace = ValidCase {
        name: "content_kept_verbatim",
        description: "Content with insignificant whitespace and a trailing newline: the bytes \
                      are hashed exactly as written, never re-serialized.",
        seed_label: author_b,
        sequence: 2,
        previous: Some(b1.id()),
        timestamp: -86_400_000 + 1,
        content: " { \"type\" : \"note\" ,\n   \"text\" : \"kept byte for byte\" }\n".into(),
        content_dropped: false,
        head: Some(FeedHead {
            sequence: 1,
            id: b1.id(),
        }),
    };
    let (v, b2) = valid_vector(&whitespace);
    out.push(v);

    // Comments (docs/content.md, "Comments"): B answers A's event, then
    // A, its organizer, hides B's comment.
    let comment = ValidCase {
        name: "comment_reply",
        description: "A comment on second_message's event (as content v1 reads it), \
                      naming what its author had seen and answering it; markup is plain \
                      text, kept as written.",
        seed_label: author_b,
        sequence: 3,
        previous: Some(b2.id()),
        timestamp: NEW_YEAR_2026 + 180_000,
        content: format!(
            r#"{{"type":"comment","event":"{event}","reply":"{event}","seen":["{event}"],"text":"I'll bring <b>bread</b>: https://example.org/bread"}}"#,
            event = m2.id()
        ),
        content_dropped: false,
        head: Some(FeedHead {
            sequence: 2,
            id: b2.id(),
        }),
    };
    let (v, b3) = valid_vector(&comment);
    out.push(v);
    let hide = ValidCase {
        name: "comment_hide",
        description: "The organizer of second_message's event hides comment_reply on it.",
        seed_label: author_a,
        sequence: 4,
        previous: Some(m3.id()),
        timestamp: NEW_YEAR_2026 + 240_000,
        content: format!(
            r#"{{"type":"comment-hide","event":"{}","comment":"{}","hidden":true}}"#,
            m2.id(),
            b3.id()
        ),
        content_dropped: false,
        head: Some(FeedHead {
            sequence: 3,
            id: m3.id(),
        }),
    };
    out.push(valid_vector(&hide).0);

    let dropped = ValidCase {
        name: "content_dropped",
        description: "second_message with its content dropped: header and signature only. \
                      The id is the same as second_message's and it still validates.",
        content_dropped: true,
        ..second
    };
    let (v, dropped_full) = valid_vector(&dropped);
    assert_eq!(dropped_full.id(), m2.id());
    out.push(v);

    // Exactly MAX_CONTENT_LEN bytes of content: the largest valid message.
    let prefix = r#"{"type":"note","text":""#;
    let suffix = r#""}"#;
    let pad = "x".repeat(MAX_CONTENT_LEN - prefix.len() - suffix.len());
    let largest = ValidCase {
        name: "largest_content",
        description: "Content of exactly 16384 bytes, the largest allowed.",
        seed_label: author_b,
        sequence: 1,
        previous: None,
        timestamp: 0,
        content: format!("{prefix}{pad}{suffix}"),
        content_dropped: false,
        head: None,
    };
    assert_eq!(largest.content.len(), MAX_CONTENT_LEN);
    out.push(valid_vector(&largest).0);

    // The content rule below the top level (docs/protocol.md, "Content"):
    // numbers are grammar only, surrogate pairs are fine, and nesting up to
    // the documented bound is valid. Each is a first message of its own
    // author, so it validates against an empty feed.
    let depth = potluck::feed::validate::MAX_CONTENT_DEPTH;
    let content_rules: [(&'static str, &'static str, &'static str, String); 3] = [
        (
            "content_number_beyond_double",
            "A number (1e400) beyond what an IEEE 754 double holds: numbers are checked as \
             grammar only, never converted, so it is valid.",
            "potluck test vector seed C",
            r#"{"type":"note","n":1e400,"m":-123456789012345678901234567890.5e-999}"#.into(),
        ),
        (
            "content_surrogate_pair",
            "A \\u-escaped surrogate pair (U+1F372) in a nested string: a pair is one \
             character, valid.",
            "potluck test vector seed D",
            r#"{"type":"note","text":["soup \ud83c\udf72"]}"#.into(),
        ),
        (
            "content_nesting_at_limit",
            "Arrays nested inside the top-level object to exactly 64 levels in all, the \
             deepest allowed.",
            "potluck test vector seed E",
            format!(
                r#"{{"type":"note","deep":{}{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            ),
        ),
    ];
    for (name, description, seed_label, content) in content_rules {
        out.push(
            valid_vector(&ValidCase {
                name,
                description,
                seed_label,
                sequence: 1,
                previous: None,
                timestamp: NEW_YEAR_2026,
                content,
                content_dropped: false,
                head: None,
            })
            .0,
        );
    }

    (out, m1)
}

// ---------------------------------------------------------------------------
// Invalid messages

struct Invalid {
    name: &'static str,
    description: String,
    bytes: Vec<u8>,
    head: Option<FeedHead>,
    error: &'static str,
    decode_error: Option<&'static str>,
    /// For signature cases: does the plain (non-strict) RFC 8032 check, as in
    /// `ed25519_dalek::VerifyingKey::verify`, accept it?
    plain_verify_accepts: Option<bool>,
    /// Mixed-order points: rejected by `verify_strict`, but a cofactored
    /// verifier accepts and a batch may accept.
    mixed_order: bool,
}

impl Invalid {
    fn new(
        name: &'static str,
        description: impl Into<String>,
        bytes: Vec<u8>,
        head: Option<FeedHead>,
        error: &'static str,
    ) -> Invalid {
        Invalid {
            name,
            description: description.into(),
            bytes,
            head,
            error,
            decode_error: None,
            plain_verify_accepts: None,
            mixed_order: false,
        }
    }
}

fn error_kind(err: &ValidationError) -> &'static str {
    match err {
        ValidationError::Malformed(_) => "Malformed",
        ValidationError::UnknownVersion(_) => "UnknownVersion",
        ValidationError::BadSignature { .. } => "BadSignature",
        ValidationError::BadSequence { .. } => "BadSequence",
        ValidationError::WrongPrevious { .. } => "WrongPrevious",
        ValidationError::ContentHashMismatch => "ContentHashMismatch",
        ValidationError::Oversize { .. } => "Oversize",
        ValidationError::BadContent { .. } => "BadContent",
    }
}

fn decode_kind(err: &potluck::feed::message::DecodeError) -> &'static str {
    use potluck::feed::message::DecodeError as D;
    match err {
        D::Truncated { .. } => "Truncated",
        D::Oversize { .. } => "Oversize",
        D::ContentLengthMismatch { .. } => "ContentLengthMismatch",
        D::BadAuthorKey => "BadAuthorKey",
        D::BadText { .. } => "BadText",
    }
}

/// A header for `content`, version 1, by `author`.
fn header(
    author: [u8; 32],
    sequence: u64,
    previous: [u8; 32],
    timestamp: i64,
    content: &[u8],
) -> Header {
    Header {
        version: FORMAT_VERSION,
        author: FeedId(author),
        sequence,
        previous: MessageId(previous),
        timestamp,
        content_length: content.len() as u32,
        content_hash: *blake3::hash(content).as_bytes(),
    }
}

fn assemble(header: &[u8; HEADER_LEN], signature: &[u8; 64], content: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNED_LEN + content.len());
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(signature);
    bytes.extend_from_slice(content);
    bytes
}

/// Signs `header` normally and attaches `content`.
fn signed(key: &SigningKey, header: &Header, content: &[u8]) -> Vec<u8> {
    let head = header.encode();
    let sig = key.sign(&signing_input(&head)).to_bytes();
    assemble(&head, &sig, content)
}

/// An ed25519 signature built from the raw equation `s = r + k*a` with
/// `k = SHA-512(R_bytes || A_bytes || M) mod L`; `r_bytes` need not be the
/// encoding of `r*B`, which is the point of it.
fn raw_signature(a: Scalar, a_bytes: [u8; 32], r: Scalar, r_bytes: [u8; 32], m: &[u8]) -> [u8; 64] {
    let k = challenge(&r_bytes, &a_bytes, m);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn challenge(r_bytes: &[u8; 32], a_bytes: &[u8; 32], m: &[u8]) -> Scalar {
    let mut input = Vec::with_capacity(64 + m.len());
    input.extend_from_slice(r_bytes);
    input.extend_from_slice(a_bytes);
    input.extend_from_slice(m);
    Scalar::from_bytes_mod_order_wide(&sha512(&input))
}

fn compress(p: &EdwardsPoint) -> [u8; 32] {
    p.compress().to_bytes()
}

/// `s + L` as 32 little-endian bytes (fits: s < L < 2^253).
fn add_l(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(L_BYTES[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn invalid_cases(m1: &Message) -> Vec<Invalid> {
    let key = SigningKey::from_bytes(&seed("potluck test vector seed A"));
    let a = key.to_scalar();
    let author = key.verifying_key().to_bytes();
    let zero = [0u8; 32];
    let ok = br#"{"type":"about","name":"Ana"}"#;
    let first = m1.bytes().to_vec();
    let head1 = FeedHead {
        sequence: 1,
        id: m1.id(),
    };
    let b = ED25519_BASEPOINT_POINT;
    let identity = CompressedEdwardsY::identity().to_bytes();
    let mut out = Vec::new();

    // --- framing -----------------------------------------------------------
    let mut c = Invalid::new(
        "truncated",
        "180 bytes: one byte short of a header and signature.",
        first[..SIGNED_LEN - 1].to_vec(),
        None,
        "Malformed",
    );
    c.decode_error = Some("Truncated");
    out.push(c);

    let mut bytes = first.clone();
    bytes.push(b' ');
    let mut c = Invalid::new(
        "content_longer_than_declared",
        "first_message with one extra byte after the content.",
        bytes,
        None,
        "Malformed",
    );
    c.decode_error = Some("ContentLengthMismatch");
    out.push(c);

    let mut c = Invalid::new(
        "content_shorter_than_declared",
        "first_message with the last content byte cut off (partial content is not \
         dropped content).",
        first[..first.len() - 1].to_vec(),
        None,
        "Malformed",
    );
    c.decode_error = Some("ContentLengthMismatch");
    out.push(c);

    let big = vec![b' '; MAX_CONTENT_LEN + 1];
    let mut c = Invalid::new(
        "message_too_long",
        "A correctly signed message carrying 16385 content bytes: the encoding is longer \
         than 181 + 16384 bytes, so it fails framing (Malformed), before any field is judged.",
        signed(&key, &header(author, 1, zero, 0, &big), &big),
        None,
        "Malformed",
    );
    c.decode_error = Some("Oversize");
    out.push(c);

    // --- version, size -----------------------------------------------------
    let mut h = header(author, 1, zero, NEW_YEAR_2026, ok);
    h.version = 2;
    out.push(Invalid::new(
        "unknown_version",
        "Version byte 2, otherwise correct and correctly signed.",
        signed(&key, &h, ok),
        None,
        "UnknownVersion",
    ));

    let mut h = header(author, 1, zero, NEW_YEAR_2026, ok);
    h.content_length = MAX_CONTENT_LEN as u32 + 1;
    out.push(Invalid::new(
        "oversize_declared",
        "Content dropped; the correctly signed header declares 16385 content bytes.",
        signed(&key, &h, &[]),
        None,
        "Oversize",
    ));

    // --- content -----------------------------------------------------------
    let mut bytes = first.clone();
    let last = bytes.len() - 2;
    bytes[last] = b'O';
    out.push(Invalid::new(
        "content_hash_mismatch",
        "first_message with one content byte changed (\"Ana\" -> \"AnO\"); the signature \
         over the header is still valid.",
        bytes,
        None,
        "ContentHashMismatch",
    ));

    let too_deep = format!(
        r#"{{"type":"note","deep":{}{}}}"#,
        "[".repeat(potluck::feed::validate::MAX_CONTENT_DEPTH),
        "]".repeat(potluck::feed::validate::MAX_CONTENT_DEPTH)
    );
    let bad_contents: [(&'static str, &'static str, &[u8]); 14] = [
        (
            "content_empty",
            "Zero-length content: present (not dropped) and not JSON.",
            b"",
        ),
        ("content_not_object", "A JSON array.", b"[1,2]"),
        (
            "content_no_type",
            "An object without `type`.",
            br#"{"name":"x"}"#,
        ),
        (
            "content_type_not_string",
            "`type` is a number.",
            br#"{"type":5}"#,
        ),
        ("content_type_null", "`type` is null.", br#"{"type":null}"#),
        (
            "content_duplicate_type",
            "`type` twice, the second spelled with a \\u escape.",
            br#"{"type":"about","typ\u0065":"event"}"#,
        ),
        (
            "content_duplicate_key",
            "A top-level key other than `type` twice.",
            br#"{"type":"about","name":"Ana","name":"Bob"}"#,
        ),
        (
            "content_not_utf8",
            "A 0xff byte inside a string.",
            b"{\"type\":\"\xff\"}",
        ),
        (
            "content_byte_order_mark",
            "A UTF-8 byte order mark before the object.",
            b"\xef\xbb\xbf{\"type\":\"x\"}",
        ),
        (
            "content_trailing_data",
            "A second JSON value after the object.",
            br#"{"type":"x"} {}"#,
        ),
        (
            "content_lone_surrogate",
            "A \\u-escaped lone high surrogate in a member value.",
            br#"{"type":"note","text":"\ud800"}"#,
        ),
        (
            "content_lone_low_surrogate_nested",
            "A \\u-escaped lone low surrogate in a string nested in an array.",
            br#"{"type":"note","list":[{"text":"a\udc00b"}]}"#,
        ),
        (
            "content_high_surrogate_then_other_escape",
            "A high surrogate followed by an escape that is not a low surrogate.",
            br#"{"type":"note","text":"\ud800\u0041"}"#,
        ),
        (
            "content_nesting_too_deep",
            "Arrays nested inside the top-level object to 65 levels in all, one more than \
             allowed.",
            too_deep.as_bytes(),
        ),
    ];
    for (name, description, content) in bad_contents {
        out.push(Invalid::new(
            name,
            description,
            signed(
                &key,
                &header(author, 1, zero, NEW_YEAR_2026, content),
                content,
            ),
            None,
            "BadContent",
        ));
    }

    // --- chain -------------------------------------------------------------
    out.push(Invalid::new(
        "first_not_sequence_1",
        "Sequence 2 with previous all zero, for an empty feed.",
        signed(&key, &header(author, 2, zero, NEW_YEAR_2026, ok), ok),
        None,
        "BadSequence",
    ));
    out.push(Invalid::new(
        "sequence_gap",
        "Sequence 3, previous = first_message, for a feed whose head is first_message.",
        signed(&key, &header(author, 3, m1.id().0, NEW_YEAR_2026, ok), ok),
        Some(head1),
        "BadSequence",
    ));
    out.push(Invalid::new(
        "sequence_zero",
        "Sequence 0 never follows anything.",
        signed(&key, &header(author, 0, zero, NEW_YEAR_2026, ok), ok),
        None,
        "BadSequence",
    ));
    out.push(Invalid::new(
        "existing_sequence",
        "A different message at sequence 1, for a feed whose head is first_message. \
         validate() reports BadSequence; a node additionally records a fork proof.",
        signed(&key, &header(author, 1, zero, NEW_YEAR_2026 + 1, ok), ok),
        Some(head1),
        "BadSequence",
    ));
    out.push(Invalid::new(
        "first_with_previous",
        "Sequence 1 whose previous is not all zero.",
        signed(&key, &header(author, 1, m1.id().0, NEW_YEAR_2026, ok), ok),
        None,
        "WrongPrevious",
    ));
    let mut other = m1.id().0;
    other[0] ^= 1;
    out.push(Invalid::new(
        "wrong_previous",
        "Sequence 2 whose previous differs from first_message's id in one bit.",
        signed(&key, &header(author, 2, other, NEW_YEAR_2026, ok), ok),
        Some(head1),
        "WrongPrevious",
    ));

    // --- signature ---------------------------------------------------------
    let mut bytes = first.clone();
    bytes[HEADER_LEN + 3] ^= 1;
    out.push(Invalid::new(
        "signature_bit_flipped",
        "first_message with one bit of R flipped.",
        bytes,
        None,
        "BadSignature",
    ));

    let mut bytes = first.clone();
    bytes[80] ^= 1; // low byte of the timestamp
    out.push(Invalid::new(
        "header_altered",
        "first_message with its timestamp changed by one millisecond after signing.",
        bytes,
        None,
        "BadSignature",
    ));

    let h = header(author, 1, zero, NEW_YEAR_2026, ok).encode();
    let sig = key.sign(&h).to_bytes();
    out.push(Invalid::new(
        "signed_without_domain_tag",
        "Signed over the bare header, without the `potluck-message-v1:` prefix.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    ));

    let other_key = SigningKey::from_bytes(&seed("potluck test vector seed B"));
    let sig = other_key.sign(&signing_input(&h)).to_bytes();
    out.push(Invalid::new(
        "signed_by_someone_else",
        "Author A in the header, signed with author B's key.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    ));

    // An author field that is not a curve point.
    let mut not_point = [0u8; 32];
    not_point[0] = (2u8..)
        .find(|&y| {
            let mut enc = [0u8; 32];
            enc[0] = y;
            CompressedEdwardsY(enc).decompress().is_none()
        })
        .expect("some small y is not on the curve");
    let h = header(not_point, 1, zero, NEW_YEAR_2026, ok).encode();
    let sig = key.sign(&signing_input(&h)).to_bytes();
    out.push(Invalid::new(
        "author_not_a_point",
        format!(
            "The author field (y = {}) does not decode to a curve point.",
            not_point[0]
        ),
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    ));

    // s + L: the same signature with an unreduced scalar.
    let h = header(author, 1, zero, NEW_YEAR_2026, ok).encode();
    let mut sig = key.sign(&signing_input(&h)).to_bytes();
    let s_plus_l = add_l(&sig[32..]);
    sig[32..].copy_from_slice(&s_plus_l);
    let mut c = Invalid::new(
        "s_not_reduced",
        "A valid signature with L added to s (s >= L). Verifiers that reduce s mod L \
         instead of rejecting it accept this.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(false);
    out.push(c);

    // Small-order author: A = identity, R = r*B, s = r verifies for any message
    // under the plain equation [s]B = R + [k]A.
    let h = header(identity, 1, zero, NEW_YEAR_2026, ok).encode();
    let r = scalar("nonce small-order author");
    let sig = raw_signature(
        Scalar::ZERO,
        identity,
        r,
        compress(&(r * b)),
        &signing_input(&h),
    );
    let mut c = Invalid::new(
        "small_order_author",
        "The author is the identity point (small order). The signature satisfies the \
         plain equation for any message, so verify_strict rejects small-order keys.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(true);
    out.push(c);

    // Small-order R: R = identity, s = k*a.
    let h = header(author, 1, zero, NEW_YEAR_2026, ok).encode();
    let sig = raw_signature(a, author, Scalar::ZERO, identity, &signing_input(&h));
    let mut c = Invalid::new(
        "small_order_r",
        "R is the identity point (small order), s = k*a: satisfies the plain equation, \
         rejected by verify_strict.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(true);
    out.push(c);

    // Non-canonical R: y = p + 1 encodes the identity non-canonically.
    let mut p_plus_1 = [0xffu8; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    assert_eq!(
        CompressedEdwardsY(p_plus_1).decompress(),
        Some(EdwardsPoint::identity())
    );
    let sig = raw_signature(a, author, Scalar::ZERO, p_plus_1, &signing_input(&h));
    let mut c = Invalid::new(
        "non_canonical_r",
        "R is the non-canonical encoding y = p + 1 of the identity, s = k*a (k hashed over \
         the non-canonical bytes). [s]B - [k]A = R as points, but its canonical encoding \
         differs from the R bytes.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(false);
    out.push(c);

    // Mixed-order R: R = r*B + T8, s = r + k*a.
    let t8 = EIGHT_TORSION[1];
    assert!(!(Scalar::from(4u8) * t8).is_identity() && t8.mul_by_cofactor().is_identity());
    let r = scalar("nonce mixed-order R");
    let mixed_r = compress(&(r * b + t8));
    let sig = raw_signature(a, author, r, mixed_r, &signing_input(&h));
    let mut c = Invalid::new(
        "mixed_order_r",
        "R = r*B + T with T of order 8, s = r + k*a. Fails the cofactorless equation \
         that verify_strict uses; a cofactored verifier ([8][s]B = [8]R + [8][k]A) accepts it.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(false);
    c.mixed_order = true;
    out.push(c);

    // Mixed-order author: A = a'*B + T8, honest R; [k]T8 != 0 makes the
    // cofactorless check fail. Vary the timestamp until k mod 8 != 0.
    let a2 = scalar("secret mixed-order author");
    let mixed_a = compress(&(a2 * b + t8));
    let r = scalar("nonce mixed-order author");
    let (h, sig) = (0i64..)
        .find_map(|ts| {
            let h = header(mixed_a, 1, zero, NEW_YEAR_2026 + ts, ok).encode();
            let r_bytes = compress(&(r * b));
            let k = challenge(&r_bytes, &mixed_a, &signing_input(&h));
            (!k.as_bytes()[0].is_multiple_of(8)).then(|| {
                (
                    h,
                    raw_signature(a2, mixed_a, r, r_bytes, &signing_input(&h)),
                )
            })
        })
        .expect("some timestamp works");
    let mut c = Invalid::new(
        "mixed_order_author",
        "The author key is a*B + T with T of order 8 and k mod 8 != 0, so [k]A carries a \
         torsion part the signature cannot match. Rejected by verify_strict; a cofactored \
         verifier accepts it.",
        assemble(&h, &sig, ok),
        None,
        "BadSignature",
    );
    c.plain_verify_accepts = Some(false);
    c.mixed_order = true;
    out.push(c);

    // --- order of the checks -------------------------------------------------
    let mut bytes = signed(
        &key,
        &{
            let mut h = header(author, 2, zero, NEW_YEAR_2026, ok);
            h.version = 2;
            h.content_length = 20_000;
            h
        },
        &[],
    );
    bytes[HEADER_LEN] ^= 1;
    out.push(Invalid::new(
        "order_version_first",
        "Version 2, declared length 20000 (dropped), bad sequence and a bad signature: \
         the version is checked first.",
        bytes,
        None,
        "UnknownVersion",
    ));

    let bad = b"{\"type\":\"about\"";
    let mut h = header(author, 2, zero, NEW_YEAR_2026, bad);
    h.content_hash[0] ^= 1;
    let mut bytes = signed(&key, &h, bad);
    bytes[HEADER_LEN] ^= 1;
    out.push(Invalid::new(
        "order_hash_before_shape",
        "Content that is not JSON and does not match the content hash, bad sequence, bad \
         signature: the content hash is checked before the content shape, chain and signature.",
        bytes,
        None,
        "ContentHashMismatch",
    ));

    let mut bytes = signed(&key, &header(author, 2, other, NEW_YEAR_2026, b"[]"), b"[]");
    bytes[HEADER_LEN] ^= 1;
    out.push(Invalid::new(
        "order_content_before_chain",
        "Bad content, bad sequence, wrong previous and a bad signature: content is checked \
         before the chain.",
        bytes,
        None,
        "BadContent",
    ));

    let mut bytes = signed(&key, &header(author, 2, other, NEW_YEAR_2026, ok), ok);
    bytes[HEADER_LEN] ^= 1;
    out.push(Invalid::new(
        "order_sequence_before_previous_and_signature",
        "Bad sequence, wrong previous and a bad signature: sequence is checked first.",
        bytes,
        None,
        "BadSequence",
    ));

    let mut bytes = signed(&key, &header(author, 2, other, NEW_YEAR_2026, ok), ok);
    bytes[HEADER_LEN] ^= 1;
    out.push(Invalid::new(
        "order_previous_before_signature",
        "Correct sequence, wrong previous and a bad signature: previous is checked before \
         the signature.",
        bytes,
        Some(head1),
        "WrongPrevious",
    ));

    out
}

/// Checks each invalid case against this implementation before writing it,
/// so a vector can only claim what the code really does.
fn invalid_vector(case: &Invalid) -> InvalidVector {
    let result = Message::decode(case.bytes.clone())
        .map_err(ValidationError::from)
        .and_then(|msg| validate(case.head.as_ref(), &msg));
    let err = result.expect_err(case.name);
    assert_eq!(error_kind(&err), case.error, "{}: {err}", case.name);
    if let ValidationError::Malformed(d) = &err {
        assert_eq!(Some(decode_kind(d)), case.decode_error, "{}", case.name);
    }
    if let Some(plain) = case.plain_verify_accepts {
        let msg = Message::decode(case.bytes.clone()).unwrap();
        let key = VerifyingKey::from_bytes(&msg.author().0).unwrap();
        let accepted = key
            .verify(&signing_input(msg.header_bytes()), &msg.signature())
            .is_ok();
        assert_eq!(accepted, plain, "{}: plain verify", case.name);
        let batch = verify_signatures(std::slice::from_ref(&msg));
        if case.mixed_order {
            println!(
                "note: {} in a batch of one: {}",
                case.name,
                if batch.is_ok() {
                    "accepted"
                } else {
                    "rejected"
                }
            );
        } else {
            assert!(
                batch.is_err(),
                "{}: batch must agree with verify_strict",
                case.name
            );
        }
    }
    InvalidVector {
        name: case.name,
        description: case.description.clone(),
        message_hex: hex::encode(&case.bytes),
        head: head_vector(case.head.as_ref()),
        error: case.error,
        decode_error: case.decode_error,
        plain_verify_accepts: case.plain_verify_accepts,
        mixed_order: case.plain_verify_accepts.map(|_| case.mixed_order),
    }
}

// ---------------------------------------------------------------------------
// SHA-512 (FIPS 180-4), only for building the crafted signatures above.

const SHA512_K: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

fn sha512(data: &[u8]) -> [u8; 64] {
    let mut state: [u64; 8] = [
        0x6a09e667f3bcc908,
        0xbb67ae8584caa73b,
        0x3c6ef372fe94f82b,
        0xa54ff53a5f1d36f1,
        0x510e527fade682d1,
        0x9b05688c2b3e6c1f,
        0x1f83d9abfb41bd6b,
        0x5be0cd19137e2179,
    ];
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 128 != 112 {
        padded.push(0);
    }
    padded.extend_from_slice(&(data.len() as u128 * 8).to_be_bytes());
    for block in padded.chunks_exact(128) {
        let mut w = [0u64; 80];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(8)) {
            *word = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        }
        for t in 16..80 {
            let s0 = w[t - 15].rotate_right(1) ^ w[t - 15].rotate_right(8) ^ (w[t - 15] >> 7);
            let s1 = w[t - 2].rotate_right(19) ^ w[t - 2].rotate_right(61) ^ (w[t - 2] >> 6);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        for (k, wt) in SHA512_K.iter().zip(w) {
            let s1 = e.rotate_right(14) ^ e.rotate_right(18) ^ e.rotate_right(41);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(wt);
            let s0 = a.rotate_right(28) ^ a.rotate_right(34) ^ a.rotate_right(39);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 64];
    for (chunk, s) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&s.to_be_bytes());
    }
    out
}

/// Our SHA-512 and challenge computation must agree with the published
/// digest of "abc" and with signatures made by ed25519-dalek.
fn self_check() {
    assert_eq!(
        hex::encode(sha512(b"abc")),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    let long = vec![0x61u8; 1000];
    let key = SigningKey::from_bytes(&seed("self check"));
    for m in [&b""[..], b"abc", &long] {
        let sig = key.sign(m);
        let a_bytes = key.verifying_key().to_bytes();
        let k = challenge(sig.r_bytes(), &a_bytes, m);
        let s = Scalar::from_canonical_bytes(*sig.s_bytes()).expect("canonical s");
        let r = CompressedEdwardsY(*sig.r_bytes()).decompress().expect("R");
        let a = CompressedEdwardsY(a_bytes).decompress().expect("A");
        assert_eq!(
            s * ED25519_BASEPOINT_POINT,
            r + k * a,
            "challenge disagrees"
        );
        // And a raw signature with a fresh nonce verifies strictly.
        let raw = raw_signature(
            key.to_scalar(),
            a_bytes,
            scalar("self check nonce"),
            compress(&(scalar("self check nonce") * ED25519_BASEPOINT_POINT)),
            m,
        );
        key.verifying_key()
            .verify_strict(m, &ed25519_dalek::Signature::from_bytes(&raw))
            .expect("raw signature verifies");
    }
}

fn write(path: &Path, value: &impl Serialize) {
    let mut text = serde_json::to_string_pretty(value).expect("serializable");
    text.push('\n');
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    println!("wrote {}", path.display());
}

fn main() {
    self_check();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    std::fs::create_dir_all(&dir).expect("create tests/vectors");
    let (valid, m1) = valid_cases();
    let invalid: Vec<InvalidVector> = invalid_cases(&m1).iter().map(invalid_vector).collect();
    write(&dir.join("messages.json"), &valid);
    write(&dir.join("invalid.json"), &invalid);
}
