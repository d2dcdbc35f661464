//! From what a person types (a date, a wall-clock time, a zone) to the
//! instant it means, with daylight saving time handled here: a time that
//! does not exist (clocks jump forward over it) or that happens twice
//! (clocks fall back over it) is an error that says so, never a guess.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Span, Timestamp};
use thiserror::Error;

use crate::content::{ContentError, EventTime};

/// Why a date, time or zone typed into a form does not give one instant.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WallClockError {
    /// The date is not `YYYY-MM-DD`.
    #[error("the date must look like 2027-01-30 (got `{0}`)")]
    BadDate(String),
    /// The time is not `HH:MM` (or `HH:MM:SS`).
    #[error("the time must look like 18:30 (got `{0}`)")]
    BadTime(String),
    /// The duration is not like `2h`, `90m` or `1h30m`.
    #[error("the duration must look like 2h, 90m or 1h30m (got `{0}`)")]
    BadDuration(String),
    /// The zone is not an IANA name this node knows.
    #[error(transparent)]
    Zone(#[from] ContentError),
    /// Clocks jump forward over this time: it does not exist that day.
    #[error(
        "{time} does not exist on {date} in {zone}: the clocks jump forward over it (from \
         {before} to {after}, daylight saving time); choose another time"
    )]
    Gap {
        /// The date typed.
        date: Date,
        /// The time typed.
        time: Time,
        /// The zone.
        zone: String,
        /// The offset before the jump.
        before: String,
        /// The offset after it.
        after: String,
    },
    /// Clocks fall back over this time: it happens twice that day.
    #[error(
        "{time} happens twice on {date} in {zone} (once at {before}, once at {after}, when the \
         clocks go back); choose a time outside that hour"
    )]
    Fold {
        /// The date typed.
        date: Date,
        /// The time typed.
        time: Time,
        /// The zone.
        zone: String,
        /// The offset of the first time.
        before: String,
        /// The offset of the second time.
        after: String,
    },
    /// The date is beyond what the calendar arithmetic supports.
    #[error("the date is out of range")]
    OutOfRange,
}

/// Parses a date as typed in a form (`YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Result<Date, WallClockError> {
    let text = text.trim();
    text.parse::<Date>()
        .map_err(|_| WallClockError::BadDate(shorten(text)))
}

/// Parses a wall-clock time as typed in a form (`HH:MM` or `HH:MM:SS`).
pub fn parse_time(text: &str) -> Result<Time, WallClockError> {
    let text = text.trim();
    let ok = text.len() >= 5 && text.as_bytes().get(2) == Some(&b':');
    ok.then(|| text.parse::<Time>().ok())
        .flatten()
        .ok_or_else(|| WallClockError::BadTime(shorten(text)))
}

/// Parses a duration such as `2h`, `90m`, `1h30m` or `1h 30m` (hours and
/// minutes only, at most 31 days).
pub fn parse_duration(text: &str) -> Result<Span, WallClockError> {
    let text = text.trim();
    let bad = || WallClockError::BadDuration(shorten(text));
    let span: Span = text.parse().map_err(|_| bad())?;
    let minutes = span.total(jiff::Unit::Minute).map_err(|_| bad())?;
    if !(1.0..=31.0 * 24.0 * 60.0).contains(&minutes)
        || span.get_days() != 0
        || span.get_weeks() != 0
        || span.get_months() != 0
        || span.get_years() != 0
    {
        return Err(bad());
    }
    Ok(span)
}

/// Looks up a zone by its exact IANA name.
pub fn zone(name: &str) -> Result<TimeZone, WallClockError> {
    crate::content::validate_tz(name)?;
    TimeZone::get(name)
        .map_err(|_| WallClockError::Zone(ContentError::UnknownTimeZone(shorten(name))))
}

/// The one instant that `date` at wall-clock `time` in `zone` names.
pub fn to_instant(
    date: Date,
    time: Time,
    zone_name: &str,
    tz: &TimeZone,
) -> Result<Timestamp, WallClockError> {
    let dt = DateTime::from_parts(date, time);
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => ambiguous
            .unambiguous()
            .map_err(|_| WallClockError::OutOfRange),
        AmbiguousOffset::Gap { before, after } => Err(WallClockError::Gap {
            date,
            time,
            zone: zone_name.to_owned(),
            before: format!("UTC{before}"),
            after: format!("UTC{after}"),
        }),
        AmbiguousOffset::Fold { before, after } => Err(WallClockError::Fold {
            date,
            time,
            zone: zone_name.to_owned(),
            before: format!("UTC{before}"),
            after: format!("UTC{after}"),
        }),
    }
}

/// The RFC 3339 text of `instant` with `tz`'s offset then, as an event's
/// time is published (the author's wall clock, with its offset).
pub fn event_time(
    field: &'static str,
    instant: Timestamp,
    tz: &TimeZone,
) -> Result<EventTime, ContentError> {
    let offset = tz.to_offset(instant);
    EventTime::parse(field, &instant.display_with_offset(offset).to_string())
}

fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
