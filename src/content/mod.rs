//! The typed content of version 1: events, event updates and cancellations,
//! RSVPs, names ("about"), follows/blocks ("contact") and comments.
//!
//! Everything here is pure: no I/O, no clock. [`parse`] turns the content
//! bytes of a message into a [`Content`], and each known type implements
//! [`KnownContent`], whose `to_content_bytes` gives the exact compact JSON
//! to publish, with `"type"` first (bring the trait into scope to call it).
//! See `docs/content.md` for the shapes, limits and rules.
//!
//! The generic check that content is a UTF-8 JSON object with a string
//! `type` and unique top-level keys lives in [`crate::feed::validate`]; [`parse`]
//! reuses it rather than repeating it.
//!
//! On parse, unknown extra fields are ignored (forward compatibility), and in
//! every type except `event-update` a field set to JSON `null` is the same
//! as an absent field. In `event-update`, `null` means "clear this field".
//!
//! # Layout
//! - [`KnownContent`], the one trait of the eleven known types, and [`parse`],
//!   the one place that maps a `type` string to a type, are here;
//! - `event`: `event`, `event-update` and `event-cancel`;
//! - `rsvp`: `rsvp` and `admission`;
//! - `social`: `about` and `contact`;
//! - `comment`: `comment`, `comment-edit`, `comment-delete`,
//!   `comment-hide` and the event's [`CommentPolicy`];
//! - `links`: the web links in plain text;
//! - `time`: times and zones; `error`: [`ContentError`];
//! - `json`: how fields are read from JSON and the exact bytes written.

use crate::feed::message::MAX_CONTENT_LEN;
use crate::feed::validate::{DecodedContent, ValidationError, content_object};

mod comment;
mod error;
mod event;
mod json;
mod links;
mod rsvp;
mod social;
mod time;

#[cfg(test)]
mod tests;

pub use comment::{
    Comment, CommentDelete, CommentEdit, CommentHide, CommentPolicy, MAX_COMMENT_TEXT_BYTES,
    MAX_SEEN,
};
pub use error::{ContentError, shorten_to};
pub use event::{
    Change, Event, EventCancel, EventUpdate, MAX_DESCRIPTION_BYTES, MAX_LOCATION_CHARS,
    MAX_REASON_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS,
};
use json::{JsonWriter, Object};
pub use links::{TextPart, is_web_link, links_in, split_links};
pub use rsvp::{Admission, Decision, MAX_GUESTS, MAX_NOTE_CHARS, Rsvp, RsvpStatus};
pub use social::{About, Contact, MAX_ABOUT_DESCRIPTION_CHARS, MAX_NAME_CHARS};
pub(crate) use time::starts_with_shape;
pub use time::{EventTime, display_time, lookup_tz, parse_time, rfc3339_in_zone, validate_tz};

/// What the eleven known types of content share: the `type` they are
/// published under, how they are read from JSON, the rules their fields
/// obey, and the exact bytes to publish.
///
/// [`parse`] reads a known type with [`KnownContent::from_object`] and then
/// checks it with [`KnownContent::check_fields`]. A value built in code is
/// checked with [`KnownContent::validate`] before it is published as
/// [`KnownContent::to_content_bytes`]. The reading and writing halves take
/// types private to this module, so only the types here implement it.
pub trait KnownContent: Sized {
    /// The `type` string, e.g. `"event"`.
    const TYPE: &'static str;

    /// Reads the fields from a content object whose `type` is
    /// [`Self::TYPE`]: a missing required field or a value of the wrong
    /// kind is an error; the rules of [`Self::check_fields`] are not
    /// applied yet.
    fn from_object(obj: &Object) -> Result<Self, ContentError>;

    /// Checks every field against its limits and rules (but not the size
    /// of the whole). By default there is nothing to check: every
    /// constraint is carried by the field types.
    fn check_fields(&self) -> Result<(), ContentError> {
        Ok(())
    }

    /// Writes the fields that follow `"type"`, in the order they are
    /// published.
    fn write_fields(&self, w: &mut JsonWriter);

    /// The exact bytes to publish: compact JSON, `"type"` first.
    fn to_content_bytes(&self) -> Vec<u8> {
        let mut w = JsonWriter::new(Self::TYPE);
        self.write_fields(&mut w);
        w.finish()
    }

    /// Checks every field and that the published content fits in a
    /// message.
    fn validate(&self) -> Result<(), ContentError> {
        self.check_fields()?;
        check_size(self.to_content_bytes().len())
    }
}

/// [`KnownContent`] as a trait object, for [`Content`]'s one dispatch over
/// its variants (a trait with a constant cannot be one itself). The names
/// differ from the trait's so that a call never has two candidates.
trait AnyKnown {
    /// [`KnownContent::TYPE`].
    fn kind(&self) -> &'static str;
    /// [`KnownContent::to_content_bytes`].
    fn bytes(&self) -> Vec<u8>;
    /// [`KnownContent::validate`].
    fn check(&self) -> Result<(), ContentError>;
}

impl<T: KnownContent> AnyKnown for T {
    fn kind(&self) -> &'static str {
        T::TYPE
    }

    fn bytes(&self) -> Vec<u8> {
        self.to_content_bytes()
    }

    fn check(&self) -> Result<(), ContentError> {
        self.validate()
    }
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
    /// `comment`.
    Comment(Comment),
    /// `comment-edit`.
    CommentEdit(CommentEdit),
    /// `comment-delete`.
    CommentDelete(CommentDelete),
    /// `comment-hide`.
    CommentHide(CommentHide),
    /// A type this version does not know: valid, stored, not indexed.
    Unknown {
        /// The `type` string.
        kind: String,
    },
}

impl Content {
    /// The content of a known type, or (as the error) the `type` of an
    /// unknown one.
    fn known(&self) -> Result<&dyn AnyKnown, &str> {
        Ok(match self {
            Content::Event(c) => c,
            Content::EventUpdate(c) => c,
            Content::EventCancel(c) => c,
            Content::Rsvp(c) => c,
            Content::About(c) => c,
            Content::Contact(c) => c,
            Content::Admission(c) => c,
            Content::Comment(c) => c,
            Content::CommentEdit(c) => c,
            Content::CommentDelete(c) => c,
            Content::CommentHide(c) => c,
            Content::Unknown { kind } => return Err(kind),
        })
    }

    /// The `type` string.
    pub fn kind(&self) -> &str {
        match self.known() {
            Ok(known) => known.kind(),
            Err(unknown) => unknown,
        }
    }

    /// The exact bytes to publish for a known type; `None` for
    /// [`Content::Unknown`], which only carries its `type`.
    pub fn to_json_bytes(&self) -> Option<Vec<u8>> {
        self.known().ok().map(AnyKnown::bytes)
    }

    /// Validates a known type as for publishing (see
    /// [`KnownContent::validate`]); an unknown type is always valid.
    pub fn validate(&self) -> Result<(), ContentError> {
        self.known().map_or(Ok(()), AnyKnown::check)
    }
}

/// Parses the content bytes of a message.
///
/// Dispatches on `"type"`: an unknown type gives [`Content::Unknown`]
/// (valid, just not indexed); a known type with invalid fields is an
/// error. Unknown extra fields are ignored.
pub fn parse(content: &[u8]) -> Result<Content, ContentError> {
    check_size(content.len())?;
    from_object(content_object(content))
}

/// [`parse`] of content that validation already read
/// ([`crate::feed::validate::check_standalone_decoded`]), without reading
/// the text again: the same result as [`parse`] of the same bytes.
pub fn parse_decoded(content: DecodedContent) -> Result<Content, ContentError> {
    check_size(content.content_len())?;
    from_object(content.into_object())
}

/// The typed content of a decoded content object, or the error of content
/// that has none.
fn from_object(
    decoded: Result<(String, serde_json::Map<String, serde_json::Value>), ValidationError>,
) -> Result<Content, ContentError> {
    let (kind, map) = decoded.map_err(|e| ContentError::BadJson {
        reason: match e {
            ValidationError::BadContent { reason } => reason,
            other => other.to_string(),
        },
    })?;
    let obj = Object(map);
    Ok(match kind.as_str() {
        Event::TYPE => Content::Event(read(&obj)?),
        EventUpdate::TYPE => Content::EventUpdate(read(&obj)?),
        EventCancel::TYPE => Content::EventCancel(read(&obj)?),
        Rsvp::TYPE => Content::Rsvp(read(&obj)?),
        About::TYPE => Content::About(read(&obj)?),
        Contact::TYPE => Content::Contact(read(&obj)?),
        Admission::TYPE => Content::Admission(read(&obj)?),
        Comment::TYPE => Content::Comment(read(&obj)?),
        CommentEdit::TYPE => Content::CommentEdit(read(&obj)?),
        CommentDelete::TYPE => Content::CommentDelete(read(&obj)?),
        CommentHide::TYPE => Content::CommentHide(read(&obj)?),
        _ => Content::Unknown { kind },
    })
}

/// Reads a known type from its object and checks its fields.
fn read<T: KnownContent>(obj: &Object) -> Result<T, ContentError> {
    let content = T::from_object(obj)?;
    content.check_fields()?;
    Ok(content)
}

// ---------------------------------------------------------------------------
// Checks shared by the types
// ---------------------------------------------------------------------------

/// Content of `len` bytes is at most [`MAX_CONTENT_LEN`] bytes.
fn check_size(len: usize) -> Result<(), ContentError> {
    if len > MAX_CONTENT_LEN {
        return Err(ContentError::TooLarge { len });
    }
    Ok(())
}

/// `text` has at most `max` Unicode scalar values; `too_long` makes the
/// error from the count.
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
