//! Answers to events: `rsvp` from anyone, and the organizer's `admission`
//! decisions on them when an event has a capacity.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::shorten;
use super::json::{
    JsonWriter, Object, to_decision, to_feed_id, to_guests, to_message_id, to_revision, to_status,
    to_string,
};
use super::{ContentError, KnownContent, check_chars};
use crate::feed::message::{FeedId, MessageId};

/// Most extra guests one RSVP may bring.
pub const MAX_GUESTS: u32 = 20;
/// Longest RSVP note, in Unicode scalar values.
pub const MAX_NOTE_CHARS: usize = 500;

/// Whether a person is coming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RsvpStatus {
    /// `"going"`.
    Going,
    /// `"maybe"`.
    Maybe,
    /// `"not-going"`.
    NotGoing,
}

impl RsvpStatus {
    /// The JSON word: `going`, `maybe` or `not-going`.
    pub fn as_str(self) -> &'static str {
        match self {
            RsvpStatus::Going => "going",
            RsvpStatus::Maybe => "maybe",
            RsvpStatus::NotGoing => "not-going",
        }
    }
}

impl FromStr for RsvpStatus {
    type Err = ContentError;

    /// Parses the exact JSON word.
    fn from_str(s: &str) -> Result<Self, ContentError> {
        match s {
            "going" => Ok(RsvpStatus::Going),
            "maybe" => Ok(RsvpStatus::Maybe),
            "not-going" => Ok(RsvpStatus::NotGoing),
            _ => Err(ContentError::BadStatus(shorten(s))),
        }
    }
}

impl fmt::Display for RsvpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reply to an event, `{"type":"rsvp", ...}`. It speaks only for its
/// author (plus `guests` unnamed companions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rsvp {
    /// The id of the `event` message.
    pub event: MessageId,
    /// Going, maybe, or not going.
    pub status: RsvpStatus,
    /// Extra people the author brings, 0 to [`MAX_GUESTS`].
    pub guests: u32,
    /// A short note; at most [`MAX_NOTE_CHARS`] characters.
    pub note: Option<String>,
    /// The revision of the event this answers (absent in RSVPs written
    /// before revisions were recorded).
    pub revision: Option<u32>,
}

/// The organizer's decision on a `going` RSVP to an event with a capacity,
/// `{"type":"admission", ...}`. Only admissions in the organizer's own
/// feed count; the latest one about an RSVP is in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The event.
    pub event: MessageId,
    /// The id of the `rsvp` message decided on.
    pub rsvp: MessageId,
    /// The author of that RSVP (so that the decision can be indexed from
    /// the organizer's feed alone, whatever order feeds arrive in).
    pub author: FeedId,
    /// Admitted or waitlisted.
    pub decision: Decision,
}

/// What the organizer decided about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// There is room for the whole group.
    Admitted,
    /// Not enough room yet; first in line moves up first.
    Waitlisted,
}

impl Decision {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Admitted => "admitted",
            Decision::Waitlisted => "waitlisted",
        }
    }
}

impl KnownContent for Rsvp {
    const TYPE: &'static str = "rsvp";

    fn from_object(obj: &Object) -> Result<Rsvp, ContentError> {
        Ok(Rsvp {
            event: obj.required("event", to_message_id)?,
            status: obj.required("status", to_status)?,
            guests: obj.optional("guests", to_guests)?.unwrap_or(0),
            note: obj.optional("note", to_string)?,
            revision: obj.optional("revision", to_revision)?,
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if self.guests > MAX_GUESTS {
            return Err(ContentError::TooManyGuests(self.guests));
        }
        if let Some(note) = &self.note {
            check_chars(note, MAX_NOTE_CHARS, |chars| ContentError::NoteTooLong {
                chars,
            })?;
        }
        Ok(())
    }

    /// `guests` is always written.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.str("status", self.status.as_str());
        w.raw("guests", &self.guests.to_string());
        w.opt_str("note", self.note.as_deref());
        if let Some(revision) = self.revision {
            w.raw("revision", &revision.to_string());
        }
    }
}

/// Every constraint of an admission is carried by its field types, so the
/// default [`KnownContent::check_fields`] holds.
impl KnownContent for Admission {
    const TYPE: &'static str = "admission";

    fn from_object(obj: &Object) -> Result<Admission, ContentError> {
        Ok(Admission {
            event: obj.required("event", to_message_id)?,
            rsvp: obj.required("rsvp", to_message_id)?,
            author: obj.required("author", to_feed_id)?,
            decision: obj.required("decision", to_decision)?,
        })
    }

    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.str("rsvp", &self.rsvp.to_string());
        w.str("author", &self.author.to_string());
        w.str("decision", self.decision.as_str());
    }
}
