//! The indexes: what a message means for events, RSVPs, names and
//! contacts, derived purely from the messages themselves.
//!
//! This module owns the index part of the key space and the rules of
//! indexing, but touches no database: it reads and writes through the
//! [`Kv`] trait, which the store implements over a staged sled batch (so
//! that indexing is atomic with the append) and tests implement over a
//! `BTreeMap`. Every index entry is a function of the logs alone, so
//! `reindex` can rebuild it and `fsck` can check it.
//!
//! Indexing is order-independent across feeds: everything an entry depends
//! on comes from one feed (an event and its updates share the author's
//! feed; an RSVP entry depends only on the RSVP author's feed), and each
//! feed is always indexed in sequence order.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::content::{self, Content, Decision, Event, RsvpStatus};
use crate::feed::message::{FeedId, Message, MessageId};

/// Key prefixes of the index entries. Log entries use upper-case prefixes
/// (owned by the store); every lower-case prefix is rebuildable index.
pub mod prefix {
    /// event id → [`super::EventState`]
    pub const EVENT: u8 = b'e';
    /// start instant ‖ event id → finish instant ([`super::instant_bytes`])
    pub const EVENT_BY_START: u8 = b's';
    /// finish instant (end, or start if none) ‖ event id → start instant
    /// ([`super::instant_bytes`]): splits upcoming from past, and orders
    /// the upcoming by start without reading their states
    pub const EVENT_BY_FINISH: u8 = b'f';
    /// event id ‖ author → [`super::RsvpState`]
    pub const RSVP: u8 = b'r';
    /// event id → [`super::Tally`]
    pub const TALLY: u8 = b't';
    /// author → [`super::AboutState`]
    pub const ABOUT: u8 = b'n';
    /// author ‖ contact → [`super::ContactState`]
    pub const CONTACT: u8 = b'c';
    /// event id ‖ RSVP author → [`super::AdmissionState`]
    pub const ADMISSION: u8 = b'a';
    /// start instant ‖ event id → finish instant, for events lasting longer
    /// than [`super::LONG_EVENT_MS`] only: with it, the next few upcoming
    /// events are found without reading every upcoming one.
    pub const LONG_EVENT: u8 = b'l';
    /// All index prefixes, for reindex and fsck.
    pub const ALL: [u8; 9] = [
        EVENT,
        EVENT_BY_START,
        EVENT_BY_FINISH,
        LONG_EVENT,
        RSVP,
        TALLY,
        ABOUT,
        CONTACT,
        ADMISSION,
    ];
}

/// An index entry that cannot be decoded: the store is damaged.
#[derive(Debug, Error)]
#[error("index entry {key} is damaged: {reason} (run `potluck reindex`)")]
pub struct CorruptEntry {
    /// The key, in hex.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A key-value view the indexer reads and writes. Reads must see the
/// writes made earlier through the same view.
pub trait Kv {
    /// The backend's error.
    type Error: From<CorruptEntry>;
    /// Reads a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Writes a key.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Deletes a key.
    fn delete(&mut self, key: Vec<u8>);
}

/// An in-memory [`Kv`], used to rebuild and check indexes.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct MemKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Kv for MemKv {
    type Error = CorruptEntry;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CorruptEntry> {
        Ok(self.0.get(key).cloned())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.0.remove(&key);
    }
}

/// Whether an event is still on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Announced and not cancelled.
    Scheduled,
    /// Cancelled by its author.
    Cancelled,
}

impl EventStatus {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "scheduled",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

/// The current state of an event: the original merged with its author's
/// accepted updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventState {
    /// The event id (id of the announcing message).
    pub id: MessageId,
    /// The organizer.
    pub author: FeedId,
    /// Current fields.
    pub event: Event,
    /// Number of accepted updates and cancels.
    pub revision: u32,
    /// Scheduled or cancelled.
    pub status: EventStatus,
    /// The reason given when cancelling.
    pub cancel_reason: Option<String>,
    /// The revision that last changed the start, end or location: RSVPs
    /// given to an earlier revision answered a different plan.
    #[serde(default)]
    pub plan_revision: u32,
}

/// A person's current answer to an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsvpState {
    /// Going, maybe, or not going.
    pub status: RsvpStatus,
    /// Extra people coming along.
    pub guests: u32,
    /// A short note.
    pub note: Option<String>,
    /// Sequence of the RSVP in its author's feed.
    pub sequence: u64,
    /// Id of the RSVP message: the request that admissions decide on.
    #[serde(default)]
    pub message: MessageId,
    /// The event revision this answers, if the RSVP says.
    #[serde(default)]
    pub answered_revision: Option<u32>,
    /// The author's claimed time of the RSVP (only to order requests that
    /// the organizer's node never saw arrive; see `admission`).
    #[serde(default)]
    pub timestamp: i64,
}

impl RsvpState {
    /// People this answer brings if going: the author plus guests.
    pub fn headcount(&self) -> u64 {
        1 + u64::from(self.guests)
    }

    /// True when the answer predates the last change of time or place.
    pub fn is_stale(&self, event: &EventState) -> bool {
        self.answered_revision.unwrap_or(0) < event.plan_revision
    }
}

/// The organizer's latest decision about one person's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionState {
    /// The RSVP message decided on.
    pub rsvp: MessageId,
    /// Admitted or waitlisted.
    pub decision: Decision,
    /// Sequence of the admission in the organizer's feed; for a person
    /// waitlisted again after a new answer, the first waitlisting's: the
    /// waitlist order.
    pub sequence: u64,
}

/// Counts of the current answers to an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// People going.
    pub going: u64,
    /// People who might come.
    pub maybe: u64,
    /// People not going.
    pub not_going: u64,
    /// People going plus their guests.
    pub headcount: u64,
}

impl Tally {
    fn add(&mut self, rsvp: &RsvpState, sign: i64) {
        let apply = |n: &mut u64, by: u64| {
            *n = if sign > 0 {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        match rsvp.status {
            RsvpStatus::Going => {
                apply(&mut self.going, 1);
                apply(&mut self.headcount, 1 + u64::from(rsvp.guests));
            }
            RsvpStatus::Maybe => apply(&mut self.maybe, 1),
            RsvpStatus::NotGoing => apply(&mut self.not_going, 1),
        }
    }
}

/// What a person says about themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AboutState {
    /// Display name.
    pub name: String,
    /// Optional self-description.
    pub description: Option<String>,
}

/// One person's stance towards another feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// Replicate and show this feed.
    pub following: bool,
    /// Never store or forward this feed.
    pub blocking: bool,
}

/// Key of an event's state.
pub fn event_key(id: &MessageId) -> Vec<u8> {
    key(prefix::EVENT, &[&id.0])
}

/// Key of an RSVP entry; `rsvp_prefix(event)` is its prefix.
pub fn rsvp_key(event: &MessageId, author: &FeedId) -> Vec<u8> {
    key(prefix::RSVP, &[&event.0, &author.0])
}

/// Prefix of all RSVP entries of one event.
pub fn rsvp_prefix(event: &MessageId) -> Vec<u8> {
    key(prefix::RSVP, &[&event.0])
}

/// Key of the admission of one person's request to an event.
pub fn admission_key(event: &MessageId, author: &FeedId) -> Vec<u8> {
    key(prefix::ADMISSION, &[&event.0, &author.0])
}

/// Prefix of all admissions of one event.
pub fn admission_prefix(event: &MessageId) -> Vec<u8> {
    key(prefix::ADMISSION, &[&event.0])
}

/// Key of an event's tally.
pub fn tally_key(event: &MessageId) -> Vec<u8> {
    key(prefix::TALLY, &[&event.0])
}

/// Key of a person's about entry.
pub fn about_key(author: &FeedId) -> Vec<u8> {
    key(prefix::ABOUT, &[&author.0])
}

/// Key of a contact entry.
pub fn contact_key(author: &FeedId, contact: &FeedId) -> Vec<u8> {
    key(prefix::CONTACT, &[&author.0, &contact.0])
}

/// Key of an entry in a time index (`EVENT_BY_START` or `EVENT_BY_FINISH`).
pub fn time_key(prefix: u8, instant_ms: i64, event: &MessageId) -> Vec<u8> {
    key(prefix, &[&instant_bytes(instant_ms), &event.0])
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

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// Reads and decodes a JSON index entry.
pub fn read<K: Kv, T: DeserializeOwned>(kv: &K, key: &[u8]) -> Result<Option<T>, K::Error> {
    match kv.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            K::Error::from(CorruptEntry {
                key: hex::encode(key),
                reason: e.to_string(),
            })
        }),
    }
}

fn write<K: Kv, T: Serialize>(kv: &mut K, key: Vec<u8>, value: &T) {
    // Serializing these plain structs to JSON cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    kv.put(key, bytes);
}

/// What indexing did with a message (for logs and reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indexed {
    /// The message changed an index; `event` is the event it concerns.
    Applied {
        /// The event whose state, RSVPs or admissions changed.
        event: Option<MessageId>,
        /// For a contact message: the feed it is about and the author's
        /// new stance towards it.
        contact: Option<(FeedId, ContactState)>,
    },
    /// Valid message, but nothing to index: unknown type, dropped content,
    /// or an update by someone other than the organizer.
    Ignored(&'static str),
    /// The content has a known type but invalid fields.
    Invalid(content::ContentError),
}

/// Indexes one message, which must be the next of its feed. Never fails
/// on what the message says; only on a damaged index.
pub fn apply<K: Kv>(kv: &mut K, msg: &Message) -> Result<Indexed, K::Error> {
    let Some(bytes) = msg.content() else {
        return Ok(Indexed::Ignored("content dropped"));
    };
    let parsed = match content::parse(bytes) {
        Ok(c) => c,
        Err(e) => return Ok(Indexed::Invalid(e)),
    };
    let author = msg.author();
    match parsed {
        Content::Event(event) => {
            let state = EventState {
                id: msg.id(),
                author,
                event,
                revision: 0,
                status: EventStatus::Scheduled,
                cancel_reason: None,
                plan_revision: 0,
            };
            put_time_entries(kv, &state);
            write(kv, event_key(&state.id), &state);
            Ok(Indexed::Applied {
                event: Some(state.id),
                contact: None,
            })
        }
        Content::EventUpdate(update) => {
            let Some(mut state) = read::<K, EventState>(kv, &event_key(&update.event))? else {
                return Ok(Indexed::Ignored("update of an unknown event"));
            };
            if state.author != author {
                return Ok(Indexed::Ignored(
                    "update by someone other than the organizer",
                ));
            }
            let merged = match state.event.apply(&update) {
                Ok(m) => m,
                Err(e) => return Ok(Indexed::Invalid(e)),
            };
            delete_time_entries(kv, &state);
            let plan_changed = merged.start != state.event.start
                || merged.end != state.event.end
                || merged.location != state.event.location;
            state.event = merged;
            state.revision = state.revision.saturating_add(1);
            if plan_changed {
                state.plan_revision = state.revision;
            }
            put_time_entries(kv, &state);
            write(kv, event_key(&state.id), &state);
            Ok(Indexed::Applied {
                event: Some(state.id),
                contact: None,
            })
        }
        Content::EventCancel(cancel) => {
            let Some(mut state) = read::<K, EventState>(kv, &event_key(&cancel.event))? else {
                return Ok(Indexed::Ignored("cancel of an unknown event"));
            };
            if state.author != author {
                return Ok(Indexed::Ignored(
                    "cancel by someone other than the organizer",
                ));
            }
            state.status = EventStatus::Cancelled;
            state.cancel_reason = cancel.reason;
            state.revision = state.revision.saturating_add(1);
            write(kv, event_key(&state.id), &state);
            Ok(Indexed::Applied {
                event: Some(state.id),
                contact: None,
            })
        }
        Content::Rsvp(rsvp) => {
            let entry = RsvpState {
                status: rsvp.status,
                guests: rsvp.guests,
                note: rsvp.note,
                sequence: msg.sequence(),
                message: msg.id(),
                answered_revision: rsvp.revision,
                timestamp: msg.header().timestamp,
            };
            let event = rsvp.event;
            let rkey = rsvp_key(&rsvp.event, &author);
            let tkey = tally_key(&rsvp.event);
            let mut tally = read::<K, Tally>(kv, &tkey)?.unwrap_or_default();
            if let Some(old) = read::<K, RsvpState>(kv, &rkey)? {
                tally.add(&old, -1);
            }
            tally.add(&entry, 1);
            write(kv, rkey, &entry);
            write(kv, tkey, &tally);
            Ok(Indexed::Applied {
                event: Some(event),
                contact: None,
            })
        }
        Content::About(about) => {
            let state = AboutState {
                name: about.name,
                description: about.description,
            };
            write(kv, about_key(&author), &state);
            Ok(Indexed::Applied {
                event: None,
                contact: None,
            })
        }
        Content::Contact(contact) => {
            let state = ContactState {
                following: contact.following,
                blocking: contact.blocking,
            };
            write(kv, contact_key(&author, &contact.contact), &state);
            Ok(Indexed::Applied {
                event: None,
                contact: Some((contact.contact, state)),
            })
        }
        Content::Admission(admission) => {
            let Some(state) = read::<K, EventState>(kv, &event_key(&admission.event))? else {
                return Ok(Indexed::Ignored("admission for an unknown event"));
            };
            if state.author != author {
                return Ok(Indexed::Ignored(
                    "admission by someone other than the organizer",
                ));
            }
            let key = admission_key(&admission.event, &admission.author);
            // Waitlisted again (for a new answer): keep the place in line.
            let since = match read::<K, AdmissionState>(kv, &key)? {
                Some(old)
                    if old.decision == Decision::Waitlisted
                        && admission.decision == Decision::Waitlisted =>
                {
                    old.sequence
                }
                _ => msg.sequence(),
            };
            let entry = AdmissionState {
                rsvp: admission.rsvp,
                decision: admission.decision,
                sequence: since,
            };
            write(
                kv,
                admission_key(&admission.event, &admission.author),
                &entry,
            );
            Ok(Indexed::Applied {
                event: Some(admission.event),
                contact: None,
            })
        }
        Content::Unknown { .. } => Ok(Indexed::Ignored("unknown content type")),
    }
}

/// Events lasting longer than this (a day) are also in the
/// [`prefix::LONG_EVENT`] index. An event that started before now minus
/// this and is still going on must be one of them.
pub const LONG_EVENT_MS: i64 = 24 * 60 * 60 * 1000;

fn finish_ms(state: &EventState) -> i64 {
    state.event.finish_ms()
}

fn put_time_entries<K: Kv>(kv: &mut K, state: &EventState) {
    let (start, finish) = (state.event.start_ms(), finish_ms(state));
    kv.put(
        time_key(prefix::EVENT_BY_START, start, &state.id),
        instant_bytes(finish).to_vec(),
    );
    kv.put(
        time_key(prefix::EVENT_BY_FINISH, finish, &state.id),
        instant_bytes(start).to_vec(),
    );
    if is_long(start, finish) {
        kv.put(
            time_key(prefix::LONG_EVENT, start, &state.id),
            instant_bytes(finish).to_vec(),
        );
    }
}

fn is_long(start_ms: i64, finish_ms: i64) -> bool {
    finish_ms.saturating_sub(start_ms) > LONG_EVENT_MS
}

fn delete_time_entries<K: Kv>(kv: &mut K, state: &EventState) {
    kv.delete(time_key(
        prefix::EVENT_BY_START,
        state.event.start_ms(),
        &state.id,
    ));
    kv.delete(time_key(
        prefix::EVENT_BY_FINISH,
        finish_ms(state),
        &state.id,
    ));
    if is_long(state.event.start_ms(), finish_ms(state)) {
        kv.delete(time_key(
            prefix::LONG_EVENT,
            state.event.start_ms(),
            &state.id,
        ));
    }
}
