//! The JSON rules of content: how each field is read from a parsed object
//! (absent, `null`, wrong kind of value) and how the exact bytes to
//! publish are written.

use serde_json::{Map, Value};

use super::error::shorten;
use super::{Change, CommentPolicy, ContentError, Decision, EventTime, RsvpStatus};
use crate::feed::message::{FeedId, MessageId};

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// A parsed top-level content object, from which each known type reads
/// its fields.
pub struct Object(pub(super) Map<String, Value>);

impl Object {
    /// A required field; absent or `null` is [`ContentError::MissingField`].
    pub(super) fn required<T>(
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
    pub(super) fn optional<T>(
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
    pub(super) fn change<T>(
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
pub(super) fn no_clear<T>(
    field: &'static str,
    change: Change<T>,
) -> Result<Option<T>, ContentError> {
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

pub(super) fn to_string(field: &'static str, value: &Value) -> Result<String, ContentError> {
    as_str(field, value).map(str::to_owned)
}

pub(super) fn to_time(
    field: &'static str,
) -> impl FnOnce(&'static str, &Value) -> Result<EventTime, ContentError> {
    move |_, value| EventTime::parse(field, as_str(field, value)?)
}

pub(super) fn to_bool(
    field: &'static str,
) -> impl FnOnce(&'static str, &Value) -> Result<bool, ContentError> {
    move |_, value| {
        value.as_bool().ok_or(ContentError::WrongType {
            field,
            expected: "true or false",
        })
    }
}

pub(super) fn to_message_id(field: &'static str, value: &Value) -> Result<MessageId, ContentError> {
    to_id(
        field,
        value,
        MessageId::parse,
        "a message id like %<base64 of 32 bytes>.blake3",
    )
}

/// A JSON array of at most `max` message ids; a longer one is refused
/// before any id is read.
pub(super) fn to_message_ids(
    max: usize,
) -> impl FnOnce(&'static str, &Value) -> Result<Vec<MessageId>, ContentError> {
    move |field, value| {
        let items = value.as_array().ok_or(ContentError::WrongType {
            field,
            expected: "an array of message ids",
        })?;
        if items.len() > max {
            return Err(ContentError::TooManySeen(items.len()));
        }
        items
            .iter()
            .map(|item| to_message_id(field, item))
            .collect()
    }
}

pub(super) fn to_comment_policy(
    field: &'static str,
    value: &Value,
) -> Result<CommentPolicy, ContentError> {
    as_str(field, value)?.parse()
}

pub(super) fn to_feed_id(field: &'static str, value: &Value) -> Result<FeedId, ContentError> {
    to_id(
        field,
        value,
        FeedId::parse,
        "a feed id like @<base64 of 32 bytes>.ed25519",
    )
}

/// An id written as a string; `expected` says what it should look like.
fn to_id<T, E>(
    field: &'static str,
    value: &Value,
    parse: impl FnOnce(&str) -> Result<T, E>,
    expected: &'static str,
) -> Result<T, ContentError> {
    let text = as_str(field, value)?;
    parse(text).map_err(|_| ContentError::BadId {
        field,
        value: shorten(text),
        expected,
    })
}

pub(super) fn to_status(field: &'static str, value: &Value) -> Result<RsvpStatus, ContentError> {
    as_str(field, value)?.parse()
}

/// A whole number that fits in 32 bits, or `None` (negative, fractional,
/// too large, or not a number at all).
fn as_u32(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

pub(super) fn to_capacity(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    as_u32(value)
        .filter(|&n| n >= 1)
        .ok_or_else(|| ContentError::BadCapacity {
            value: shorten(&value.to_string()),
        })
}

pub(super) fn to_revision(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    as_u32(value).ok_or_else(|| ContentError::BadRevision {
        value: shorten(&value.to_string()),
    })
}

pub(super) fn to_decision(field: &'static str, value: &Value) -> Result<Decision, ContentError> {
    match as_str(field, value)? {
        "admitted" => Ok(Decision::Admitted),
        "waitlisted" => Ok(Decision::Waitlisted),
        other => Err(ContentError::BadDecision(shorten(other))),
    }
}

pub(super) fn to_guests(_field: &'static str, value: &Value) -> Result<u32, ContentError> {
    as_u32(value).ok_or_else(|| ContentError::BadGuests {
        value: shorten(&value.to_string()),
    })
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// A JSON string literal, escaped as serde_json does.
pub(super) fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Writes one compact JSON object with `"type"` first and the fields in the
/// order they are written. Infallible.
pub struct JsonWriter {
    out: String,
}

impl JsonWriter {
    pub(super) fn new(kind: &str) -> JsonWriter {
        let mut out = String::from("{\"type\":");
        out.push_str(&json_string(kind));
        JsonWriter { out }
    }

    /// A field whose value is already JSON text.
    pub(super) fn raw(&mut self, key: &str, json: &str) {
        self.out.push(',');
        self.out.push_str(&json_string(key));
        self.out.push(':');
        self.out.push_str(json);
    }

    pub(super) fn str(&mut self, key: &str, value: &str) {
        self.raw(key, &json_string(value));
    }

    pub(super) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    pub(super) fn change<T>(
        &mut self,
        key: &str,
        change: &Change<T>,
        to_json: impl FnOnce(&T) -> String,
    ) {
        match change {
            Change::Keep => {}
            Change::Clear => self.raw(key, "null"),
            Change::Set(v) => self.raw(key, &to_json(v)),
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.out.push('}');
        self.out.into_bytes()
    }
}
