//! Times and text for people: reading a wall-clock time in a zone,
//! writing a start and end the way people read them, short ids, plurals,
//! and making text from peers safe to print on a terminal.
//!
//! Everything here is pure (no clock, no I/O) except [`local_zone`] and
//! [`local_zone_name`], which read the computer's time zone and are kept
//! apart so that callers can pass a zone in tests.
//!
//! A wall-clock time in a zone is not always one instant: when the clocks
//! jump forward (a *gap*) some wall-clock times never happen, and when they
//! fall back (a *fold*) some happen twice. [`parse_local`] refuses both,
//! naming the gap or the two possible instants, rather than guessing.

use std::borrow::Cow;

use jiff::civil::DateTime;
use jiff::fmt::temporal::Pieces;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{Timestamp, ZonedDateTime};
use thiserror::Error;

use crate::content::{Event, EventTime, lookup_tz, parse_time, starts_with_shape};

/// Why a time could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WhenError {
    /// The text is none of the accepted forms.
    #[error(
        "`{0}` is not a time: write `2027-01-30 18:00` (in the event's zone), \
         `2027-01-30T18:00:00`, or RFC 3339 with an offset, `2027-01-30T18:00:00-05:00`"
    )]
    Syntax(String),
    /// The zone name is not in the time zone database.
    #[error("unknown time zone `{0}`: use an IANA name such as America/New_York or Europe/Berlin")]
    UnknownZone(String),
    /// The wall-clock time was skipped when the clocks moved forward.
    #[error(
        "{time} does not exist in {zone}: the clocks jump from {gap_start} to {gap_end} \
         that day; pick a time outside that gap"
    )]
    Gap {
        /// The wall-clock time given.
        time: String,
        /// The zone.
        zone: String,
        /// The last wall-clock time before the jump, e.g. `02:00 EST`.
        gap_start: String,
        /// Where the clocks land, e.g. `03:00 EDT`.
        gap_end: String,
    },
    /// The wall-clock time happens twice when the clocks fall back.
    #[error(
        "{time} happens twice in {zone} (the clocks go back that night): \
         give the one you mean with its offset, {earlier} or {later}"
    )]
    Fold {
        /// The wall-clock time given.
        time: String,
        /// The zone.
        zone: String,
        /// The first of the two instants, as RFC 3339.
        earlier: String,
        /// The second of the two instants, as RFC 3339.
        later: String,
    },
    /// The date is outside the range times can be computed in.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}

/// Looks up an IANA zone by name (exact spelling, as the event `tz` field
/// requires).
pub fn zone_named(name: &str) -> Result<TimeZone, WhenError> {
    lookup_tz(name).ok_or_else(|| WhenError::UnknownZone(shorten(name)))
}

/// Reads a time as people type it, in `zone`:
///
/// - a wall-clock time, `2027-01-30 18:00` or `2027-01-30T18:00`, with
///   seconds optional (`18:00:30`), meant in `zone`;
/// - RFC 3339 with an offset (`2027-01-30T18:00:00-05:00`, or `Z`), which
///   is one instant whatever the zone; it is returned in `zone`.
///
/// A wall-clock time that the zone skips (DST gap) or repeats (DST fold)
/// is an error naming the gap or both possible instants.
pub fn parse_local(text: &str, zone: &TimeZone) -> Result<ZonedDateTime, WhenError> {
    let text = text.trim();
    if let Some(civil) = wall_clock(text) {
        return civil_in_zone(text, civil, zone);
    }
    let instant = parse_time("time", text).map_err(|_| WhenError::Syntax(shorten(text)))?;
    Ok(instant.to_zoned_datetime(zone.clone()))
}

/// A wall-clock time of the accepted forms, `YYYY-MM-DD[ T]HH:MM[:SS]`.
fn wall_clock(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    let whole = match b.len() {
        16 => starts_with_shape(b, b"9999-99-99_99:99"),
        19 => starts_with_shape(b, b"9999-99-99_99:99:99"),
        _ => false,
    };
    if !whole {
        return None;
    }
    // Checked above: the text is ASCII of a fixed form, so this slice and
    // the replacement keep it valid; jiff checks the calendar.
    let normal = format!("{}T{}", &text[..10], &text[11..]);
    let pieces = Pieces::parse(&normal).ok()?;
    Some(pieces.date().to_datetime(pieces.time()?))
}

/// The one instant of wall-clock `civil` in `zone`, or the gap or fold.
fn civil_in_zone(text: &str, civil: DateTime, zone: &TimeZone) -> Result<ZonedDateTime, WhenError> {
    let zone_name = zone_label(zone);
    let ambiguous = zone.to_ambiguous_zoned_datetime(civil);
    let out_of_range = || WhenError::OutOfRange(shorten(text));
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => ambiguous.unambiguous().map_err(|_| out_of_range()),
        AmbiguousOffset::Gap { before, after } => {
            // The transition is the instant the wall clock would have
            // read `civil` under the new offset, or soon after it.
            let earliest = after.to_timestamp(civil).map_err(|_| out_of_range())?;
            let transition = zone
                .following(earliest)
                .next()
                .map(|t| t.timestamp())
                .ok_or_else(out_of_range)?;
            let wall = |offset: Offset| {
                let at = transition.to_zoned_datetime(TimeZone::fixed(offset));
                let abbreviation = zone_abbreviation(zone, transition, offset);
                format!("{} {abbreviation}", at.strftime("%H:%M"))
            };
            let before_abbreviation = {
                // Just before the transition, the old offset's name.
                let just_before = transition
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .unwrap_or(transition);
                zone_abbreviation(zone, just_before, before)
            };
            Err(WhenError::Gap {
                time: civil.strftime("%Y-%m-%d %H:%M").to_string(),
                zone: zone_name,
                gap_start: format!(
                    "{} {before_abbreviation}",
                    transition
                        .to_zoned_datetime(TimeZone::fixed(before))
                        .strftime("%H:%M")
                ),
                gap_end: wall(after),
            })
        }
        AmbiguousOffset::Fold { before, after } => {
            let instant = |offset: Offset| {
                offset
                    .to_timestamp(civil)
                    .map(|ts| ts.display_with_offset(offset).to_string())
                    .map_err(|_| out_of_range())
            };
            Err(WhenError::Fold {
                time: civil.strftime("%Y-%m-%d %H:%M").to_string(),
                zone: zone_name,
                earlier: instant(before)?,
                later: instant(after)?,
            })
        }
    }
}

/// The zone's abbreviation at `instant` (e.g. `EST`), or the offset when
/// the zone has none.
fn zone_abbreviation(zone: &TimeZone, instant: Timestamp, offset: Offset) -> String {
    let info = zone.to_offset_info(instant);
    let name = info.abbreviation();
    if name.is_empty() {
        offset.to_string()
    } else {
        name.to_owned()
    }
}

/// A zone's IANA name, or its description when it has none.
fn zone_label(zone: &TimeZone) -> String {
    zone.iana_name()
        .map(str::to_owned)
        .unwrap_or_else(|| "this time zone".to_owned())
}

/// An instant's date and time the way people read them, without the zone:
/// `Sat 30 Jan 2027, 18:00`.
fn day_and_time(at: &ZonedDateTime) -> String {
    at.strftime("%a %-d %b %Y, %H:%M").to_string()
}

/// The zone's short name at this instant (`EST`), or the offset
/// (`-05:00`) for a zone that is only an offset.
fn abbreviation(at: &ZonedDateTime) -> String {
    let zone = at.time_zone();
    if zone.iana_name().is_none() && *zone != TimeZone::UTC {
        at.strftime("%:z").to_string()
    } else {
        at.strftime("%Z").to_string()
    }
}

/// A start and optional end for people, in `viewer_zone` when given, else
/// in the start's own zone: `Sat 30 Jan 2027, 18:00–20:00 EST`. An end on
/// another day shows its date (`Sat 30 Jan 2027, 22:00 – Sun 31 Jan 2027,
/// 02:00 EST`), and an end in another abbreviation (a DST change in
/// between) shows both.
pub fn format_span(
    start: &ZonedDateTime,
    end: Option<&ZonedDateTime>,
    viewer_zone: Option<&TimeZone>,
) -> String {
    let zone = viewer_zone.unwrap_or_else(|| start.time_zone()).clone();
    let start = start.timestamp().to_zoned_datetime(zone.clone());
    let start_abbreviation = abbreviation(&start);
    let Some(end) = end else {
        return format!("{} {start_abbreviation}", day_and_time(&start));
    };
    let end = end.timestamp().to_zoned_datetime(zone);
    let end_abbreviation = abbreviation(&end);
    let same_day = start.date() == end.date();
    match (same_day, start_abbreviation == end_abbreviation) {
        (true, true) => format!(
            "{}–{} {end_abbreviation}",
            day_and_time(&start),
            end.strftime("%H:%M")
        ),
        (true, false) => format!(
            "{} {start_abbreviation}–{} {end_abbreviation}",
            day_and_time(&start),
            end.strftime("%H:%M")
        ),
        (false, true) => format!(
            "{} – {} {end_abbreviation}",
            day_and_time(&start),
            day_and_time(&end)
        ),
        (false, false) => format!(
            "{} {start_abbreviation} – {} {end_abbreviation}",
            day_and_time(&start),
            day_and_time(&end)
        ),
    }
}

/// The zone an event's times are shown in: its `tz` when that is a known
/// zone, else the fixed offset its author wrote the start with.
pub fn event_zone(event: &Event) -> TimeZone {
    if let Some(zone) = event.tz.as_deref().and_then(lookup_tz) {
        return zone;
    }
    written_offset(&event.start)
        .map(TimeZone::fixed)
        .unwrap_or(TimeZone::UTC)
}

/// The offset an RFC 3339 time was written with.
fn written_offset(time: &EventTime) -> Option<Offset> {
    Pieces::parse(time.as_str()).ok()?.to_numeric_offset()
}

/// An event's start and end for people (see [`format_span`]), in
/// `viewer_zone` or else the event's own zone.
pub fn event_span(event: &Event, viewer_zone: Option<&TimeZone>) -> String {
    let zone = event_zone(event);
    let start = event.start.timestamp().to_zoned_datetime(zone.clone());
    let end = event
        .end
        .as_ref()
        .map(|end| end.timestamp().to_zoned_datetime(zone));
    format_span(&start, end.as_ref(), viewer_zone)
}

/// An instant for people in `zone`: `Sat 30 Jan 2027, 18:00 EST`.
pub fn format_instant(instant: Timestamp, zone: &TimeZone) -> String {
    format_span(&instant.to_zoned_datetime(zone.clone()), None, None)
}

/// How many characters of an id a list shows after its sigil, like git's
/// short hashes; `potluck` takes any unique prefix of 6 or more back.
pub const SHORT_ID_CHARS: usize = 8;

/// The short form of an id for lists: its sigil (`%` or `@`) and the first
/// [`SHORT_ID_CHARS`] characters, e.g. `%Xb3kQa1z`.
pub fn short_id(id: &str) -> &str {
    let sigil = usize::from(id.starts_with(['%', '@']));
    let end = id
        .char_indices()
        .nth(sigil + SHORT_ID_CHARS)
        .map_or(id.len(), |(i, _)| i);
    &id[..end]
}

/// A count with its noun: `1 message`, `2 messages`, `0 messages`.
pub fn plural(count: u64, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}

/// A progress line for long work: `importing: 1,234 messages, 2,000/s`,
/// and with the share of the work done so far (`done` of `total` units,
/// e.g. bytes of a file) `importing: 45%, 1,234 messages, 2,000/s, about
/// 8 s left`. `elapsed` is the time since the work started. See
/// [`progress_of_total`] when the total is a number of messages.
pub fn progress_text(
    what: &str,
    messages: u64,
    share: Option<(u64, u64)>,
    elapsed: std::time::Duration,
) -> String {
    progress_line(what, messages, None, share, elapsed)
}

/// A progress line when the work is `total` messages:
/// `syncing: 45%, 1,234 of 2,742 messages, 2,000/s, about 1 s left`.
pub fn progress_of_total(
    what: &str,
    messages: u64,
    total: u64,
    elapsed: std::time::Duration,
) -> String {
    progress_line(
        what,
        messages,
        Some(total),
        Some((messages, total)),
        elapsed,
    )
}

fn progress_line(
    what: &str,
    messages: u64,
    total_messages: Option<u64>,
    share: Option<(u64, u64)>,
    elapsed: std::time::Duration,
) -> String {
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        messages as f64 / seconds
    } else {
        0.0
    };
    let mut text = format!("{what}: ");
    let fraction = share
        .filter(|&(_, total)| total > 0)
        .map(|(done, total)| (done.min(total) as f64) / (total as f64));
    if let Some(fraction) = fraction {
        text.push_str(&format!("{}%, ", (fraction * 100.0).floor() as u64));
    }
    let counted = match total_messages {
        Some(total) => format!("{} of {}", thousands(messages), thousands(total)),
        None => thousands(messages),
    };
    let noun = if total_messages.unwrap_or(messages) == 1 {
        "message"
    } else {
        "messages"
    };
    text.push_str(&format!(
        "{counted} {noun}, {}/s",
        thousands(rate.round() as u64)
    ));
    if let Some(fraction) = fraction
        && fraction > 0.0
        && fraction < 1.0
        && seconds >= 1.0
    {
        let left = seconds * (1.0 - fraction) / fraction;
        text.push_str(&format!(", about {} left", duration_words(left)));
    }
    text
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number of seconds, rounded, as people say it: `8 s`, `3 min`, `2 h`.
fn duration_words(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h", (s + 1800) / 3600),
    }
}

/// Text from a peer made safe to print on a terminal: escape sequences
/// (CSI `ESC [ … final`, OSC/DCS/APC/PM/SOS strings up to their
/// terminator, and two-character `ESC x`) are removed whole, and every
/// other control character except newline and tab is dropped, as are the
/// bidirectional overrides that can make text read differently from what it
/// is. Borrowed when nothing needed removing.
pub fn sanitize_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Any other escape is two characters long.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`sanitize_for_terminal`], for a value shown on one line (a title,
/// a name): newlines and tabs become spaces too, so a peer cannot forge
/// lines of output.
pub fn sanitize_line(text: &str) -> Cow<'_, str> {
    match sanitize_for_terminal(text) {
        Cow::Borrowed(t) if !t.contains(['\n', '\r', '\t']) => Cow::Borrowed(t),
        other => Cow::Owned(other.replace(['\n', '\t'], " ")),
    }
}

/// Skips the rest of a CSI sequence: parameter and intermediate bytes up
/// to the final byte (`@` to `~`).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        if !(' '..='?').contains(&c) {
            // Not a CSI byte at all: the sequence was malformed; drop it.
            return;
        }
    }
}

/// Skips a control string up to its terminator: BEL, `ESC \` or ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// Characters never printed as they are: C0 and C1 controls other than
/// newline and tab, DEL, and the bidirectional embedding, override and
/// isolate characters.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The computer's time zone (UTC when it cannot be told). Reads the
/// system: keep it out of pure code and pass the zone instead.
pub fn local_zone() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}

/// The IANA name of the computer's time zone, if it has one.
pub fn local_zone_name() -> Option<String> {
    local_zone().iana_name().map(str::to_owned)
}

/// At most 60 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    crate::content::shorten_to(text, 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_york() -> TimeZone {
        zone_named("America/New_York").unwrap()
    }

    #[test]
    fn wall_clock_forms_are_read_in_the_zone() {
        let zone = new_york();
        for text in [
            "2027-01-30 18:00",
            "2027-01-30T18:00",
            "2027-01-30 18:00:00",
            "2027-01-30T18:00:00",
            " 2027-01-30 18:00 ",
            "2027-01-30T18:00:00-05:00",
            "2027-01-30T23:00:00Z",
        ] {
            let at = parse_local(text, &zone).unwrap();
            assert_eq!(at.timestamp().to_string(), "2027-01-30T23:00:00Z", "{text}");
            assert_eq!(at.time_zone().iana_name(), Some("America/New_York"));
        }
        let seconds = parse_local("2027-07-04 09:15:30", &zone).unwrap();
        assert_eq!(seconds.timestamp().to_string(), "2027-07-04T13:15:30Z");
    }

    #[test]
    fn bad_text_is_refused_with_the_forms_that_work() {
        let zone = new_york();
        for text in [
            "",
            "tomorrow",
            "2027-01-30",
            "2027-01-30 18",
            "2027-01-30 18:00:00:00",
            "2027-02-30 18:00",
            "2027-01-30 25:00",
            "30/01/2027 18:00",
            "2027-01-30 18:00 EST",
            "2027-01-30T18:00:00[America/New_York]",
        ] {
            let e = parse_local(text, &zone).unwrap_err();
            assert!(matches!(e, WhenError::Syntax(_)), "{text}: {e:?}");
            assert!(e.to_string().contains("2027-01-30 18:00"), "{e}");
        }
    }

    #[test]
    fn a_skipped_time_names_the_gap() {
        // 2027-03-14: New York goes from 02:00 EST to 03:00 EDT.
        let e = parse_local("2027-03-14 02:30", &new_york()).unwrap_err();
        assert_eq!(
            e,
            WhenError::Gap {
                time: "2027-03-14 02:30".into(),
                zone: "America/New_York".into(),
                gap_start: "02:00 EST".into(),
                gap_end: "03:00 EDT".into(),
            }
        );
        assert!(e.to_string().contains("from 02:00 EST to 03:00 EDT"), "{e}");
        // Either side of the gap is fine.
        assert!(parse_local("2027-03-14 01:59", &new_york()).is_ok());
        assert_eq!(
            parse_local("2027-03-14 03:00", &new_york())
                .unwrap()
                .timestamp()
                .to_string(),
            "2027-03-14T07:00:00Z"
        );
    }

    #[test]
    fn a_repeated_time_names_both_instants() {
        // 2027-11-07: New York goes back from 02:00 EDT to 01:00 EST.
        let e = parse_local("2027-11-07 01:30", &new_york()).unwrap_err();
        assert_eq!(
            e,
            WhenError::Fold {
                time: "2027-11-07 01:30".into(),
                zone: "America/New_York".into(),
                earlier: "2027-11-07T01:30:00-04:00".into(),
                later: "2027-11-07T01:30:00-05:00".into(),
            }
        );
        // Each of the two it names is accepted and is what it says.
        for (text, utc) in [
            ("2027-11-07T01:30:00-04:00", "2027-11-07T05:30:00Z"),
            ("2027-11-07T01:30:00-05:00", "2027-11-07T06:30:00Z"),
        ] {
            assert!(e.to_string().contains(text), "{e}");
            let at = parse_local(text, &new_york()).unwrap();
            assert_eq!(at.timestamp().to_string(), utc);
        }
    }

    #[test]
    fn zones_are_spelled_exactly() {
        assert!(zone_named("America/New_York").is_ok());
        assert_eq!(
            zone_named("america/new_york").unwrap_err(),
            WhenError::UnknownZone("america/new_york".into())
        );
        assert!(zone_named("Mars/Olympus").is_err());
    }

    fn at(text: &str) -> ZonedDateTime {
        parse_local(text, &new_york()).unwrap()
    }

    #[test]
    fn spans_read_like_a_calendar() {
        assert_eq!(
            format_span(&at("2027-01-30 18:00"), Some(&at("2027-01-30 20:00")), None),
            "Sat 30 Jan 2027, 18:00–20:00 EST"
        );
        assert_eq!(
            format_span(&at("2027-01-30 18:00"), None, None),
            "Sat 30 Jan 2027, 18:00 EST"
        );
        assert_eq!(
            format_span(&at("2027-01-30 22:00"), Some(&at("2027-01-31 02:00")), None),
            "Sat 30 Jan 2027, 22:00 – Sun 31 Jan 2027, 02:00 EST"
        );
        // The night the clocks go forward.
        assert_eq!(
            format_span(&at("2027-03-14 00:30"), Some(&at("2027-03-14 04:00")), None),
            "Sun 14 Mar 2027, 00:30 EST–04:00 EDT"
        );
        // Seen from Berlin.
        let berlin = zone_named("Europe/Berlin").unwrap();
        assert_eq!(
            format_span(
                &at("2027-01-30 18:00"),
                Some(&at("2027-01-30 20:00")),
                Some(&berlin)
            ),
            "Sun 31 Jan 2027, 00:00–02:00 CET"
        );
        assert_eq!(
            format_instant(at("2027-07-04 09:05").timestamp(), &new_york()),
            "Sun 4 Jul 2027, 09:05 EDT"
        );
    }

    #[test]
    fn event_spans_use_the_event_zone_or_the_written_offset() {
        let start = EventTime::parse("start", "2027-01-30T18:00:00-05:00").unwrap();
        let mut event = Event::new("Soup", start);
        // No zone: the offset the author wrote.
        assert_eq!(event_span(&event, None), "Sat 30 Jan 2027, 18:00 -05:00");
        event.tz = Some("America/New_York".into());
        event.end = Some(EventTime::parse("end", "2027-01-31T01:00:00Z").unwrap());
        assert_eq!(event_span(&event, None), "Sat 30 Jan 2027, 18:00–20:00 EST");
        assert_eq!(
            event_span(&event, Some(&TimeZone::UTC)),
            "Sat 30 Jan 2027, 23:00 – Sun 31 Jan 2027, 01:00 UTC"
        );
    }

    #[test]
    fn short_ids_keep_the_sigil_and_eight_characters() {
        assert_eq!(
            short_id("%Xb3kQa1zAbCdEfGh0123456789abcdefghijklmnopq=.blake3"),
            "%Xb3kQa1z"
        );
        assert_eq!(short_id("@AbC/+9xyZZZZ=.ed25519"), "@AbC/+9xy");
        assert_eq!(short_id("abcdefghijk"), "abcdefgh");
        assert_eq!(short_id("%abc"), "%abc");
        assert_eq!(short_id(""), "");
    }

    #[test]
    fn progress_lines() {
        use std::time::Duration;
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            progress_text("syncing with Ana", 12_000, None, Duration::from_secs(4)),
            "syncing with Ana: 12,000 messages, 3,000/s"
        );
        assert_eq!(
            progress_text("importing", 1, Some((25, 100)), Duration::from_secs(2)),
            "importing: 25%, 1 message, 1/s, about 6 s left"
        );
        // No time left to guess before a second has passed, or when done.
        assert_eq!(
            progress_text("importing", 0, Some((0, 100)), Duration::ZERO),
            "importing: 0%, 0 messages, 0/s"
        );
        assert_eq!(
            progress_text("importing", 9, Some((100, 100)), Duration::from_secs(3)),
            "importing: 100%, 9 messages, 3/s"
        );
        assert_eq!(
            progress_text("x", 10, Some((1, 10)), Duration::from_secs(60)),
            "x: 10%, 10 messages, 0/s, about 9 min left"
        );
        assert_eq!(
            progress_of_total("syncing", 1_000, 4_000, Duration::from_secs(2)),
            "syncing: 25%, 1,000 of 4,000 messages, 500/s, about 6 s left"
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(0, "message", "messages"), "0 messages");
        assert_eq!(plural(1, "message", "messages"), "1 message");
        assert_eq!(plural(2, "feed", "feeds"), "2 feeds");
        assert_eq!(plural(1, "person", "people"), "1 person");
    }

    #[test]
    fn terminal_text_loses_escape_sequences_and_controls() {
        let hostile = "Soup\u{1b}]0;owned\u{7}\u{1b}[2J night\u{1b}[31m!\u{1b}[0m";
        assert_eq!(sanitize_for_terminal(hostile), "Soup night!");
        assert_eq!(
            sanitize_for_terminal("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(
            sanitize_for_terminal("bell\u{7} del\u{7f} c1\u{9b}2Jx"),
            "bell del c1x"
        );
        assert_eq!(sanitize_for_terminal("rtl\u{202e}txt"), "rtltxt");
        assert_eq!(sanitize_for_terminal("cr\rlf"), "crlf");
        // Lone ESC at the end, unterminated OSC: nothing left over.
        assert_eq!(sanitize_for_terminal("x\u{1b}"), "x");
        assert_eq!(sanitize_for_terminal("x\u{1b}]0;never ends"), "x");
        // Clean text is borrowed, newlines and tabs kept.
        let clean = "Ünïcødé 😀\nline two\tand a tab";
        assert!(matches!(sanitize_for_terminal(clean), Cow::Borrowed(_)));
        assert_eq!(sanitize_line(clean), "Ünïcødé 😀 line two and a tab");
        assert_eq!(sanitize_line("Ana\r\nFAKE LINE"), "Ana FAKE LINE");
        assert!(matches!(sanitize_line("Ana"), Cow::Borrowed(_)));
    }
}
