//! Why content of a known type is not valid.

use thiserror::Error;

use super::{
    MAX_ABOUT_DESCRIPTION_CHARS, MAX_COMMENT_TEXT_BYTES, MAX_DESCRIPTION_BYTES, MAX_GUESTS,
    MAX_LOCATION_CHARS, MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_REASON_CHARS, MAX_SEEN,
    MAX_TITLE_CHARS, MAX_URL_CHARS,
};
use crate::feed::message::MAX_CONTENT_LEN;

/// How much of an offending value an error message repeats.
pub(crate) const SHOWN_CHARS: usize = 80;

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
    /// The comment policy is not one of the three known words.
    #[error("`comments` must be \"everyone\", \"answered\" or \"nobody\" (got `{0}`)")]
    BadCommentPolicy(String),
    /// A comment's text is empty or only white space.
    #[error("`text` must not be empty or only spaces")]
    EmptyCommentText,
    /// A comment's text is longer than [`MAX_COMMENT_TEXT_BYTES`].
    #[error("`text` is {bytes} bytes of UTF-8; the limit is {MAX_COMMENT_TEXT_BYTES} (8 KiB)")]
    CommentTextTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// A comment's `seen` names more than [`MAX_SEEN`] comments.
    #[error("`seen` names {0} comments; the limit is {MAX_SEEN}")]
    TooManySeen(usize),
}

/// At most [`SHOWN_CHARS`] characters of `text`, for error messages.
pub(crate) fn shorten(text: &str) -> String {
    shorten_to(text, SHOWN_CHARS)
}

/// At most `max_chars` characters of `text`, with `…` when cut: what an
/// error message quotes of a value it refuses (which may be long, or
/// anything at all).
pub fn shorten_to(text: &str, max_chars: usize) -> String {
    let mut short: String = text.chars().take(max_chars).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}
