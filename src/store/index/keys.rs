//! The index part of the store's key space: the one-byte prefix of each
//! index and how its keys are made. The store's own keys (heads, fork
//! proofs, peers) are in `store/keys.rs` and are made the same way, with
//! [`compose_key`].

use crate::feed::message::{FeedId, MessageId};

/// Key prefixes of the index entries. Log entries use upper-case prefixes
/// (owned by the store); every lower-case prefix is rebuildable index.
pub mod prefix {
    /// event id → [`crate::store::index::EventState`]
    pub const EVENT: u8 = b'e';
    /// start instant ‖ event id → finish instant ([`crate::store::index::instant_bytes`])
    pub const EVENT_BY_START: u8 = b's';
    /// finish instant (end, or start if none) ‖ event id → start instant
    /// ([`crate::store::index::instant_bytes`]): splits upcoming from past, and orders
    /// the upcoming by start without reading their states
    pub const EVENT_BY_FINISH: u8 = b'f';
    /// event id ‖ author → [`crate::store::index::RsvpState`]
    pub const RSVP: u8 = b'r';
    /// author ‖ event id → [`crate::store::index::AnsweredState`]: what the
    /// author last answered (status and guests), the one read an RSVP's
    /// indexing makes, kept by author so that a feed's run of answers
    /// reads one small group, not every event's answers
    pub const ANSWERED: u8 = b'q';
    /// event id → [`crate::store::index::Tally`]
    pub const TALLY: u8 = b't';
    /// author → [`crate::store::index::AboutState`]
    pub const ABOUT: u8 = b'n';
    /// author ‖ contact → [`crate::store::index::ContactState`]
    pub const CONTACT: u8 = b'c';
    /// event id ‖ RSVP author → [`crate::store::index::AdmissionState`]
    pub const ADMISSION: u8 = b'a';
    /// start instant ‖ event id → finish instant, for events lasting longer
    /// than [`crate::store::index::LONG_EVENT_MS`] only: with it, the next few upcoming
    /// events are found without reading every upcoming one.
    pub const LONG_EVENT: u8 = b'l';
    /// comment id → [`crate::store::index::CommentState`]
    pub const COMMENT: u8 = b'k';
    /// event id ‖ place ([`crate::store::index::instant_bytes`]) ‖ comment
    /// id → nothing: the thread of an event in its order, read a page at a
    /// time
    pub const THREAD: u8 = b'o';
    /// event id ‖ place ‖ comment id → nothing, for the comments of the
    /// thread with a link in their text: the "links shared"
    pub const THREAD_LINKS: u8 = b'x';
    /// named id ‖ comment id → nothing: a comment names another in its
    /// `seen` or `reply` (so that it moves after it when that one arrives
    /// later)
    pub const NAMED_BY: u8 = b'w';
    /// event id ‖ comment id → nothing: the organizer hid the comment
    pub const HIDDEN: u8 = b'h';
    /// All index prefixes, for reindex and fsck.
    pub const ALL: [u8; 15] = [
        EVENT,
        EVENT_BY_START,
        EVENT_BY_FINISH,
        LONG_EVENT,
        RSVP,
        ANSWERED,
        TALLY,
        ABOUT,
        CONTACT,
        ADMISSION,
        COMMENT,
        THREAD,
        THREAD_LINKS,
        NAMED_BY,
        HIDDEN,
    ];
}

/// Key of an event's state.
pub fn event_key(id: &MessageId) -> Vec<u8> {
    compose_key(prefix::EVENT, &[&id.0])
}

/// Key of an RSVP entry; `rsvp_prefix(event)` is its prefix.
pub fn rsvp_key(event: &MessageId, author: &FeedId) -> Vec<u8> {
    compose_key(prefix::RSVP, &[&event.0, &author.0])
}

/// Key of what `author` last answered to `event`.
pub fn answered_key(author: &FeedId, event: &MessageId) -> Vec<u8> {
    compose_key(prefix::ANSWERED, &[&author.0, &event.0])
}

/// Prefix of all RSVP entries of one event.
pub fn rsvp_prefix(event: &MessageId) -> Vec<u8> {
    compose_key(prefix::RSVP, &[&event.0])
}

/// Key of the admission of one person's request to an event.
pub fn admission_key(event: &MessageId, author: &FeedId) -> Vec<u8> {
    compose_key(prefix::ADMISSION, &[&event.0, &author.0])
}

/// Prefix of all admissions of one event.
pub fn admission_prefix(event: &MessageId) -> Vec<u8> {
    compose_key(prefix::ADMISSION, &[&event.0])
}

/// Key of an event's tally.
pub fn tally_key(event: &MessageId) -> Vec<u8> {
    compose_key(prefix::TALLY, &[&event.0])
}

/// Key of a person's about entry.
pub fn about_key(author: &FeedId) -> Vec<u8> {
    compose_key(prefix::ABOUT, &[&author.0])
}

/// Key of a contact entry.
pub fn contact_key(author: &FeedId, contact: &FeedId) -> Vec<u8> {
    compose_key(prefix::CONTACT, &[&author.0, &contact.0])
}

/// Key of a comment's state.
pub fn comment_key(id: &MessageId) -> Vec<u8> {
    compose_key(prefix::COMMENT, &[&id.0])
}

/// Key of a comment's place in its event's thread (`prefix::THREAD`) or
/// among the comments with links (`prefix::THREAD_LINKS`).
pub fn thread_key(prefix: u8, event: &MessageId, place_ms: i64, comment: &MessageId) -> Vec<u8> {
    compose_key(prefix, &[&event.0, &instant_bytes(place_ms), &comment.0])
}

/// Prefix of an event's thread (`prefix::THREAD`) or its comments with
/// links (`prefix::THREAD_LINKS`).
pub fn thread_prefix(prefix: u8, event: &MessageId) -> Vec<u8> {
    compose_key(prefix, &[&event.0])
}

/// The place and comment id at the end of a thread key.
pub fn place_of_thread_key(key: &[u8]) -> Option<(i64, MessageId)> {
    let place = instant_of_bytes(key.get(33..41)?)?;
    let comment: [u8; 32] = key.get(41..73)?.try_into().ok()?;
    Some((place, MessageId(comment)))
}

/// Key saying that `comment` names `named` in its `seen` or `reply`.
pub fn named_by_key(named: &MessageId, comment: &MessageId) -> Vec<u8> {
    compose_key(prefix::NAMED_BY, &[&named.0, &comment.0])
}

/// Prefix of the comments that name `named`.
pub fn named_by_prefix(named: &MessageId) -> Vec<u8> {
    compose_key(prefix::NAMED_BY, &[&named.0])
}

/// Key of the organizer's hiding of a comment on their event.
pub fn hidden_key(event: &MessageId, comment: &MessageId) -> Vec<u8> {
    compose_key(prefix::HIDDEN, &[&event.0, &comment.0])
}

/// Key of an entry in a time index (`EVENT_BY_START` or `EVENT_BY_FINISH`).
pub fn time_key(prefix: u8, instant_ms: i64, event: &MessageId) -> Vec<u8> {
    compose_key(prefix, &[&instant_bytes(instant_ms), &event.0])
}

/// An instant as 8 bytes that sort like the signed number.
pub fn instant_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`instant_bytes`]; `None` unless `bytes` is 8 bytes.
pub fn instant_of_bytes(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// The event id at the end of a time-index key.
pub fn event_of_time_key(key: &[u8]) -> Option<MessageId> {
    let tail: [u8; 32] = key.get(9..41)?.try_into().ok()?;
    Some(MessageId(tail))
}

/// The key `prefix ‖ parts…`: how every key of the store is made.
pub(in crate::store) fn compose_key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}
