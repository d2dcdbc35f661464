//! Times as authors write them (RFC 3339 with an offset) and IANA zones:
//! parsing, checking and showing them.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::ContentError;
use super::error::shorten;

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
