//! The typed content of version 1: events, event updates and cancellations,
//! RSVPs, names ("about") and follows/blocks ("contact").
//!
//! Everything here is pure: no I/O, no clock. [`parse`] turns the content
//! bytes of a message into a [`Content`], and each known type has a
//! `to_content_bytes` method giving the exact compact JSON to publish, with
//! `"type"` first. See `docs/content.md` for the shapes, limits and rules.
//!
//! The generic check that content is a UTF-8 JSON object with a string
//! `type` and unique top-level keys lives in [`crate::feed::validate`]; [`parse`]
//! reuses it rather than repeating it.
//!
//! On parse, unknown extra fields are ignored (forward compatibility), and in
//! every type except `event-update` a field set to JSON `null` is the same
//! as an absent field. In `event-update`, `null` means "clear this field".

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::feed::message::{FeedId, MAX_CONTENT_LEN, MessageId};
use crate::feed::validate::{ValidationError, content_object};

/// Longest event title, in Unicode scalar values.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest event location, in Unicode scalar values.
pub const MAX_LOCATION_CHARS: usize = 500;
/// Longest event URL, in Unicode scalar values.
pub const MAX_URL_CHARS: usize = 2000;
/// Longest event description, in bytes of UTF-8 (8 KiB).
pub const MAX_DESCRIPTION_BYTES: usize = 8192;
/// Longest reason of a cancellation, in Unicode scalar values.
pub const MAX_REASON_CHARS: usize = 500;
/// Most extra guests one RSVP may bring.
pub const MAX_GUESTS: u32 = 20;
/// Longest RSVP note, in Unicode scalar values.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest name in an `about`, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description in an `about`, in Unicode scalar values.
pub const MAX_ABOUT_DESCRIPTION_CHARS: usize = 1000;

/// How much of an offending value an error message repeats.
const SHOWN_CHARS: usize = 80;

/// Why content of a known type is not valid. Every failure is a distinct
/// variant with a message a person understands.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContentError {
    /// The content is larger than a message may carry.
    #[error("content is {len} bytes, more than the limit of {MAX_CONTENT_LEN}")]
    TooLarge {
        /// Length of the content in bytes.
        len: usize,
    },
    /// The content is not a UTF-8 JSON object with a string `type` and
    /// unique keys.
    #[error("content is not a JSON object with a string `type`: {reason}")]
    BadJson {
        /// What exactly is wrong.
        reason: String,
    },
    /// A required field is absent (or `null`).
    #[error("`{0}` is required")]
    MissingField(&'static str),
    /// A field holds the wrong kind of JSON value.
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be, e.g. "a string".
        expected: &'static str,
    },
    /// The title is empty or only white space.
    #[error("`title` must not be empty or only spaces")]
    EmptyTitle,
    /// The title is longer than [`MAX_TITLE_CHARS`].
    #[error("`title` is {chars} characters long; the limit is {MAX_TITLE_CHARS}")]
    TitleTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// A time is not RFC 3339 with an offset.
    #[error(
        "`{field}` must be an RFC 3339 time with an offset, like 2027-01-30T16:00:00-05:00 (got `{value}`)"
    )]
    BadTime {
        /// `start` or `end`.
        field: &'static str,
        /// The offending text, shortened.
        value: String,
    },
    /// The end of an event is before its start.
    #[error("`end` is before `start`: an event cannot end before it begins")]
    EndBeforeStart,
    /// The time zone is not an IANA zone name this node knows.
    #[error("`{0}` is not a known IANA time zone name, like America/New_York or Europe/Paris")]
    UnknownTimeZone(String),
    /// The event description is longer than [`MAX_DESCRIPTION_BYTES`].
    #[error(
        "`description` is {bytes} bytes of UTF-8; the limit is {MAX_DESCRIPTION_BYTES} (8 KiB)"
    )]
    DescriptionTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The location is longer than [`MAX_LOCATION_CHARS`].
    #[error("`location` is {chars} characters long; the limit is {MAX_LOCATION_CHARS}")]
    LocationTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// The URL is longer than [`MAX_URL_CHARS`].
    #[error("`url` is {chars} characters long; the limit is {MAX_URL_CHARS}")]
    UrlTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// The capacity is not a whole number from 1 to 4294967295.
    #[error(
        "`capacity` must be a whole number from 1 to {} (got {value})",
        u32::MAX
    )]
    BadCapacity {
        /// The offending JSON value, shortened.
        value: String,
    },
    /// A reference to a message or feed is not a valid id.
    #[error("`{field}` must be {expected} (got `{value}`)")]
    BadId {
        /// The field (`event` or `contact`).
        field: &'static str,
        /// The offending text, shortened.
        value: String,
        /// What the id should look like.
        expected: &'static str,
    },
    /// An `event-update` sets `title` or `start` to `null`.
    #[error("`{0}` cannot be cleared: an event always has one; leave it out to keep it unchanged")]
    CannotClear(&'static str),
    /// An `event-update` changes no field.
    #[error("an event-update must change at least one field")]
    EmptyUpdate,
    /// The cancellation reason is longer than [`MAX_REASON_CHARS`].
    #[error("`reason` is {chars} characters long; the limit is {MAX_REASON_CHARS}")]
    ReasonTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// The RSVP status is not one of the three known words.
    #[error("`status` must be \"going\", \"maybe\" or \"not-going\" (got `{0}`)")]
    BadStatus(String),
    /// `guests` is not a whole number from 0 up.
    #[error("`guests` must be a whole number from 0 to {MAX_GUESTS} (got {value})")]
    BadGuests {
        /// The offending JSON value, shortened.
        value: String,
    },
    /// `revision` is not a whole number from 0 up.
    #[error("`revision` must be a whole number from 0 up (got {value})")]
    BadRevision {
        /// The offending JSON value, shortened.
        value: String,
    },
    /// An admission decision is not one of the two known words.
    #[error("`decision` must be \"admitted\" or \"waitlisted\" (got `{0}`)")]
    BadDecision(String),
    /// More guests than [`MAX_GUESTS`].
    #[error("{0} guests is too many: an RSVP may bring at most {MAX_GUESTS}")]
    TooManyGuests(u32),
    /// The RSVP note is longer than [`MAX_NOTE_CHARS`].
    #[error("`note` is {chars} characters long; the limit is {MAX_NOTE_CHARS}")]
    NoteTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// The name in an `about` is empty or only white space.
    #[error("`name` must not be empty or only spaces")]
    NameEmpty,
    /// The name in an `about` is longer than [`MAX_NAME_CHARS`].
    #[error("`name` is {chars} characters long; the limit is {MAX_NAME_CHARS}")]
    NameTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
    /// The description in an `about` is longer than
    /// [`MAX_ABOUT_DESCRIPTION_CHARS`].
    #[error(
        "the `description` of an about is {chars} characters long; the limit is {MAX_ABOUT_DESCRIPTION_CHARS}"
    )]
    AboutDescriptionTooLong {
        /// Its length in Unicode scalar values.
        chars: usize,
    },
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// A point in time as the author wrote it: the original RFC 3339 text,
/// kept unchanged for display and re-publication, plus the instant it
/// denotes. It can only be made by parsing, so it is always valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventTime {
    original: String,
    instant: Timestamp,
}

impl EventTime {
    /// Parses an RFC 3339 time with an offset; `field` names the field in
    /// the error.
    pub fn parse(field: &'static str, value: &str) -> Result<EventTime, ContentError> {
        let instant = parse_time(field, value)?;
        Ok(EventTime {
            original: value.to_owned(),
            instant,
        })
    }

    /// The author's original text.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The instant.
    pub fn timestamp(&self) -> Timestamp {
        self.instant
    }

    /// Milliseconds since the Unix epoch (sub-millisecond digits dropped).
    pub fn as_millisecond(&self) -> i64 {
        self.instant.as_millisecond()
    }
}

impl Serialize for EventTime {
    /// Serializes as the original text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

impl<'de> Deserialize<'de> for EventTime {
    /// Deserializes from RFC 3339 text, checked as by [`EventTime::parse`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        EventTime::parse("time", &text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Parses an RFC 3339 time with an offset (`Z` or `±HH:MM`), such as
/// `2027-01-30T16:00:00-05:00` or `2027-01-30T21:00:00.5Z`.
///
/// The syntax is checked strictly (seconds required, offset at most
/// `±23:59`, no zone annotation, no space instead of `T`) so that every
/// implementation agrees on what is valid; jiff then checks the calendar
/// and allows at most 9 fractional digits. A leap second (`:60`) is read
/// as `:59`.
pub fn parse_time(field: &'static str, value: &str) -> Result<Timestamp, ContentError> {
    let bad = || ContentError::BadTime {
        field,
        value: shorten(value),
    };
    if !is_rfc3339_syntax(value) {
        return Err(bad());
    }
    value.parse::<Timestamp>().map_err(|_| bad())
}

/// True if `s` matches the RFC 3339 `date-time` grammar:
/// `YYYY-MM-DD(T|t)hh:mm:ss[.frac](Z|z|(+|-)hh:mm)`, with an offset of at
/// most 23:59.
fn is_rfc3339_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !starts_with_shape(b, b"9999-99-99T99:99:99") {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            // time-numoffset = ("+" / "-") time-hour ":" time-minute
            let two = |from: usize| match b.get(from..from + 2) {
                Some(&[h, l]) if h.is_ascii_digit() && l.is_ascii_digit() => {
                    Some((h - b'0') * 10 + (l - b'0'))
                }
                _ => None,
            };
            two(i + 1).is_some_and(|hours| hours <= 23)
                && at(i + 3, b":")
                && two(i + 4).is_some_and(|minutes| minutes <= 59)
                && i + 6 == b.len()
        }
        _ => false,
    }
}

/// True if `text` starts with `shape`, where `9` stands for an ASCII digit,
/// `T` for `T` or `t`, `_` for `T`, `t` or a space, and any other byte for
/// itself.
pub(crate) fn starts_with_shape(text: &[u8], shape: &[u8]) -> bool {
    text.len() >= shape.len()
        && text.iter().zip(shape).all(|(&c, &s)| match s {
            b'9' => c.is_ascii_digit(),
            b'T' => matches!(c, b'T' | b't'),
            b'_' => matches!(c, b'T' | b't' | b' '),
            other => c == other,
        })
}

/// Checks that `name` is an IANA time zone name this node knows, spelled
/// exactly as in the time zone database (e.g. `America/New_York`).
pub fn validate_tz(name: &str) -> Result<(), ContentError> {
    lookup_tz(name)
        .map(|_| ())
        .ok_or_else(|| ContentError::UnknownTimeZone(shorten(name)))
}

/// Looks up an IANA zone, insisting on the exact spelling: the database
/// lookup ignores ASCII case, but other implementations may not.
pub fn lookup_tz(name: &str) -> Option<TimeZone> {
    let tz = TimeZone::get(name).ok()?;
    (tz.iana_name() == Some(name)).then_some(tz)
}

/// Formats a time for people.
///
/// With a time zone, the instant is shown in that zone with its offset and
/// the zone name, e.g. `2027-01-30T16:00:00-05:00[America/New_York]`.
/// Without one, the author's original string is returned unchanged. Never
/// panics: if the time or the zone is not valid, the original is returned.
pub fn display_time(original: &str, tz: Option<&str>) -> String {
    in_zone(original, tz).map_or_else(|| original.to_owned(), |z| z.to_string())
}

/// Like [`display_time`], but plain RFC 3339 (the zone's offset, no zone
/// name), for JSON output that any RFC 3339 parser must read.
pub fn rfc3339_in_zone(original: &str, tz: Option<&str>) -> String {
    in_zone(original, tz).map_or_else(
        || original.to_owned(),
        |z| z.timestamp().display_with_offset(z.offset()).to_string(),
    )
}

/// The instant of `original` in zone `tz`, if both are valid.
fn in_zone(original: &str, tz: Option<&str>) -> Option<jiff::ZonedDateTime> {
    let zone = lookup_tz(tz?)?;
    let instant = parse_time("time", original).ok()?;
    Some(instant.to_zoned_datetime(zone))
}

// ---------------------------------------------------------------------------
// Content types
// ---------------------------------------------------------------------------

/// An event announcement, `{"type":"event", ...}`.
///
/// Fields are public so callers can build one; call [`Event::validate`]
/// before publishing it with [`Event::to_content_bytes`].
///
/// The serde implementation (used to store index state) has the same field
/// names as the content, without `type`; it is not the published form and
/// does not re-check limits on deserialization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1 to [`MAX_TITLE_CHARS`] characters, not only white space.
    pub title: String,
    /// When it begins.
    pub start: EventTime,
    /// When it ends; not before `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventTime>,
    /// IANA zone name in which to show the times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Where; at most [`MAX_LOCATION_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A link; at most [`MAX_URL_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Free text; at most [`MAX_DESCRIPTION_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Most people expected, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

/// A change to an event by its author, `{"type":"event-update", ...}`.
///
/// A field that is absent is unchanged. In JSON, an optional field set to
/// `null` is cleared; `title` and `start` cannot be cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventUpdate {
    /// The id of the `event` message being changed.
    pub event: MessageId,
    /// New title, or `None` to keep it.
    pub title: Option<String>,
    /// New start, or `None` to keep it.
    pub start: Option<EventTime>,
    /// Change to the end.
    pub end: Change<EventTime>,
    /// Change to the time zone.
    pub tz: Change<String>,
    /// Change to the location.
    pub location: Change<String>,
    /// Change to the URL.
    pub url: Change<String>,
    /// Change to the description.
    pub description: Change<String>,
    /// Change to the capacity.
    pub capacity: Change<u32>,
}

/// What an `event-update` does to one optional field.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Change<T> {
    /// Absent in JSON: the field is unchanged.
    #[default]
    Keep,
    /// `null` in JSON: the field is removed.
    Clear,
    /// A value in JSON: the field is replaced.
    Set(T),
}

impl<T: Clone> Change<T> {
    /// True for [`Change::Keep`].
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// The new value, if this sets one.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Change::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Applies this change to a field.
    pub fn apply_to(&self, field: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *field = None,
            Change::Set(v) => *field = Some(v.clone()),
        }
    }
}

/// A cancellation of an event by its author, `{"type":"event-cancel", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCancel {
    /// The id of the `event` message being cancelled.
    pub event: MessageId,
    /// Why; at most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

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

/// The author's own name and description, `{"type":"about", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct About {
    /// 1 to [`MAX_NAME_CHARS`] characters, not only white space.
    pub name: String,
    /// At most [`MAX_ABOUT_DESCRIPTION_CHARS`] characters.
    pub description: Option<String>,
}

/// The author's relation to another feed, `{"type":"contact", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The other feed.
    pub contact: FeedId,
    /// Whether the author follows it (absent = false).
    pub following: bool,
    /// Whether the author blocks it (absent = false).
    pub blocking: bool,
}

/// The parsed content of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// `event`.
    Event(Event),
    /// `event-update`.
    EventUpdate(EventUpdate),
    /// `event-cancel`.
    EventCancel(EventCancel),
    /// `rsvp`.
    Rsvp(Rsvp),
    /// `about`.
    About(About),
    /// `contact`.
    Contact(Contact),
    /// `admission`.
    Admission(Admission),
    /// A type this version does not know: valid, stored, not indexed.
    Unknown {
        /// The `type` string.
        kind: String,
    },
}

impl Event {
    /// The `type` of an event.
    pub const TYPE: &'static str = "event";

    /// An event with just a title and a start; every optional field unset.
    pub fn new(title: impl Into<String>, start: EventTime) -> Event {
        Event {
            title: title.into(),
            start,
            end: None,
            tz: None,
            location: None,
            url: None,
            description: None,
            capacity: None,
        }
    }

    /// Checks every field and that the published content fits in a message.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(&self.to_content_bytes())
    }

    /// The start in milliseconds since the Unix epoch.
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }

    /// The end in milliseconds since the Unix epoch, if there is one.
    pub fn end_ms(&self) -> Option<i64> {
        self.end.as_ref().map(EventTime::as_millisecond)
    }

    /// When the event is over, for "upcoming" and "past": its end, or its
    /// start when it has none. (Calendar exports give an event without an
    /// end a default length so that calendar apps draw it; that is a
    /// display choice, not when potluck counts it as past.)
    pub fn finish_ms(&self) -> i64 {
        self.end_ms().unwrap_or_else(|| self.start_ms())
    }

    /// The start for people: see [`display_time`] with the event's `tz`.
    pub fn display_start(&self) -> String {
        display_time(self.start.as_str(), self.tz.as_deref())
    }

    /// The end for people: see [`display_time`] with the event's `tz`.
    pub fn display_end(&self) -> Option<String> {
        self.end
            .as_ref()
            .map(|end| display_time(end.as_str(), self.tz.as_deref()))
    }

    /// The start as plain RFC 3339 in the event's zone: see [`rfc3339_in_zone`].
    pub fn rfc3339_start(&self) -> String {
        rfc3339_in_zone(self.start.as_str(), self.tz.as_deref())
    }

    /// The end as plain RFC 3339 in the event's zone.
    pub fn rfc3339_end(&self) -> Option<String> {
        self.end
            .as_ref()
            .map(|end| rfc3339_in_zone(end.as_str(), self.tz.as_deref()))
    }

    /// Returns this event with `update` applied, re-validated as a whole
    /// (e.g. an unchanged `end` before a new `start` is an error).
    ///
    /// Does not check that the update refers to this event or comes from
    /// its author; that is the caller's job.
    pub fn apply(&self, update: &EventUpdate) -> Result<Event, ContentError> {
        let mut merged = self.clone();
        if let Some(title) = &update.title {
            merged.title.clone_from(title);
        }
        if let Some(start) = &update.start {
            merged.start = start.clone();
        }
        update.end.apply_to(&mut merged.end);
        update.tz.apply_to(&mut merged.tz);
        update.location.apply_to(&mut merged.location);
        update.url.apply_to(&mut merged.url);
        update.description.apply_to(&mut merged.description);
        update.capacity.apply_to(&mut merged.capacity);
        merged.check_fields()?;
        Ok(merged)
    }

    /// The exact bytes to publish: compact JSON, `"type"` first, absent
    /// fields omitted.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("title", &self.title);
        w.str("start", self.start.as_str());
        w.opt_str("end", self.end.as_ref().map(EventTime::as_str));
        w.opt_str("tz", self.tz.as_deref());
        w.opt_str("location", self.location.as_deref());
        w.opt_str("url", self.url.as_deref());
        w.opt_str("description", self.description.as_deref());
        if let Some(capacity) = self.capacity {
            w.raw("capacity", &capacity.to_string());
        }
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<Event, ContentError> {
        let event = Event {
            title: obj.required("title", to_string)?,
            start: obj.required("start", to_time("start"))?,
            end: obj.optional("end", to_time("end"))?,
            tz: obj.optional("tz", to_string)?,
            location: obj.optional("location", to_string)?,
            url: obj.optional("url", to_string)?,
            description: obj.optional("description", to_string)?,
            capacity: obj.optional("capacity", to_capacity)?,
        };
        event.check_fields()?;
        Ok(event)
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        check_title(&self.title)?;
        if let Some(end) = &self.end
            && end.timestamp() < self.start.timestamp()
        {
            return Err(ContentError::EndBeforeStart);
        }
        if let Some(tz) = &self.tz {
            validate_tz(tz)?;
        }
        if let Some(location) = &self.location {
            check_location(location)?;
        }
        if let Some(url) = &self.url {
            check_url(url)?;
        }
        if let Some(description) = &self.description {
            check_description(description)?;
        }
        if let Some(capacity) = self.capacity {
            check_capacity(capacity)?;
        }
        Ok(())
    }
}

impl EventUpdate {
    /// The `type` of an event update.
    pub const TYPE: &'static str = "event-update";

    /// An update of `event` that changes nothing yet (not valid until a
    /// field is set).
    pub fn new(event: MessageId) -> EventUpdate {
        EventUpdate {
            event,
            title: None,
            start: None,
            end: Change::Keep,
            tz: Change::Keep,
            location: Change::Keep,
            url: Change::Keep,
            description: Change::Keep,
            capacity: Change::Keep,
        }
    }

    /// Checks every changed field, that at least one field changes, and
    /// that the published content fits in a message.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(&self.to_content_bytes())
    }

    /// True if no field changes.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.start.is_none()
            && self.end.is_keep()
            && self.tz.is_keep()
            && self.location.is_keep()
            && self.url.is_keep()
            && self.description.is_keep()
            && self.capacity.is_keep()
    }

    /// The exact bytes to publish: compact JSON, `"type"` first, kept
    /// fields omitted, cleared fields written as `null`.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("event", &self.event.to_string());
        w.opt_str("title", self.title.as_deref());
        w.opt_str("start", self.start.as_ref().map(EventTime::as_str));
        w.change("end", &self.end, |t| json_string(t.as_str()));
        w.change("tz", &self.tz, |s| json_string(s));
        w.change("location", &self.location, |s| json_string(s));
        w.change("url", &self.url, |s| json_string(s));
        w.change("description", &self.description, |s| json_string(s));
        w.change("capacity", &self.capacity, u32::to_string);
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<EventUpdate, ContentError> {
        let update = EventUpdate {
            event: obj.required("event", to_message_id)?,
            title: no_clear("title", obj.change("title", to_string)?)?,
            start: no_clear("start", obj.change("start", to_time("start"))?)?,
            end: obj.change("end", to_time("end"))?,
            tz: obj.change("tz", to_string)?,
            location: obj.change("location", to_string)?,
            url: obj.change("url", to_string)?,
            description: obj.change("description", to_string)?,
            capacity: obj.change("capacity", to_capacity)?,
        };
        update.check_fields()?;
        Ok(update)
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if self.is_empty() {
            return Err(ContentError::EmptyUpdate);
        }
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        if let (Some(start), Some(end)) = (&self.start, self.end.as_set())
            && end.timestamp() < start.timestamp()
        {
            return Err(ContentError::EndBeforeStart);
        }
        if let Some(tz) = self.tz.as_set() {
            validate_tz(tz)?;
        }
        if let Some(location) = self.location.as_set() {
            check_location(location)?;
        }
        if let Some(url) = self.url.as_set() {
            check_url(url)?;
        }
        if let Some(description) = self.description.as_set() {
            check_description(description)?;
        }
        if let Some(&capacity) = self.capacity.as_set() {
            check_capacity(capacity)?;
        }
        Ok(())
    }
}

impl EventCancel {
    /// The `type` of an event cancellation.
    pub const TYPE: &'static str = "event-cancel";

    /// Checks every field and that the published content fits in a message.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(&self.to_content_bytes())
    }

    /// The exact bytes to publish: compact JSON, `"type"` first.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("event", &self.event.to_string());
        w.opt_str("reason", self.reason.as_deref());
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<EventCancel, ContentError> {
        let cancel = EventCancel {
            event: obj.required("event", to_message_id)?,
            reason: obj.optional("reason", to_string)?,
        };
        cancel.check_fields()?;
        Ok(cancel)
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if let Some(reason) = &self.reason {
            check_chars(reason, MAX_REASON_CHARS, |chars| {
                ContentError::ReasonTooLong { chars }
            })?;
        }
        Ok(())
    }
}

impl Rsvp {
    /// The `type` of an RSVP.
    pub const TYPE: &'static str = "rsvp";

    /// Checks every field and that the published content fits in a message.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(&self.to_content_bytes())
    }

    /// The exact bytes to publish: compact JSON, `"type"` first; `guests`
    /// is always written.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("event", &self.event.to_string());
        w.str("status", self.status.as_str());
        w.raw("guests", &self.guests.to_string());
        w.opt_str("note", self.note.as_deref());
        if let Some(revision) = self.revision {
            w.raw("revision", &revision.to_string());
        }
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<Rsvp, ContentError> {
        let rsvp = Rsvp {
            event: obj.required("event", to_message_id)?,
            status: obj.required("status", to_status)?,
            guests: obj.optional("guests", to_guests)?.unwrap_or(0),
            note: obj.optional("note", to_string)?,
            revision: obj.optional("revision", to_revision)?,
        };
        rsvp.check_fields()?;
        Ok(rsvp)
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
}

impl Admission {
    /// The `type` of an admission decision.
    pub const TYPE: &'static str = "admission";

    /// Checks that the published content fits in a message (every other
    /// constraint is carried by the field types).
    pub fn validate(&self) -> Result<(), ContentError> {
        check_size(&self.to_content_bytes())
    }

    /// The exact bytes to publish: compact JSON, `"type"` first.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("event", &self.event.to_string());
        w.str("rsvp", &self.rsvp.to_string());
        w.str("author", &self.author.to_string());
        w.str("decision", self.decision.as_str());
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<Admission, ContentError> {
        Ok(Admission {
            event: obj.required("event", to_message_id)?,
            rsvp: obj.required("rsvp", to_message_id)?,
            author: obj.required("author", to_feed_id)?,
            decision: obj.required("decision", to_decision)?,
        })
    }
}

impl About {
    /// The `type` of an about.
    pub const TYPE: &'static str = "about";

    /// Checks every field and that the published content fits in a message.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(&self.to_content_bytes())
    }

    /// The exact bytes to publish: compact JSON, `"type"` first.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("name", &self.name);
        w.opt_str("description", self.description.as_deref());
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<About, ContentError> {
        let about = About {
            name: obj.required("name", to_string)?,
            description: obj.optional("description", to_string)?,
        };
        about.check_fields()?;
        Ok(about)
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if self.name.trim().is_empty() {
            return Err(ContentError::NameEmpty);
        }
        check_chars(&self.name, MAX_NAME_CHARS, |chars| {
            ContentError::NameTooLong { chars }
        })?;
        if let Some(description) = &self.description {
            check_chars(description, MAX_ABOUT_DESCRIPTION_CHARS, |chars| {
                ContentError::AboutDescriptionTooLong { chars }
            })?;
        }
        Ok(())
    }
}

impl Contact {
    /// The `type` of a contact.
    pub const TYPE: &'static str = "contact";

    /// Checks that the published content fits in a message (every other
    /// constraint is carried by the field types).
    pub fn validate(&self) -> Result<(), ContentError> {
        check_size(&self.to_content_bytes())
    }

    /// The exact bytes to publish: compact JSON, `"type"` first; both
    /// booleans are always written.
    pub fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        w.str("contact", &self.contact.to_string());
        w.raw("following", if self.following { "true" } else { "false" });
        w.raw("blocking", if self.blocking { "true" } else { "false" });
        w.finish()
    }

    fn from_object(obj: &Object) -> Result<Contact, ContentError> {
        Ok(Contact {
            contact: obj.required("contact", to_feed_id)?,
            following: obj
                .optional("following", to_bool("following"))?
                .unwrap_or(false),
            blocking: obj
                .optional("blocking", to_bool("blocking"))?
                .unwrap_or(false),
        })
    }
}

impl Content {
    /// The `type` string.
    pub fn kind(&self) -> &str {
        match self {
            Content::Event(_) => Event::TYPE,
            Content::EventUpdate(_) => EventUpdate::TYPE,
            Content::EventCancel(_) => EventCancel::TYPE,
            Content::Rsvp(_) => Rsvp::TYPE,
            Content::About(_) => About::TYPE,
            Content::Contact(_) => Contact::TYPE,
            Content::Admission(_) => Admission::TYPE,
            Content::Unknown { kind } => kind,
        }
    }

    /// The exact bytes to publish for a known type; `None` for
    /// [`Content::Unknown`], which only carries its `type`.
    pub fn to_json_bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            Content::Event(c) => c.to_content_bytes(),
            Content::EventUpdate(c) => c.to_content_bytes(),
            Content::EventCancel(c) => c.to_content_bytes(),
            Content::Rsvp(c) => c.to_content_bytes(),
            Content::About(c) => c.to_content_bytes(),
            Content::Contact(c) => c.to_content_bytes(),
            Content::Admission(c) => c.to_content_bytes(),
            Content::Unknown { .. } => return None,
        })
    }

    /// Validates a known type as for publishing (see each type's
    /// `validate`); an unknown type is always valid.
    pub fn validate(&self) -> Result<(), ContentError> {
        match self {
            Content::Event(c) => c.validate(),
            Content::EventUpdate(c) => c.validate(),
            Content::EventCancel(c) => c.validate(),
            Content::Rsvp(c) => c.validate(),
            Content::About(c) => c.validate(),
            Content::Contact(c) => c.validate(),
            Content::Admission(c) => c.validate(),
            Content::Unknown { .. } => Ok(()),
        }
    }
}

/// Parses the content bytes of a message.
///
/// Dispatches on `"type"`: an unknown type gives [`Content::Unknown`]
/// (valid, just not indexed); a known type with invalid fields is an
/// error. Unknown extra fields are ignored.
pub fn parse(content: &[u8]) -> Result<Content, ContentError> {
    check_size(content)?;
    let (kind, map) = content_object(content).map_err(|e| ContentError::BadJson {
        reason: match e {
            ValidationError::BadContent { reason } => reason,
            other => other.to_string(),
        },
    })?;
    let obj = Object(map);
    Ok(match kind.as_str() {
        Event::TYPE => Content::Event(Event::from_object(&obj)?),
        EventUpdate::TYPE => Content::EventUpdate(EventUpdate::from_object(&obj)?),
        EventCancel::TYPE => Content::EventCancel(EventCancel::from_object(&obj)?),
        Rsvp::TYPE => Content::Rsvp(Rsvp::from_object(&obj)?),
        About::TYPE => Content::About(About::from_object(&obj)?),
        Contact::TYPE => Content::Contact(Contact::from_object(&obj)?),
        Admission::TYPE => Content::Admission(Admission::from_object(&obj)?),
        _ => Content::Unknown { kind },
    })
}

// ---------------------------------------------------------------------------
// Field checks
// ---------------------------------------------------------------------------

fn check_size(bytes: &[u8]) -> Result<(), ContentError> {
    if bytes.len() > MAX_CONTENT_LEN {
        return Err(ContentError::TooLarge { len: bytes.len() });
    }
    Ok(())
}

fn check_chars(
    text: &str,
    max: usize,
    too_long: impl FnOnce(usize) -> ContentError,
) -> Result<(), ContentError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(too_long(chars));
    }
    Ok(())
}

fn check_title(title: &str) -> Result<(), ContentError> {
    if title.trim().is_empty() {
        return Err(ContentError::EmptyTitle);
    }
    check_chars(title, MAX_TITLE_CHARS, |chars| ContentError::TitleTooLong {
        chars,
    })
}

fn check_location(location: &str) -> Result<(), ContentError> {
    check_chars(location, MAX_LOCATION_CHARS, |chars| {
        ContentError::LocationTooLong { chars }
    })
}

fn check_url(url: &str) -> Result<(), ContentError> {
    check_chars(url, MAX_URL_CHARS, |chars| ContentError::UrlTooLong {
        chars,
    })
}

fn check_description(description: &str) -> Result<(), ContentError> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(ContentError::DescriptionTooLong {
            bytes: description.len(),
        });
    }
    Ok(())
}

fn check_capacity(capacity: u32) -> Result<(), ContentError> {
    if capacity == 0 {
        return Err(ContentError::BadCapacity { value: "0".into() });
    }
    Ok(())
}

/// At most [`SHOWN_CHARS`] characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(SHOWN_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

// ---------------------------------------------------------------------------
// Reading JSON fields
// ---------------------------------------------------------------------------

/// A parsed top-level content object.
struct Object(Map<String, Value>);

impl Object {
    /// A required field; absent or `null` is [`ContentError::MissingField`].
    fn required<T>(
        &self,
        field: &'static str,
        convert: impl FnOnce(&'static str, &Value) -> Result<T, ContentError>,
    ) -> Result<T, ContentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(ContentError::MissingField(field)),
            Some(v) => convert(field, v),
        }
    }

    /// An optional field; `null` counts as absent.
    fn optional<T>(
        &self,
        field: &'static str,
        convert: impl FnOnce(&'static str, &Value) -> Result<T, ContentError>,
    ) -> Result<Option<T>, ContentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => convert(field, v).map(Some),
        }
    }

    /// A field of an update: absent keeps, `null` clears, a value sets.
    fn change<T>(
        &self,
        field: &'static str,
        convert: impl FnOnce(&'static str, &Value) -> Result<T, ContentError>,
    ) -> Result<Change<T>, ContentError> {
        match self.0.get(field) {
            None => Ok(Change::Keep),
            Some(Value::Null) => Ok(Change::Clear),
            Some(v) => convert(field, v).map(Change::Set),
        }
    }
}

/// A required field of an update: it may be changed but not cleared.
fn no_clear<T>(field: &'static str, change: Change<T>) -> Result<Option<T>, ContentError> {
    match change {
        Change::Keep => Ok(None),
        Change::Clear => Err(ContentError::CannotClear(field)),
        Change::Set(v) => Ok(Some(v)),
    }
}

fn as_str<'v>(field: &'static str, value: &'v Value) -> Result<&'v str, ContentError> {
    value.as_str().ok_or(ContentError::WrongType {
        field,
        expected: "a string",
    })
}

fn to_string(field: &'static str, value: &Value) -> Result<String, ContentError> {
    as_str(field, value).map(str::to_owned)
}

fn to_time(
    field: &'static str,
) -> impl FnOnce(&'static str, &Value) -> Result<EventTime, ContentError> {
    move |_, value| EventTime::parse(field, as_str(field, value)?)
}

fn to_bool(field: &'static str) -> impl FnOnce(&'static str, &Value) -> Result<bool, ContentError> {
    move |_, value| {
        value.as_bool().ok_or(ContentError::WrongType {
            field,
            expected: "true or false",
        })
    }
}

fn to_message_id(field: &'static str, value: &Value) -> Result<MessageId, ContentError> {
    let text = as_str(field, value)?;
    MessageId::parse(text).map_err(|_| ContentError::BadId {
        field,
        value: shorten(text),
        expected: "a message id like %<base64 of 32 bytes>.blake3",
    })
}

fn to_feed_id(field: &'static str, value: &Value) -> Result<FeedId, ContentError> {
    let text = as_str(field, value)?;
    FeedId::parse(text).map_err(|_| ContentError::BadId {
        field,
        value: shorten(text),
        expected: "a feed id like @<base64 of 32 bytes>.ed25519",
    })
}

fn to_status(field: &'static str, value: &Value) -> Result<RsvpStatus, ContentError> {
    as_str(field, value)?.parse()
}

fn to_capacity(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n >= 1)
        .ok_or_else(|| ContentError::BadCapacity {
            value: shorten(&value.to_string()),
        })
}

fn to_revision(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ContentError::BadRevision {
            value: shorten(&value.to_string()),
        })
}

fn to_decision(field: &'static str, value: &Value) -> Result<Decision, ContentError> {
    match as_str(field, value)? {
        "admitted" => Ok(Decision::Admitted),
        "waitlisted" => Ok(Decision::Waitlisted),
        other => Err(ContentError::BadDecision(shorten(other))),
    }
}

fn to_guests(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ContentError::BadGuests {
            value: shorten(&value.to_string()),
        })
}

// ---------------------------------------------------------------------------
// Writing JSON
// ---------------------------------------------------------------------------

/// A JSON string literal, escaped as serde_json does.
fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Writes one compact JSON object with `"type"` first and the fields in the
/// order they are written. Infallible.
struct JsonWriter {
    out: String,
}

impl JsonWriter {
    fn new(kind: &str) -> JsonWriter {
        let mut out = String::from("{\"type\":");
        out.push_str(&json_string(kind));
        JsonWriter { out }
    }

    /// A field whose value is already JSON text.
    fn raw(&mut self, key: &str, json: &str) {
        self.out.push(',');
        self.out.push_str(&json_string(key));
        self.out.push(':');
        self.out.push_str(json);
    }

    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, &json_string(value));
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn change<T>(&mut self, key: &str, change: &Change<T>, to_json: impl FnOnce(&T) -> String) {
        match change {
            Change::Keep => {}
            Change::Clear => self.raw(key, "null"),
            Change::Set(v) => self.raw(key, &to_json(v)),
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push('}');
        self.out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const START: &str = "2027-01-30T16:00:00-05:00";
    const END: &str = "2027-01-30T19:00:00-05:00";

    fn event_id() -> MessageId {
        MessageId([7; 32])
    }

    fn feed_id() -> FeedId {
        FeedId([9; 32])
    }

    fn time(s: &str) -> EventTime {
        EventTime::parse("start", s).unwrap()
    }

    fn full_event() -> Event {
        Event {
            title: "Winter potluck".into(),
            start: time(START),
            end: Some(time(END)),
            tz: Some("America/New_York".into()),
            location: Some("Community hall, 12 Elm St".into()),
            url: Some("https://example.org/potluck".into()),
            description: Some("Bring a dish.\nVegetarian welcome \"of course\".".into()),
            capacity: Some(40),
        }
    }

    fn minimal_event() -> Event {
        Event::new("Soup", time(START))
    }

    fn parse_str(s: &str) -> Result<Content, ContentError> {
        parse(s.as_bytes())
    }

    fn parse_json(v: serde_json::Value) -> Result<Content, ContentError> {
        parse(v.to_string().as_bytes())
    }

    fn event_json() -> serde_json::Value {
        serde_json::json!({"type": "event", "title": "Soup", "start": START})
    }

    fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
        base[key] = value;
        base
    }

    fn update_json() -> serde_json::Value {
        serde_json::json!({"type": "event-update", "event": event_id().to_string()})
    }

    fn rsvp_json() -> serde_json::Value {
        serde_json::json!({"type": "rsvp", "event": event_id().to_string(), "status": "going"})
    }

    /// Exhaustive: adding a variant breaks this until a case reaches it.
    fn variant(e: &ContentError) -> &'static str {
        match e {
            ContentError::TooLarge { .. } => "TooLarge",
            ContentError::BadJson { .. } => "BadJson",
            ContentError::MissingField(_) => "MissingField",
            ContentError::WrongType { .. } => "WrongType",
            ContentError::EmptyTitle => "EmptyTitle",
            ContentError::TitleTooLong { .. } => "TitleTooLong",
            ContentError::BadTime { .. } => "BadTime",
            ContentError::EndBeforeStart => "EndBeforeStart",
            ContentError::UnknownTimeZone(_) => "UnknownTimeZone",
            ContentError::DescriptionTooLong { .. } => "DescriptionTooLong",
            ContentError::LocationTooLong { .. } => "LocationTooLong",
            ContentError::UrlTooLong { .. } => "UrlTooLong",
            ContentError::BadCapacity { .. } => "BadCapacity",
            ContentError::BadId { .. } => "BadId",
            ContentError::CannotClear(_) => "CannotClear",
            ContentError::EmptyUpdate => "EmptyUpdate",
            ContentError::ReasonTooLong { .. } => "ReasonTooLong",
            ContentError::BadStatus(_) => "BadStatus",
            ContentError::BadGuests { .. } => "BadGuests",
            ContentError::TooManyGuests(_) => "TooManyGuests",
            ContentError::NoteTooLong { .. } => "NoteTooLong",
            ContentError::NameEmpty => "NameEmpty",
            ContentError::NameTooLong { .. } => "NameTooLong",
            ContentError::AboutDescriptionTooLong { .. } => "AboutDescriptionTooLong",
            ContentError::BadRevision { .. } => "BadRevision",
            ContentError::BadDecision(_) => "BadDecision",
        }
    }

    const ALL_VARIANTS: [&str; 26] = [
        "TooLarge",
        "BadJson",
        "MissingField",
        "WrongType",
        "EmptyTitle",
        "TitleTooLong",
        "BadTime",
        "EndBeforeStart",
        "UnknownTimeZone",
        "DescriptionTooLong",
        "LocationTooLong",
        "UrlTooLong",
        "BadCapacity",
        "BadId",
        "CannotClear",
        "EmptyUpdate",
        "ReasonTooLong",
        "BadStatus",
        "BadGuests",
        "TooManyGuests",
        "NoteTooLong",
        "NameEmpty",
        "NameTooLong",
        "AboutDescriptionTooLong",
        "BadRevision",
        "BadDecision",
    ];

    #[test]
    fn every_error_variant_is_reached() {
        use serde_json::json;
        let ev = event_json;
        let big = format!(r#"{{"type":"x","pad":"{}"}}"#, "a".repeat(MAX_CONTENT_LEN));
        let cases: Vec<(Result<Content, ContentError>, ContentError)> = vec![
            (
                parse(big.as_bytes()),
                ContentError::TooLarge { len: big.len() },
            ),
            (
                parse(b"not json"),
                ContentError::BadJson {
                    reason: "expected ident at line 1 column 2".into(),
                },
            ),
            (
                parse_json(json!({"type": "event", "start": START})),
                ContentError::MissingField("title"),
            ),
            (
                parse_json(with(ev(), "title", json!(5))),
                ContentError::WrongType {
                    field: "title",
                    expected: "a string",
                },
            ),
            (
                parse_json(with(ev(), "title", json!(" \t\n "))),
                ContentError::EmptyTitle,
            ),
            (
                parse_json(with(ev(), "title", json!("é".repeat(201)))),
                ContentError::TitleTooLong { chars: 201 },
            ),
            (
                parse_json(with(ev(), "start", json!("tomorrow at 4"))),
                ContentError::BadTime {
                    field: "start",
                    value: "tomorrow at 4".into(),
                },
            ),
            (
                parse_json(with(ev(), "end", json!("2027-01-30T15:59:59-05:00"))),
                ContentError::EndBeforeStart,
            ),
            (
                parse_json(with(ev(), "tz", json!("Mars/Olympus_Mons"))),
                ContentError::UnknownTimeZone("Mars/Olympus_Mons".into()),
            ),
            (
                parse_json(with(ev(), "description", json!("é".repeat(4097)))),
                ContentError::DescriptionTooLong { bytes: 8194 },
            ),
            (
                parse_json(with(ev(), "location", json!("x".repeat(501)))),
                ContentError::LocationTooLong { chars: 501 },
            ),
            (
                parse_json(with(ev(), "url", json!("x".repeat(2001)))),
                ContentError::UrlTooLong { chars: 2001 },
            ),
            (
                parse_json(with(ev(), "capacity", json!(0))),
                ContentError::BadCapacity { value: "0".into() },
            ),
            (
                parse_json(with(rsvp_json(), "event", json!("%abc.blake3"))),
                ContentError::BadId {
                    field: "event",
                    value: "%abc.blake3".into(),
                    expected: "a message id like %<base64 of 32 bytes>.blake3",
                },
            ),
            (
                parse_json(with(update_json(), "title", json!(null))),
                ContentError::CannotClear("title"),
            ),
            (parse_json(update_json()), ContentError::EmptyUpdate),
            (
                parse_json(json!({
                    "type": "event-cancel",
                    "event": event_id().to_string(),
                    "reason": "r".repeat(501),
                })),
                ContentError::ReasonTooLong { chars: 501 },
            ),
            (
                parse_json(with(rsvp_json(), "status", json!("yes"))),
                ContentError::BadStatus("yes".into()),
            ),
            (
                parse_json(with(rsvp_json(), "guests", json!(-1))),
                ContentError::BadGuests { value: "-1".into() },
            ),
            (
                parse_json(with(rsvp_json(), "guests", json!(21))),
                ContentError::TooManyGuests(21),
            ),
            (
                parse_json(with(rsvp_json(), "note", json!("n".repeat(501)))),
                ContentError::NoteTooLong { chars: 501 },
            ),
            (
                parse_json(json!({"type": "about", "name": "  "})),
                ContentError::NameEmpty,
            ),
            (
                parse_json(json!({"type": "about", "name": "n".repeat(101)})),
                ContentError::NameTooLong { chars: 101 },
            ),
            (
                parse_json(
                    json!({"type": "about", "name": "Ana", "description": "d".repeat(1001)}),
                ),
                ContentError::AboutDescriptionTooLong { chars: 1001 },
            ),
            (
                parse_json(json!({
                    "type": "rsvp", "event": event_id().to_string(), "status": "going",
                    "revision": -1
                })),
                ContentError::BadRevision { value: "-1".into() },
            ),
            (
                parse_json(json!({
                    "type": "admission", "event": event_id().to_string(),
                    "rsvp": event_id().to_string(), "author": FeedId([1; 32]).to_string(),
                    "decision": "maybe"
                })),
                ContentError::BadDecision("maybe".into()),
            ),
        ];
        let mut reached = std::collections::BTreeSet::new();
        for (got, want) in cases {
            assert_eq!(got, Err(want.clone()));
            // Every message is non-empty prose.
            assert!(want.to_string().len() > 10, "{want}");
            reached.insert(variant(&want));
        }
        let all: std::collections::BTreeSet<_> = ALL_VARIANTS.into_iter().collect();
        assert_eq!(reached, all);
    }

    #[test]
    fn error_messages_say_what_is_expected() {
        let e = parse_time("start", "2027-01-30 16:00").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`start` must be an RFC 3339 time with an offset, like 2027-01-30T16:00:00-05:00 (got `2027-01-30 16:00`)"
        );
        assert_eq!(
            ContentError::TooManyGuests(30).to_string(),
            "30 guests is too many: an RSVP may bring at most 20"
        );
        assert_eq!(
            ContentError::CannotClear("start").to_string(),
            "`start` cannot be cleared: an event always has one; leave it out to keep it unchanged"
        );
        // Long offending values are shortened.
        let long = "x".repeat(1000);
        match parse_time("end", &long) {
            Err(ContentError::BadTime {
                field: "end",
                value,
            }) => {
                assert_eq!(value.chars().count(), SHOWN_CHARS + 1);
                assert!(value.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn more_ways_to_be_wrong() {
        use serde_json::json;
        let ev = event_json;
        // Duplicate keys are rejected by the generic check.
        assert!(matches!(
            parse_str(r#"{"type":"event","title":"a","title":"b","start":"2027-01-30T16:00:00Z"}"#),
            Err(ContentError::BadJson { .. })
        ));
        assert!(matches!(
            parse(b"\xff\xfe"),
            Err(ContentError::BadJson { .. })
        ));
        assert!(matches!(parse(b"[1]"), Err(ContentError::BadJson { .. })));
        assert!(matches!(
            parse(br#"{"type":1}"#),
            Err(ContentError::BadJson { .. })
        ));
        assert_eq!(
            parse_json(with(ev(), "title", json!(null))),
            Err(ContentError::MissingField("title"))
        );
        assert_eq!(
            parse_json(json!({"type": "event", "title": "x"})),
            Err(ContentError::MissingField("start"))
        );
        assert_eq!(
            parse_json(with(ev(), "start", json!(1_800_000_000))),
            Err(ContentError::WrongType {
                field: "start",
                expected: "a string"
            })
        );
        for bad in [
            json!(-1),
            json!(1.5),
            json!("10"),
            json!(4_294_967_296u64),
            json!(true),
        ] {
            assert!(
                matches!(
                    parse_json(with(ev(), "capacity", bad.clone())),
                    Err(ContentError::BadCapacity { .. })
                ),
                "{bad}"
            );
        }
        for bad in [json!(1.5), json!("2"), json!(4_294_967_296u64)] {
            assert!(
                matches!(
                    parse_json(with(rsvp_json(), "guests", bad.clone())),
                    Err(ContentError::BadGuests { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            parse_json(with(rsvp_json(), "status", json!("Going"))),
            Err(ContentError::BadStatus("Going".into()))
        );
        assert_eq!(
            parse_json(with(rsvp_json(), "status", json!(1))),
            Err(ContentError::WrongType {
                field: "status",
                expected: "a string"
            })
        );
        assert_eq!(
            parse_json(json!({"type": "rsvp", "status": "going"})),
            Err(ContentError::MissingField("event"))
        );
        assert!(matches!(
            parse_json(json!({"type": "contact", "contact": "%abc.blake3"})),
            Err(ContentError::BadId {
                field: "contact",
                ..
            })
        ));
        assert_eq!(
            parse_json(
                json!({"type": "contact", "contact": feed_id().to_string(), "following": "yes"})
            ),
            Err(ContentError::WrongType {
                field: "following",
                expected: "true or false"
            })
        );
        assert_eq!(
            parse_json(with(update_json(), "start", json!(null))),
            Err(ContentError::CannotClear("start"))
        );
        assert_eq!(
            parse_json(json!({"type": "event-update", "title": "x"})),
            Err(ContentError::MissingField("event"))
        );
        assert_eq!(
            parse_json(with(update_json(), "capacity", json!(0))),
            Err(ContentError::BadCapacity { value: "0".into() })
        );
        let mut inverted = with(update_json(), "start", json!(END));
        inverted["end"] = json!(START);
        assert_eq!(parse_json(inverted), Err(ContentError::EndBeforeStart));
    }

    #[test]
    fn limits_are_inclusive() {
        use serde_json::json;
        let ev = event_json;
        // 200 four-byte characters: counted as characters, not bytes.
        parse_json(with(ev(), "title", json!("🍲".repeat(200)))).unwrap();
        parse_json(with(ev(), "description", json!("x".repeat(8192)))).unwrap();
        parse_json(with(ev(), "location", json!("🍲".repeat(500)))).unwrap();
        parse_json(with(ev(), "url", json!("x".repeat(2000)))).unwrap();
        parse_json(with(ev(), "capacity", json!(u32::MAX))).unwrap();
        parse_json(with(ev(), "capacity", json!(1))).unwrap();
        parse_json(with(ev(), "end", json!(START))).unwrap();
        parse_json(with(rsvp_json(), "guests", json!(20))).unwrap();
        parse_json(with(rsvp_json(), "note", json!("🍲".repeat(500)))).unwrap();
        parse_json(
            json!({"type": "about", "name": "🍲".repeat(100), "description": "d".repeat(1000)}),
        )
        .unwrap();
        parse_json(json!({"type": "event-cancel", "event": event_id().to_string(), "reason": "r".repeat(500)}))
            .unwrap();
    }

    #[test]
    fn event_bytes_are_exact_and_round_trip() {
        let event = full_event();
        event.validate().unwrap();
        let bytes = event.to_content_bytes();
        let expected = concat!(
            r#"{"type":"event","title":"Winter potluck","start":"2027-01-30T16:00:00-05:00","#,
            r#""end":"2027-01-30T19:00:00-05:00","tz":"America/New_York","#,
            r#""location":"Community hall, 12 Elm St","url":"https://example.org/potluck","#,
            r#""description":"Bring a dish.\nVegetarian welcome \"of course\".","capacity":40}"#
        );
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert_eq!(parse(&bytes), Ok(Content::Event(event.clone())));
        assert_eq!(Content::Event(event).to_json_bytes(), Some(bytes));
    }

    #[test]
    fn absent_fields_are_omitted() {
        let event = minimal_event();
        let bytes = event.to_content_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"type":"event","title":"Soup","start":"2027-01-30T16:00:00-05:00"}"#
        );
        assert_eq!(parse(&bytes), Ok(Content::Event(event)));
    }

    #[test]
    fn every_type_round_trips() {
        let mut update = EventUpdate::new(event_id());
        update.title = Some("New title".into());
        update.end = Change::Clear;
        update.capacity = Change::Set(12);
        update.tz = Change::Set("Europe/Paris".into());
        let all = [
            Content::Event(full_event()),
            Content::Event(minimal_event()),
            Content::EventUpdate(update),
            Content::EventCancel(EventCancel {
                event: event_id(),
                reason: Some("Snow storm".into()),
            }),
            Content::EventCancel(EventCancel {
                event: event_id(),
                reason: None,
            }),
            Content::Rsvp(Rsvp {
                event: event_id(),
                status: RsvpStatus::NotGoing,
                guests: 0,
                note: Some("Next time!".into()),
                revision: None,
            }),
            Content::Rsvp(Rsvp {
                event: event_id(),
                status: RsvpStatus::Going,
                guests: 3,
                note: None,
                revision: None,
            }),
            Content::About(About {
                name: "Ana".into(),
                description: Some("Makes soup.".into()),
            }),
            Content::About(About {
                name: "Bo".into(),
                description: None,
            }),
            Content::Contact(Contact {
                contact: feed_id(),
                following: true,
                blocking: false,
            }),
        ];
        for content in all {
            content.validate().unwrap();
            let bytes = content.to_json_bytes().unwrap();
            assert!(bytes.starts_with(format!(r#"{{"type":"{}","#, content.kind()).as_bytes()));
            assert_eq!(
                parse(&bytes),
                Ok(content.clone()),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            // The generic check agrees on the type.
            assert_eq!(
                crate::feed::validate::content_type(&bytes).unwrap(),
                content.kind()
            );
        }
    }

    #[test]
    fn exact_bytes_of_the_small_types() {
        let id = event_id().to_string();
        let rsvp = Rsvp {
            event: event_id(),
            status: RsvpStatus::Maybe,
            guests: 0,
            note: None,
            revision: None,
        };
        assert_eq!(
            String::from_utf8(rsvp.to_content_bytes()).unwrap(),
            format!(r#"{{"type":"rsvp","event":"{id}","status":"maybe","guests":0}}"#)
        );
        let cancel = EventCancel {
            event: event_id(),
            reason: None,
        };
        assert_eq!(
            String::from_utf8(cancel.to_content_bytes()).unwrap(),
            format!(r#"{{"type":"event-cancel","event":"{id}"}}"#)
        );
        let contact = Contact {
            contact: feed_id(),
            following: false,
            blocking: true,
        };
        assert_eq!(
            String::from_utf8(contact.to_content_bytes()).unwrap(),
            format!(
                r#"{{"type":"contact","contact":"{}","following":false,"blocking":true}}"#,
                feed_id()
            )
        );
        let mut update = EventUpdate::new(event_id());
        update.start = Some(time("2027-02-06T16:00:00-05:00"));
        update.location = Change::Clear;
        assert_eq!(
            String::from_utf8(update.to_content_bytes()).unwrap(),
            format!(
                r#"{{"type":"event-update","event":"{id}","start":"2027-02-06T16:00:00-05:00","location":null}}"#
            )
        );
    }

    #[test]
    fn defaults_unknown_fields_and_nulls() {
        let id = event_id().to_string();
        // guests defaults to 0; unknown fields are ignored.
        let rsvp = parse_str(&format!(
            r#"{{"future":{{"nested":[1,2]}},"status":"going","type":"rsvp","event":"{id}"}}"#
        ))
        .unwrap();
        assert_eq!(
            rsvp,
            Content::Rsvp(Rsvp {
                event: event_id(),
                status: RsvpStatus::Going,
                guests: 0,
                note: None,
                revision: None,
            })
        );
        // Both booleans default to false.
        let contact = parse_str(&format!(
            r#"{{"type":"contact","contact":"{}"}}"#,
            feed_id()
        ))
        .unwrap();
        assert_eq!(
            contact,
            Content::Contact(Contact {
                contact: feed_id(),
                following: false,
                blocking: false,
            })
        );
        // Outside event-update, null is the same as absent.
        let event = parse_str(&format!(
            r#"{{ "type" : "event", "title":"Soup", "start":"{START}", "end":null, "tz":null,
                  "location":null, "url":null, "description":null, "capacity":null, "x":null }}"#
        ))
        .unwrap();
        assert_eq!(event, Content::Event(minimal_event()));
        let rsvp = parse_str(&format!(
            r#"{{"type":"rsvp","event":"{id}","status":"maybe","guests":null,"note":null}}"#
        ))
        .unwrap();
        assert!(matches!(
            rsvp,
            Content::Rsvp(Rsvp {
                guests: 0,
                note: None,
                ..
            })
        ));
    }

    #[test]
    fn unknown_type_is_valid_but_opaque() {
        let c =
            parse_str(r#"{"type":"poll","question":"Soup or salad?","options":[1,{"a":null}]}"#)
                .unwrap();
        assert_eq!(
            c,
            Content::Unknown {
                kind: "poll".into()
            }
        );
        assert_eq!(c.kind(), "poll");
        assert_eq!(c.to_json_bytes(), None);
        assert_eq!(c.validate(), Ok(()));
        // Fields that would be invalid on a known type do not matter.
        assert!(matches!(
            parse_str(r#"{"type":"Event","title":5}"#),
            Ok(Content::Unknown { .. })
        ));
        assert!(matches!(
            parse_str(r#"{"type":""}"#),
            Ok(Content::Unknown { .. })
        ));
    }

    #[test]
    fn update_merges_sets_and_clears() {
        let original = full_event();
        let update = match parse_str(&format!(
            r#"{{"type":"event-update","event":"{}","title":"Spring potluck","location":null,"capacity":null,"url":"https://example.org/spring","unknown":1}}"#,
            event_id()
        ))
        .unwrap()
        {
            Content::EventUpdate(u) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!(update.event, event_id());
        assert_eq!(update.title.as_deref(), Some("Spring potluck"));
        assert_eq!(update.start, None);
        assert_eq!(update.end, Change::Keep);
        assert_eq!(update.location, Change::Clear);
        assert_eq!(update.capacity, Change::Clear);
        assert_eq!(update.url, Change::Set("https://example.org/spring".into()));

        let merged = original.apply(&update).unwrap();
        assert_eq!(
            merged,
            Event {
                title: "Spring potluck".into(),
                location: None,
                capacity: None,
                url: Some("https://example.org/spring".into()),
                ..full_event()
            }
        );
        // The merged event is itself valid, publishable content.
        merged.validate().unwrap();

        // Clearing every optional field leaves the minimal event.
        let mut clear_all = EventUpdate::new(event_id());
        clear_all.title = Some("Soup".into());
        clear_all.end = Change::Clear;
        clear_all.tz = Change::Clear;
        clear_all.location = Change::Clear;
        clear_all.url = Change::Clear;
        clear_all.description = Change::Clear;
        clear_all.capacity = Change::Clear;
        assert_eq!(original.apply(&clear_all).unwrap(), minimal_event());

        // Setting fields on an event that lacks them.
        let mut set = EventUpdate::new(event_id());
        set.end = Change::Set(time(END));
        set.tz = Change::Set("America/New_York".into());
        set.capacity = Change::Set(5);
        let grown = minimal_event().apply(&set).unwrap();
        assert_eq!(grown.end_ms(), Some(time(END).as_millisecond()));
        assert_eq!(grown.tz.as_deref(), Some("America/New_York"));
        assert_eq!(grown.capacity, Some(5));
    }

    #[test]
    fn merged_event_is_revalidated() {
        // Moving the start past the unchanged end.
        let mut later = EventUpdate::new(event_id());
        later.start = Some(time("2027-01-30T20:00:00-05:00"));
        later.validate().unwrap();
        assert_eq!(
            full_event().apply(&later),
            Err(ContentError::EndBeforeStart)
        );
        // Moving both is fine.
        later.end = Change::Set(time("2027-01-30T23:00:00-05:00"));
        let moved = full_event().apply(&later).unwrap();
        assert_eq!(moved.start.as_str(), "2027-01-30T20:00:00-05:00");
        // Clearing the end makes any start acceptable.
        let mut no_end = EventUpdate::new(event_id());
        no_end.start = Some(time("2027-03-01T10:00:00Z"));
        no_end.end = Change::Clear;
        assert_eq!(full_event().apply(&no_end).unwrap().end, None);
        // A bad value built in code is caught by apply too.
        let mut bad = EventUpdate::new(event_id());
        bad.title = Some(String::new());
        assert_eq!(full_event().apply(&bad), Err(ContentError::EmptyTitle));
        assert_eq!(bad.validate(), Err(ContentError::EmptyTitle));
        assert_eq!(
            EventUpdate::new(event_id()).validate(),
            Err(ContentError::EmptyUpdate)
        );
    }

    #[test]
    fn validate_catches_oversize_content() {
        let event = Event {
            title: "🍲".repeat(200),
            location: Some("🍲".repeat(500)),
            url: Some("🍲".repeat(2000)),
            description: Some("x".repeat(8192)),
            ..minimal_event()
        };
        let len = event.to_content_bytes().len();
        assert!(len > MAX_CONTENT_LEN);
        assert_eq!(event.validate(), Err(ContentError::TooLarge { len }));
        assert_eq!(
            Event {
                capacity: Some(0),
                ..minimal_event()
            }
            .validate(),
            Err(ContentError::BadCapacity { value: "0".into() })
        );
        assert_eq!(
            Rsvp {
                event: event_id(),
                status: RsvpStatus::Going,
                guests: 21,
                note: None,
                revision: None,
            }
            .validate(),
            Err(ContentError::TooManyGuests(21))
        );
    }

    #[test]
    fn times_keep_the_original_and_give_milliseconds() {
        let event = full_event();
        let utc: Timestamp = "2027-01-30T21:00:00Z".parse().unwrap();
        assert_eq!(event.start_ms(), utc.as_millisecond());
        assert_eq!(event.start_ms(), 1_801_342_800_000);
        assert_eq!(event.end_ms(), Some(1_801_353_600_000));
        assert_eq!(minimal_event().end_ms(), None);
        assert_eq!(event.start.as_str(), START);
        assert_eq!(event.start.to_string(), START);
        // Same instant written differently: original text is kept.
        let z = time("2027-01-30T21:00:00Z");
        assert_eq!(z.timestamp(), event.start.timestamp());
        assert_ne!(z, event.start);
    }

    #[test]
    fn strict_rfc3339() {
        for good in [
            "2027-01-30T16:00:00-05:00",
            "2027-01-30T21:00:00Z",
            "2027-01-30t21:00:00z",
            "2027-01-30T21:00:00.123456789+05:30",
            "2027-01-30T16:00:00-00:00",
            "2027-01-30T16:00:00+23:59",
            "2016-12-31T23:59:60Z",
            "1969-07-20T20:17:00Z",
        ] {
            parse_time("start", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "2027-01-30",
            "2027-01-30T16:00:00",
            "2027-01-30T16:00-05:00",
            "2027-01-30 16:00:00-05:00",
            "2027-01-30T16:00:00-0500",
            "2027-01-30T16:00:00-05",
            "2027-01-30T16:00:00+24:00",
            "2027-01-30T16:00:00+05:60",
            "2027-01-30T16:00:00.Z",
            "2027-01-30T16:00:00.1234567891Z",
            "2027-01-30T16:00:00-05:00[America/New_York]",
            "2027-01-30T16:00:00Z ",
            " 2027-01-30T16:00:00Z",
            "2027-02-29T16:00:00Z",
            "2027-01-30T24:00:00Z",
            "+2027-01-30T16:00:00Z",
            "２０２７-01-30T16:00:00Z",
            "1800000000",
        ] {
            assert_eq!(
                parse_time("end", bad),
                Err(ContentError::BadTime {
                    field: "end",
                    value: bad.into()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_across_daylight_saving() {
        let ny = Some("America/New_York");
        assert_eq!(
            display_time("2027-01-30T21:00:00Z", ny),
            "2027-01-30T16:00:00-05:00[America/New_York]"
        );
        assert_eq!(
            display_time("2027-07-30T21:00:00Z", ny),
            "2027-07-30T17:00:00-04:00[America/New_York]"
        );
        // The same wall-clock time written with an offset shows as written.
        assert_eq!(
            display_time("2027-01-30T16:00:00-05:00", ny),
            "2027-01-30T16:00:00-05:00[America/New_York]"
        );
        assert_eq!(
            display_time("2027-07-30T16:00:00-04:00", ny),
            "2027-07-30T16:00:00-04:00[America/New_York]"
        );
        // Southern hemisphere: summer time in January.
        assert_eq!(
            display_time("2027-01-30T00:00:00Z", Some("Australia/Sydney")),
            "2027-01-30T11:00:00+11:00[Australia/Sydney]"
        );
        // No tz: the author's original string, unchanged.
        assert_eq!(
            display_time("2027-01-30t21:00:00z", None),
            "2027-01-30t21:00:00z"
        );
        let event = full_event();
        assert_eq!(
            event.display_start(),
            "2027-01-30T16:00:00-05:00[America/New_York]"
        );
        assert_eq!(
            event.display_end().as_deref(),
            Some("2027-01-30T19:00:00-05:00[America/New_York]")
        );
        assert_eq!(minimal_event().display_start(), START);
        assert_eq!(minimal_event().display_end(), None);
    }

    #[test]
    fn display_falls_back_to_the_original() {
        for (original, tz) in [
            ("garbage", Some("America/New_York")),
            ("", Some("UTC")),
            ("2027-01-30T21:00:00Z", Some("Nowhere/Special")),
            ("2027-01-30T21:00:00Z", Some("")),
            ("2027-01-30T21:00:00Z", Some("america/new_york")),
            ("2027-01-30T21:00:00Z", Some("../../etc/passwd")),
            ("9999-12-31T23:59:59-23:59", Some("Pacific/Kiritimati")),
        ] {
            let shown = display_time(original, tz);
            if original == "9999-12-31T23:59:59-23:59" {
                // Out of range for display in that zone, or shown: never a panic.
                assert!(!shown.is_empty());
            } else {
                assert_eq!(shown, original, "{original:?} {tz:?}");
            }
        }
    }

    #[test]
    fn time_zones_must_be_spelled_exactly() {
        validate_tz("America/New_York").unwrap();
        validate_tz("Europe/Paris").unwrap();
        validate_tz("UTC").unwrap();
        for bad in [
            "",
            "america/new_york",
            "EST5EDT,M3.2.0,M11.1.0",
            "+05:00",
            "Mars/Base",
        ] {
            assert_eq!(
                validate_tz(bad),
                Err(ContentError::UnknownTimeZone(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rsvp_status_words() {
        for (status, word) in [
            (RsvpStatus::Going, "going"),
            (RsvpStatus::Maybe, "maybe"),
            (RsvpStatus::NotGoing, "not-going"),
        ] {
            assert_eq!(status.as_str(), word);
            assert_eq!(status.to_string(), word);
            assert_eq!(word.parse::<RsvpStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{word}\"")
            );
            assert_eq!(
                serde_json::from_str::<RsvpStatus>(&format!("\"{word}\"")).unwrap(),
                status
            );
        }
        assert_eq!(
            "not_going".parse::<RsvpStatus>(),
            Err(ContentError::BadStatus("not_going".into()))
        );
    }

    #[test]
    fn event_serde_for_storage() {
        for event in [full_event(), minimal_event()] {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains("null"), "{json}");
            assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        }
        assert!(serde_json::from_str::<Event>(r#"{"title":"x","start":"not a time"}"#).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_known_shapes(
            kind in prop::sample::select(vec!["event", "event-update", "event-cancel", "rsvp", "about", "contact"]),
            key in prop::sample::select(vec!["title", "start", "end", "tz", "capacity", "guests", "status", "event", "contact", "following", "name", "note"]),
            value in prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                ".{0,40}".prop_map(serde_json::Value::from),
            ],
        ) {
            let mut obj = serde_json::json!({"type": kind, "title": "t", "start": START,
                "event": event_id().to_string(), "status": "going", "name": "n",
                "contact": feed_id().to_string(), "end": END});
            obj[key] = value;
            if let Ok(content) = parse(obj.to_string().as_bytes())
                && let Some(bytes) = content.to_json_bytes()
            {
                prop_assert_eq!(parse(&bytes), Ok(content));
            }
        }

        #[test]
        fn display_never_panics(original in ".{0,40}", tz in proptest::option::of(".{0,30}")) {
            let _ = display_time(&original, tz.as_deref());
        }

        #[test]
        fn display_of_valid_times_names_the_zone(secs in -10_000_000_000i64..10_000_000_000) {
            let t = Timestamp::from_second(secs).unwrap().to_string();
            let shown = display_time(&t, Some("America/New_York"));
            prop_assert!(shown.ends_with("[America/New_York]"), "{}", shown);
        }
    }
}
