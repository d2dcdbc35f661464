//! Export of events as an iCalendar (RFC 5545) file.
//!
//! Pure: no I/O and no clock. The caller gathers the events, the names it
//! knows and the current RSVPs, passes the current time as `now`, and gets
//! back the text of one `VCALENDAR` with one `VEVENT` per event.
//!
//! The `icalendar` crate writes the calendar: components, content lines
//! with CRLF ends, TEXT escaping of `\`, `;`, `,` and newlines, and the
//! quoting of parameter values that hold `:`, `;` or `,`. This module
//! keeps by hand only what the crate does not do right:
//!
//! - **Folding**: the crate's folding can leave a physical line of 76
//!   octets (it moves a fold before whitespace counting characters as
//!   bytes), so its output is refolded ([`fold`]): no physical line longer
//!   than 75 octets, never inside a UTF-8 character, each continuation
//!   starting with one space.
//! - **Control characters** in TEXT: the crate passes a CR or other
//!   control through, which would break a content line. [`clean_text`]
//!   turns CR and CRLF into newlines (which the crate escapes) and drops
//!   the other controls except tab.
//! - **Parameter values** (`CN`) cannot hold a DQUOTE or control
//!   characters at all, and the crate writes a value that starts and ends
//!   with a DQUOTE as it is: [`param_value`] turns a DQUOTE into `'` and a
//!   control into a space before handing the value over.
//! - **URIs**: characters a URI cannot hold (spaces, controls, non-ASCII,
//!   ...) are percent-encoded as UTF-8 ([`uri_value`]).
//! - **Times**: written in UTC with a `Z` ([`utc_datetime`]) from jiff;
//!   the crate's date helpers take chrono types.
//!
//! Choices, each one visible in the output:
//!
//! - **UID**: the 32 bytes of the event id in unpadded base64url, then
//!   `@potluck` (see [`uid`]). It depends on nothing but the id, so the
//!   same event keeps its UID across exports, updates and cancellation, as
//!   calendar clients need to replace rather than duplicate it.
//! - **People** (ORGANIZER, ATTENDEE) are written as the URN
//!   `urn:potluck:feed:<base64url>` (see [`feed_uri`]): the 32 key bytes in
//!   unpadded base64url, which only uses URN-safe characters. Re-encode the
//!   bytes with standard base64 to get the usual `@<base64>.ed25519`.
//!   The `CN` parameter is the person's name, or that `@….ed25519` text
//!   when no name is known.
//! - **Times** are in UTC (`YYYYMMDDTHHMMSSZ`), which RFC 5545 allows and
//!   which needs no `VTIMEZONE`; fractions of a second are dropped. The
//!   author's IANA zone, when there is one, rides along in `X-POTLUCK-TZ`
//!   for clients that know it.
//! - **No end**: an event without an end (or with an end not later than
//!   its start at the precision of a second, which RFC 5545 forbids for
//!   DTEND) gets `DTEND` [`DEFAULT_DURATION_MINUTES`] after its start, so
//!   that calendar programs do not show it as zero minutes long.
//! - **SEQUENCE** is the event's revision (accepted updates plus the
//!   cancellation), so a cancellation keeps the UID and bumps SEQUENCE.
//!   **STATUS** is `CONFIRMED` or `CANCELLED`; a cancellation's reason goes
//!   in `COMMENT`.
//! - **ATTENDEE**: one per RSVP passed in, in the caller's order. `PARTSTAT`
//!   is `ACCEPTED` only for a `going` answer with a place (admitted);
//!   `TENTATIVE` for `maybe` and for a `going` answer that is waitlisted or
//!   not decided yet, which then carries `X-POTLUCK-ADMISSION=waitlisted`
//!   or `pending`; `DECLINED` for not going. Guests are in `X-NUM-GUESTS`
//!   (the parameter Google Calendar writes).
//!
//! - **VALARM**: with `alarm_minutes` (config.json's
//!   `reminders.calendar_alarm_minutes`, an hour by default), each
//!   scheduled event carries one display alarm that many minutes before
//!   its start: `ACTION:DISPLAY`, `TRIGGER:-PT1H` (relative to the start,
//!   written in whole days, hours or minutes: [`alarm_trigger`]) and a
//!   `DESCRIPTION` naming the event. A cancelled event carries none.
//!   Calendar apps that subscribe to the feed remind without any server.
//!
//! RFC 5545's grammar wants at least one component in a calendar; with no
//! events, [`calendar`] still returns an empty `VCALENDAR`, which is what an
//! empty subscription feed looks like.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use icalendar::{Alarm, Component as _, Property, Trigger};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

use crate::content::RsvpStatus;
use crate::feed::message::{FeedId, MessageId};
use crate::store::admission::AdmissionStatus;
use crate::store::index::{EventState, EventStatus};

/// The `PRODID` of every calendar this module writes.
pub const PRODID: &str = concat!("-//potluck//potluck ", env!("CARGO_PKG_VERSION"), "//EN");

/// Longest physical line, in octets, not counting the CRLF.
pub const MAX_LINE_OCTETS: usize = 75;

/// How long an event without an end lasts in the export, in minutes.
pub const DEFAULT_DURATION_MINUTES: i64 = 120;

/// One person's current answer to an event, with the name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcsAttendee {
    /// Who answered.
    pub feed: FeedId,
    /// Their name, if known; the feed id is shown otherwise.
    pub name: Option<String>,
    /// Going, maybe or not going.
    pub status: RsvpStatus,
    /// For a `going` answer: admitted, waitlisted or pending.
    pub admission: Option<AdmissionStatus>,
    /// People they bring along.
    pub guests: u32,
}

/// One event to export, with what the caller knows about the people.
#[derive(Clone, Debug)]
pub struct IcsEvent<'a> {
    /// The event's current state.
    pub state: &'a EventState,
    /// The organizer's name, if known; the feed id is shown otherwise.
    pub organizer_name: Option<String>,
    /// The current RSVPs, one ATTENDEE each, in this order.
    pub attendees: Vec<IcsAttendee>,
}

/// A whole VCALENDAR with one VEVENT per event, as RFC 5545 text (CRLF
/// line ends, folded lines). `now` becomes every `DTSTAMP`. With
/// `alarm_minutes`, each scheduled event has a `VALARM` that many minutes
/// before its start.
pub fn calendar(events: &[IcsEvent], now: Timestamp, alarm_minutes: Option<u32>) -> String {
    let mut cal = icalendar::Calendar::empty();
    cal.append_property(Property::new("VERSION", "2.0"));
    cal.append_property(Property::new("PRODID", PRODID));
    cal.append_property(Property::new("CALSCALE", "GREGORIAN"));
    let stamp = utc_datetime(now);
    // The events are written one by one into the calendar's text, each
    // with its alarm's lines inside (see [`alarm_lines`]).
    let end = "END:VCALENDAR\r\n";
    let mut text = cal.to_string();
    text.truncate(text.strip_suffix(end).unwrap_or(&text).len());
    for event in events {
        let mut vevent = vevent(event, &stamp).to_string();
        if event.state.status == EventStatus::Scheduled
            && let Some(minutes) = alarm_minutes
            && let Some(at) = vevent.rfind("END:VEVENT\r\n")
        {
            vevent.insert_str(at, &alarm_lines(&event.state.event.title, minutes));
        }
        text.push_str(&vevent);
    }
    text.push_str(end);
    refold(&text)
}

fn vevent(ics: &IcsEvent, stamp: &str) -> icalendar::Event {
    let state = ics.state;
    let event = &state.event;
    let mut out = icalendar::Event::new();
    out.add_property("UID", uid(&state.id));
    out.add_property("DTSTAMP", stamp);
    let start = event.start.timestamp();
    out.add_property("DTSTART", utc_datetime(start));
    out.add_property("DTEND", utc_datetime(export_end(state)));
    let sequence = i32::try_from(state.revision).unwrap_or(i32::MAX);
    out.add_property("SEQUENCE", sequence.to_string());
    let status = match state.status {
        EventStatus::Scheduled => "CONFIRMED",
        EventStatus::Cancelled => "CANCELLED",
    };
    out.add_property("STATUS", status);
    out.add_property("SUMMARY", clean_text(&event.title));
    if let Some(description) = &event.description {
        out.add_property("DESCRIPTION", clean_text(description));
    }
    if let Some(location) = &event.location {
        out.add_property("LOCATION", clean_text(location));
    }
    if let Some(url) = &event.url {
        out.add_property("URL", uri_value(url));
    }
    if state.status == EventStatus::Cancelled
        && let Some(reason) = &state.cancel_reason
    {
        out.add_property("COMMENT", clean_text(reason));
    }
    if let Some(tz) = &event.tz {
        out.add_property("X-POTLUCK-TZ", clean_text(tz));
    }
    out.append_property(
        Property::new("ORGANIZER", feed_uri(&state.author))
            .add_parameter(
                "CN",
                &common_name(ics.organizer_name.as_deref(), &state.author),
            )
            .done(),
    );
    for attendee in &ics.attendees {
        let mut property = Property::new("ATTENDEE", feed_uri(&attendee.feed));
        property
            .add_parameter("CN", &common_name(attendee.name.as_deref(), &attendee.feed))
            .add_parameter("CUTYPE", "INDIVIDUAL")
            .add_parameter("ROLE", "REQ-PARTICIPANT")
            .add_parameter("PARTSTAT", partstat(attendee.status, attendee.admission))
            .add_parameter("X-NUM-GUESTS", &attendee.guests.to_string());
        if attendee.status == RsvpStatus::Going
            && let Some(admission) = attendee
                .admission
                .filter(|a| *a != AdmissionStatus::Admitted)
        {
            property.add_parameter("X-POTLUCK-ADMISSION", admission.as_str());
        }
        out.append_multi_property(property.done());
    }
    out
}

/// The `TRIGGER` value of an alarm `minutes` before the start: a negative
/// RFC 5545 duration in whole days (`-P1D`), hours (`-PT1H`) or minutes
/// (`-PT90M`), whichever is the largest unit that divides it.
pub fn alarm_trigger(minutes: u32) -> String {
    const DAY: u32 = 24 * 60;
    if minutes > 0 && minutes.is_multiple_of(DAY) {
        format!("-P{}D", minutes / DAY)
    } else if minutes > 0 && minutes.is_multiple_of(60) {
        format!("-PT{}H", minutes / 60)
    } else {
        format!("-PT{minutes}M")
    }
}

/// The `VALARM` of an event titled `title`, `minutes` before its start,
/// as CRLF-ended content lines (unfolded); empty for 0 minutes.
///
/// The crate writes the component (and escapes the DESCRIPTION), but it
/// builds a trigger only from a chrono duration, written in seconds, and
/// it stamps every component it writes with the wall clock (`DTSTAMP`)
/// and a random `UID`, which a VALARM does not need (RFC 5545 §3.6.6) and
/// which would make the same calendar differ at each export. So the
/// alarm is made with a placeholder trigger, its `TRIGGER` replaced by
/// [`alarm_trigger`]'s text, and the two stamps' lines left out.
fn alarm_lines(title: &str, minutes: u32) -> String {
    if minutes == 0 {
        return String::new();
    }
    let Ok(placeholder) = Trigger::try_from(&Property::new("TRIGGER", "PT0S")) else {
        return String::new();
    };
    let description = clean_text(&format!("Reminder: {title}"));
    let mut alarm = Alarm::display(&description, placeholder);
    alarm.add_property("TRIGGER", alarm_trigger(minutes));
    let written = alarm.done().to_string().replace("\r\n ", "");
    let mut out = String::with_capacity(written.len());
    for line in written.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("DTSTAMP:") || line.starts_with("UID:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// When an event ends in the export: its end, or, without one later than
/// the start (to the second), [`DEFAULT_DURATION_MINUTES`] after it.
pub fn export_end(state: &EventState) -> Timestamp {
    let start = state.event.start.timestamp();
    let whole_seconds = |t: Timestamp| t.as_second();
    match &state.event.end {
        Some(end) if whole_seconds(end.timestamp()) > whole_seconds(start) => end.timestamp(),
        _ => start
            .checked_add(SignedDuration::from_mins(DEFAULT_DURATION_MINUTES))
            .unwrap_or(Timestamp::MAX),
    }
}

/// The `PARTSTAT` of an answer: only a `going` answer with a place is
/// `ACCEPTED`; waitlisted or undecided requests are `TENTATIVE`.
pub fn partstat(status: RsvpStatus, admission: Option<AdmissionStatus>) -> &'static str {
    match (status, admission) {
        (RsvpStatus::Going, None | Some(AdmissionStatus::Admitted)) => "ACCEPTED",
        (RsvpStatus::Going, Some(_)) => "TENTATIVE",
        (RsvpStatus::Maybe, _) => "TENTATIVE",
        (RsvpStatus::NotGoing, _) => "DECLINED",
    }
}

/// The UID of an event: its id's 32 bytes in unpadded base64url, then
/// `@potluck`. A function of the id alone.
pub fn uid(id: &MessageId) -> String {
    format!("{}@potluck", URL_SAFE_NO_PAD.encode(id.0))
}

/// The calendar address of a person: `urn:potluck:feed:` and the key's 32
/// bytes in unpadded base64url.
pub fn feed_uri(feed: &FeedId) -> String {
    format!("urn:potluck:feed:{}", URL_SAFE_NO_PAD.encode(feed.0))
}

/// An instant as a UTC DATE-TIME, `YYYYMMDDTHHMMSSZ`, fractions of a second
/// dropped. An instant before year 0 (only reachable through an offset on
/// a year-0 time) is clamped to the start of year 0, the earliest a
/// four-digit year can write.
pub fn utc_datetime(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    if dt.year() < 0 {
        return "00000101T000000Z".to_owned();
    }
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// A TEXT value made safe for the crate's escaping: a CR or CRLF becomes
/// a newline (which it escapes as `\n`), other control characters except
/// tab are dropped (TEXT cannot hold them).
pub fn clean_text(value: &str) -> String {
    let unified = value.replace("\r\n", "\n").replace('\r', "\n");
    unified
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !is_control(c))
        .collect()
}

/// A parameter value (RFC 5545 §3.1) the crate can write: a DQUOTE,
/// which no parameter value may hold, becomes `'`; a control character
/// other than tab becomes a space. (The crate quotes the value when it
/// holds `:` `;` or `,`.)
pub fn param_value(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\t' => '\t',
            c if is_control(c) => ' ',
            c => c,
        })
        .collect()
}

/// The `CN` of a person: their name if it has something visible, else
/// their feed id.
fn common_name(name: Option<&str>, feed: &FeedId) -> String {
    match name {
        Some(name) if !name.trim().is_empty() => param_value(name),
        _ => param_value(&feed.to_string()),
    }
}

/// A URI value: unchanged, except that every byte a URI cannot hold
/// (controls, space, `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`,
/// non-ASCII) is percent-encoded.
pub fn uri_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 5545's CONTROL: U+0000–U+0008, U+000A–U+001F and U+007F.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}')
}

/// Folds one content line (which must not contain CR or LF) into physical
/// lines of at most [`MAX_LINE_OCTETS`] octets, each ending in CRLF; a
/// continuation line starts with one space, and no UTF-8 character is
/// split.
pub fn fold(content: &str) -> String {
    let mut out = String::with_capacity(content.len() + content.len() / 64 * 3 + 2);
    let mut used = 0;
    for c in content.chars() {
        let n = c.len_utf8();
        if used + n > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
    out
}

/// Refolds the crate's output: its folding can leave a physical line of 76
/// octets when it moves a fold before whitespace inside multi-byte text.
/// No value holds a CR or LF (they are escaped or cleaned), so every
/// CRLF followed by a space is a fold.
fn refold(text: &str) -> String {
    let unfolded = text.replace("\r\n ", "");
    let mut out = String::with_capacity(text.len() + text.len() / 64 * 3);
    for content in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
        out.push_str(&fold(content));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Event, EventTime};
    use proptest::prelude::*;

    /// Undoes folding: removes every CRLF followed by one space or tab.
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "").replace("\r\n\t", "")
    }

    /// Reverses TEXT escaping (for tests only).
    fn unescape_text(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') | Some('N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Checks that `text` is CRLF-terminated lines of at most 75 octets
    /// with no bare CR or LF; returns it unfolded, without the final CRLF.
    fn check_lines(folded: &str) -> String {
        assert!(folded.ends_with("\r\n"), "no final CRLF: {folded:?}");
        let body = &folded[..folded.len() - 2];
        for physical in body.split("\r\n") {
            assert!(!physical.contains(['\r', '\n']), "bare CR/LF: {physical:?}");
            assert!(
                physical.len() <= MAX_LINE_OCTETS,
                "{} octets: {physical:?}",
                physical.len()
            );
        }
        unfold(body)
    }

    /// The unfolded value of the one `name:` line of `text`.
    fn property(text: &str, name: &str) -> String {
        let unfolded = check_lines(text);
        let prefix = format!("{name}:");
        let found: Vec<&str> = unfolded
            .split("\r\n")
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect();
        assert_eq!(found.len(), 1, "{name} in {unfolded}");
        found[0].to_owned()
    }

    #[test]
    fn short_line_is_not_folded() {
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        let exactly = "X".repeat(75);
        assert_eq!(fold(&exactly), format!("{exactly}\r\n"));
    }

    #[test]
    fn ascii_folds_at_exactly_75_octets() {
        let content = "A".repeat(75 + 74 + 10);
        let folded = fold(&content);
        let lines: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), 75);
        assert_eq!(lines[1].len(), 75);
        assert_eq!(lines[2].len(), 11);
        assert_eq!(check_single(&folded), content);
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        for wide in ['é', '€', '😀'] {
            let n = wide.len_utf8();
            // Put the wide character at every position around the limit.
            for prefix in 60..=80 {
                let content = format!("{}{}", "a".repeat(prefix), wide.to_string().repeat(40));
                let folded = fold(&content);
                let unfolded = check_single(&folded);
                assert_eq!(unfolded, content);
                let first = folded.split("\r\n").next().unwrap();
                // The first line is as full as the character allows.
                assert!(first.len() > MAX_LINE_OCTETS - n, "{prefix} {wide}");
                assert!(std::str::from_utf8(first.as_bytes()).is_ok());
            }
        }
        // A line of only 4-octet characters: 18 fit (72 octets), the 19th
        // would make 76.
        let content = "😀".repeat(50);
        let folded = fold(&content);
        let first = folded.split("\r\n").next().unwrap();
        assert_eq!(first.len(), 72);
        // Continuations: the space plus 18 more (73 octets).
        let second = folded.split("\r\n").nth(1).unwrap();
        assert_eq!(second.len(), 73);
        assert_eq!(check_single(&folded), content);
    }

    #[test]
    fn empty_line_folds_to_crlf() {
        assert_eq!(fold(""), "\r\n");
    }

    proptest! {
        #[test]
        fn fold_keeps_limits_and_unfolds(content in "[^\r\n]{0,400}") {
            let folded = fold(&content);
            prop_assert_eq!(check_single(&folded), content);
        }

    }

    /// Checks one folded content line: within limits, every continuation
    /// non-empty; returns it unfolded.
    fn check_single(folded: &str) -> String {
        let unfolded = check_lines(folded);
        for (i, physical) in folded.trim_end_matches("\r\n").split("\r\n").enumerate() {
            if i > 0 {
                assert!(
                    physical.starts_with(' ') && physical.len() > 1,
                    "{physical:?}"
                );
            }
        }
        unfolded
    }

    #[test]
    fn text_is_cleaned_of_controls_before_escaping() {
        assert_eq!(
            clean_text("one\ntwo\r\nthree\rfour"),
            "one\ntwo\nthree\nfour"
        );
        assert_eq!(clean_text("tab\there"), "tab\there");
        assert_eq!(clean_text("bell\u{7}del\u{7f}esc\u{1b}"), "belldelesc");
        assert_eq!(clean_text("ünï, \"q\"; \\"), "ünï, \"q\"; \\");
    }

    #[test]
    fn parameter_values() {
        assert_eq!(param_value("Alice"), "Alice");
        assert_eq!(param_value("Ünïcødé 😀"), "Ünïcødé 😀");
        assert_eq!(param_value("Jo \"JJ\" Smith"), "Jo 'JJ' Smith");
        assert_eq!(param_value("\"quoted\""), "'quoted'");
        assert_eq!(param_value("two\nlines\r"), "two lines ");
    }

    #[test]
    fn uri_values() {
        let plain = "https://example.org/a?b=c&d=e;f,g#h";
        assert_eq!(uri_value(plain), plain);
        assert_eq!(uri_value("https://x.org/a b"), "https://x.org/a%20b");
        assert_eq!(
            uri_value("https://x.org/\r\nX:1"),
            "https://x.org/%0D%0AX:1"
        );
        assert_eq!(uri_value("https://x.org/é"), "https://x.org/%C3%A9");
        assert_eq!(uri_value("a\"b"), "a%22b");
    }

    #[test]
    fn uid_is_stable_and_distinct() {
        let id = MessageId([7; 32]);
        // Fixed forever: a change here re-keys every exported event.
        assert_eq!(
            uid(&id),
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc@potluck"
        );
        assert_ne!(uid(&id), uid(&MessageId([8; 32])));
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = 0xf0 | (i as u8 & 0x0f);
        }
        let u = uid(&MessageId(bytes));
        assert!(u.ends_with("@potluck"));
        assert!(
            u.trim_end_matches("@potluck")
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            feed_uri(&FeedId([0xff; 32])),
            "urn:potluck:feed:__________________________________________8"
        );
    }

    #[test]
    fn utc_times() {
        let t = |s: &str| EventTime::parse("start", s).unwrap().timestamp();
        assert_eq!(
            utc_datetime(t("2027-01-30T16:00:00-05:00")),
            "20270130T210000Z"
        );
        assert_eq!(
            utc_datetime(t("2027-01-30T21:00:00.999Z")),
            "20270130T210000Z"
        );
        assert_eq!(
            utc_datetime(t("1969-12-31T23:59:59.5Z")),
            "19691231T235959Z"
        );
        assert_eq!(utc_datetime(Timestamp::MIN), "00000101T000000Z");
        assert_eq!(utc_datetime(Timestamp::MAX).len(), 16);
    }

    fn state(title: &str) -> EventState {
        EventState {
            id: MessageId([1; 32]),
            author: FeedId([2; 32]),
            event: Event::new(
                title,
                EventTime::parse("start", "2027-01-30T16:00:00-05:00").unwrap(),
            ),
            revision: 0,
            status: EventStatus::Scheduled,
            cancel_reason: None,
            plan_revision: 0,
        }
    }

    fn one(s: &EventState, attendees: Vec<IcsAttendee>) -> String {
        calendar(
            &[IcsEvent {
                state: s,
                organizer_name: None,
                attendees,
            }],
            Timestamp::UNIX_EPOCH,
            None,
        )
    }

    #[test]
    fn alarm_triggers_use_the_largest_whole_unit() {
        assert_eq!(alarm_trigger(60), "-PT1H");
        assert_eq!(alarm_trigger(15), "-PT15M");
        assert_eq!(alarm_trigger(90), "-PT90M");
        assert_eq!(alarm_trigger(120), "-PT2H");
        assert_eq!(alarm_trigger(1440), "-P1D");
        assert_eq!(alarm_trigger(7 * 1440), "-P7D");
        assert_eq!(alarm_trigger(1500), "-PT25H");
        assert_eq!(alarm_lines("x", 0), "");
    }

    #[test]
    fn only_a_scheduled_event_gets_an_alarm() {
        let mut s = state("Soup; night");
        let with = |s: &EventState, minutes| {
            let text = calendar(
                &[IcsEvent {
                    state: s,
                    organizer_name: None,
                    attendees: vec![],
                }],
                Timestamp::UNIX_EPOCH,
                minutes,
            );
            check_lines(&text)
        };
        let text = with(&s, Some(60));
        assert_eq!(text.matches("BEGIN:VALARM").count(), 1, "{text}");
        assert!(text.contains("\r\nTRIGGER:-PT1H\r\n"), "{text}");
        assert!(text.contains("\r\nACTION:DISPLAY\r\n"), "{text}");
        // Nothing of the crate's own: no clock, no random UID.
        let alarm = &text[text.find("BEGIN:VALARM").unwrap()..text.find("END:VALARM").unwrap()];
        assert!(
            !alarm.contains("DTSTAMP") && !alarm.contains("UID"),
            "{alarm}"
        );
        assert!(
            text.contains("DESCRIPTION:Reminder: Soup\\; night"),
            "{text}"
        );
        assert!(!with(&s, None).contains("VALARM"));
        s.status = EventStatus::Cancelled;
        assert!(!with(&s, Some(60)).contains("VALARM"));
    }

    #[test]
    fn an_event_without_a_usable_end_lasts_the_default_duration() {
        let mut s = state("x");
        // Start 21:00Z; two hours by default.
        assert_eq!(property(&one(&s, vec![]), "DTEND"), "20270130T230000Z");
        for not_later in ["2027-01-30T21:00:00.7Z", "2027-01-30T20:00:00Z"] {
            s.event.end = Some(EventTime::parse("end", not_later).unwrap());
            assert_eq!(property(&one(&s, vec![]), "DTEND"), "20270130T230000Z");
        }
        s.event.end = Some(EventTime::parse("end", "2027-01-30T21:00:01Z").unwrap());
        assert_eq!(property(&one(&s, vec![]), "DTEND"), "20270130T210001Z");
    }

    #[test]
    fn only_an_admitted_going_answer_is_accepted() {
        use AdmissionStatus::*;
        assert_eq!(partstat(RsvpStatus::Going, Some(Admitted)), "ACCEPTED");
        assert_eq!(partstat(RsvpStatus::Going, None), "ACCEPTED");
        assert_eq!(partstat(RsvpStatus::Going, Some(Waitlisted)), "TENTATIVE");
        assert_eq!(partstat(RsvpStatus::Going, Some(Pending)), "TENTATIVE");
        assert_eq!(partstat(RsvpStatus::Maybe, None), "TENTATIVE");
        assert_eq!(partstat(RsvpStatus::NotGoing, None), "DECLINED");

        let s = state("x");
        let person = |n: u8, status, admission, guests| IcsAttendee {
            feed: FeedId([n; 32]),
            name: Some(format!("P{n}")),
            status,
            admission,
            guests,
        };
        let text = one(
            &s,
            vec![
                person(3, RsvpStatus::Going, Some(Admitted), 2),
                person(4, RsvpStatus::Going, Some(Waitlisted), 0),
                person(5, RsvpStatus::Going, Some(Pending), 1),
            ],
        );
        let unfolded = check_lines(&text);
        let attendees: Vec<&str> = unfolded
            .split("\r\n")
            .filter(|l| l.starts_with("ATTENDEE"))
            .collect();
        assert_eq!(attendees.len(), 3, "{unfolded}");
        assert!(
            attendees[0].contains("PARTSTAT=ACCEPTED"),
            "{}",
            attendees[0]
        );
        assert!(attendees[0].contains("X-NUM-GUESTS=2"), "{}", attendees[0]);
        assert!(!attendees[0].contains("X-POTLUCK-ADMISSION"));
        assert!(
            attendees[1].contains("PARTSTAT=TENTATIVE"),
            "{}",
            attendees[1]
        );
        assert!(attendees[1].contains("X-POTLUCK-ADMISSION=waitlisted"));
        assert!(attendees[2].contains("X-POTLUCK-ADMISSION=pending"));
        assert!(attendees[2].contains("X-NUM-GUESTS=1"));
    }

    #[test]
    fn revision_beyond_integer_range_is_clamped() {
        let mut s = state("x");
        s.revision = u32::MAX;
        assert_eq!(property(&one(&s, vec![]), "SEQUENCE"), "2147483647");
    }

    proptest! {
        #[test]
        fn any_input_gives_well_formed_lines(
            title in "(?s).{0,300}",
            description in "(?s).{0,300}",
            url in "(?s).{0,100}",
            name in "(?s).{0,100}",
            tz in "(?s).{0,40}",
        ) {
            let mut s = state(&title);
            s.event.description = Some(description.clone());
            s.event.location = Some(description);
            s.event.url = Some(url);
            s.event.tz = Some(tz);
            s.status = EventStatus::Cancelled;
            s.cancel_reason = Some(name.clone());
            let ics = IcsEvent {
                state: &s,
                organizer_name: Some(name.clone()),
                attendees: vec![IcsAttendee {
                    feed: FeedId([3; 32]),
                    name: Some(name),
                    status: RsvpStatus::Maybe,
                    admission: None,
                    guests: 0,
                }],
            };
            let text = calendar(&[ics], Timestamp::UNIX_EPOCH, Some(60));
            let unfolded = check_lines(&text);
            prop_assert!(unfolded.starts_with("BEGIN:VCALENDAR\r\n"));
            prop_assert!(unfolded.ends_with("END:VCALENDAR"));
            let summary = unfolded
                .split("\r\n")
                .find_map(|l| l.strip_prefix("SUMMARY:"))
                .unwrap();
            // The title comes back, minus the control characters.
            prop_assert_eq!(unescape_text(summary), clean_text(&title));
        }
    }
}
