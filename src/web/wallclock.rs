//! The new-event form's fields (a date, a wall-clock time, a duration, a
//! zone) read one by one, so that each error lands by its field, and
//! turned into event times by [`when::parse_local`], which owns daylight
//! saving time: a time the clocks skip or repeat is an error, never a
//! guess.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use thiserror::Error;

use crate::app::when::{self, WhenError};
use crate::content::EventTime;

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
    /// The zone is unknown, or the time is skipped or repeated there (see
    /// [`when::parse_local`]).
    #[error("{}", when_message(.0))]
    When(#[from] WhenError),
}

/// [`WhenError`]'s message, except that a repeated time asks for another
/// time: a form's time field cannot take an offset.
fn when_message(e: &WhenError) -> String {
    match e {
        WhenError::Fold {
            time,
            zone,
            earlier,
            later,
        } => format!(
            "{time} happens twice in {zone} (the clocks go back that night: {earlier}, then \
             {later}); choose a time outside that hour"
        ),
        e => e.to_string(),
    }
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

/// The instant that `date` at wall-clock `time` in `zone` names, as an
/// event time: RFC 3339 with the zone's offset then (the author's wall
/// clock). A time the clocks skip or repeat there is an error.
pub fn event_time(
    field: &'static str,
    date: Date,
    time: Time,
    zone: &TimeZone,
) -> Result<EventTime, WallClockError> {
    let text = format!("{date} {}", time.strftime("%H:%M:%S"));
    let at = when::parse_local(&text, zone)?;
    instant_time(field, at.timestamp(), zone)
}

/// An instant as an event time, with `zone`'s offset then.
pub fn instant_time(
    field: &'static str,
    instant: Timestamp,
    zone: &TimeZone,
) -> Result<EventTime, WallClockError> {
    let text = instant
        .display_with_offset(zone.to_offset(instant))
        .to_string();
    EventTime::parse(field, &text).map_err(|_| WallClockError::When(WhenError::OutOfRange(text)))
}

/// At most 40 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    crate::content::shorten_to(text, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_edit_form_writes_them() {
        for (text, minutes) in [
            ("2h", 120.0),
            ("90m", 90.0),
            ("1h30m", 90.0),
            ("26h0m", 1560.0),
        ] {
            let span = parse_duration(text).unwrap();
            assert_eq!(span.total(jiff::Unit::Minute).unwrap(), minutes, "{text}");
        }
        for bad in ["", "0m", "2 days", "1y", "-1h", "40d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_form_time_has_hours_and_minutes() {
        assert_eq!(parse_time("18:30").unwrap().to_string(), "18:30:00");
        for bad in ["1830", "6pm", "25:00", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
