//! Export of events as an iCalendar (RFC 5545) file.
//!
//! Pure: no I/O and no clock. The caller gathers the events, the names it
//! knows and the current RSVPs, passes the current time as `now`, and gets
//! back the text of one `VCALENDAR` with one `VEVENT` per event.
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
//! - **Times** are written in UTC with a `Z` (`YYYYMMDDTHHMMSSZ`), which
//!   RFC 5545 allows and which needs no `VTIMEZONE`; fractions of a second
//!   are dropped. The author's IANA zone, when there is one, rides along in
//!   `X-POTLUCK-TZ` for clients that know it.
//! - **No end**: `DTEND` is left out (RFC 5545 §3.6.1: the event then ends
//!   when it starts). It is also left out when the end is not later than
//!   the start at the precision of a second, since RFC 5545 requires DTEND
//!   to be later.
//! - **SEQUENCE** is the event's revision (accepted updates plus the
//!   cancellation), so a cancellation keeps the UID and bumps SEQUENCE.
//!   **STATUS** is `CONFIRMED` or `CANCELLED`; a cancellation's reason goes
//!   in `COMMENT`.
//! - **ATTENDEE**: one per RSVP passed in, in the caller's order, with
//!   `PARTSTAT` `ACCEPTED` (going), `TENTATIVE` (maybe) or `DECLINED` (not
//!   going).
//!
//! Format: every line ends in CRLF and is folded so that no physical line
//! exceeds 75 octets, never inside a UTF-8 character (continuation lines
//! start with one space). TEXT values escape `\`, `;`, `,` and line breaks;
//! other control characters are dropped. Parameter values (`CN`) cannot
//! hold a DQUOTE or control characters at all: a DQUOTE becomes `'`, a
//! control character a space, and the value is quoted when it contains `:`,
//! `;` or `,`. A URL is written as is, except that characters a URI cannot
//! hold (spaces, controls, non-ASCII, ...) are percent-encoded as UTF-8.
//!
//! RFC 5545's grammar wants at least one component in a calendar; with no
//! events, [`calendar`] still returns an empty `VCALENDAR`, which is what an
//! empty subscription feed looks like.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jiff::tz::Offset;

use crate::content::RsvpStatus;
use crate::index::{EventState, EventStatus};
use crate::message::{FeedId, MessageId};

/// The `PRODID` of every calendar this module writes.
pub const PRODID: &str = concat!("-//potluck//potluck ", env!("CARGO_PKG_VERSION"), "//EN");

/// Longest physical line, in octets, not counting the CRLF.
pub const MAX_LINE_OCTETS: usize = 75;

/// One person's current answer to an event, with the name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcsAttendee {
    /// Who answered.
    pub feed: FeedId,
    /// Their name, if known; the feed id is shown otherwise.
    pub name: Option<String>,
    /// Going, maybe or not going.
    pub status: RsvpStatus,
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
/// line ends, folded lines). `now` becomes every `DTSTAMP`.
pub fn calendar(events: &[IcsEvent], now: Timestamp) -> String {
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, &format!("PRODID:{}", escape_text(PRODID)));
    line(&mut out, "CALSCALE:GREGORIAN");
    let stamp = utc_datetime(now);
    for event in events {
        write_event(&mut out, event, &stamp);
    }
    line(&mut out, "END:VCALENDAR");
    out
}

fn write_event(out: &mut String, ics: &IcsEvent, stamp: &str) {
    let state = ics.state;
    let event = &state.event;
    line(out, "BEGIN:VEVENT");
    line(out, &format!("UID:{}", uid(&state.id)));
    line(out, &format!("DTSTAMP:{stamp}"));
    let start = utc_datetime(event.start.timestamp());
    line(out, &format!("DTSTART:{start}"));
    if let Some(end) = &event.end {
        let end = utc_datetime(end.timestamp());
        // Same fixed-width form, so text order is time order.
        if end > start {
            line(out, &format!("DTEND:{end}"));
        }
    }
    let sequence = i32::try_from(state.revision).unwrap_or(i32::MAX);
    line(out, &format!("SEQUENCE:{sequence}"));
    let status = match state.status {
        EventStatus::Scheduled => "CONFIRMED",
        EventStatus::Cancelled => "CANCELLED",
    };
    line(out, &format!("STATUS:{status}"));
    line(out, &format!("SUMMARY:{}", escape_text(&event.title)));
    if let Some(description) = &event.description {
        line(out, &format!("DESCRIPTION:{}", escape_text(description)));
    }
    if let Some(location) = &event.location {
        line(out, &format!("LOCATION:{}", escape_text(location)));
    }
    if let Some(url) = &event.url {
        line(out, &format!("URL:{}", uri_value(url)));
    }
    if state.status == EventStatus::Cancelled
        && let Some(reason) = &state.cancel_reason
    {
        line(out, &format!("COMMENT:{}", escape_text(reason)));
    }
    if let Some(tz) = &event.tz {
        line(out, &format!("X-POTLUCK-TZ:{}", escape_text(tz)));
    }
    line(
        out,
        &format!(
            "ORGANIZER;CN={}:{}",
            common_name(ics.organizer_name.as_deref(), &state.author),
            feed_uri(&state.author)
        ),
    );
    for attendee in &ics.attendees {
        line(
            out,
            &format!(
                "ATTENDEE;CN={};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={}:{}",
                common_name(attendee.name.as_deref(), &attendee.feed),
                partstat(attendee.status),
                feed_uri(&attendee.feed)
            ),
        );
    }
    line(out, "END:VEVENT");
}

/// The `PARTSTAT` of an answer.
pub fn partstat(status: RsvpStatus) -> &'static str {
    match status {
        RsvpStatus::Going => "ACCEPTED",
        RsvpStatus::Maybe => "TENTATIVE",
        RsvpStatus::NotGoing => "DECLINED",
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

/// Escapes a TEXT value (RFC 5545 §3.3.11): `\` `;` `,` get a backslash,
/// a line break (LF, CRLF or CR) becomes `\n`, other control characters
/// except tab are dropped (TEXT cannot hold them).
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\t' => out.push('\t'),
            c if is_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (RFC 5545 §3.1): a DQUOTE, which no parameter value
/// may hold, becomes `'`; a control character other than tab becomes a
/// space; the result is quoted when it holds `:` `;` or `,`.
pub fn param_value(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\t' => '\t',
            c if is_control(c) => ' ',
            c => c,
        })
        .collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
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

/// Appends one content line, folded, with its CRLF.
fn line(out: &mut String, content: &str) {
    out.push_str(&fold(content));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{Event, EventTime};
    use proptest::prelude::*;

    /// Undoes folding: removes every CRLF followed by one space or tab.
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "").replace("\r\n\t", "")
    }

    /// Reverses [`escape_text`] (for tests only).
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

    /// Checks the physical-line rules of one folded content line and
    /// returns it unfolded.
    fn check_physical(folded: &str) -> String {
        check_lines(folded, true)
    }

    /// Checks that `text` is CRLF-terminated lines of at most 75 octets
    /// (and, for one folded content line, that every line after the first
    /// is a non-empty continuation); returns it unfolded, without the final
    /// CRLF.
    fn check_lines(folded: &str, single: bool) -> String {
        assert!(folded.ends_with("\r\n"), "no final CRLF: {folded:?}");
        let body = &folded[..folded.len() - 2];
        for (i, physical) in body.split("\r\n").enumerate() {
            assert!(!physical.contains(['\r', '\n']), "bare CR/LF: {physical:?}");
            assert!(
                physical.len() <= MAX_LINE_OCTETS,
                "{} octets: {physical:?}",
                physical.len()
            );
            if single && i > 0 {
                assert!(physical.starts_with(' '), "continuation: {physical:?}");
                assert!(physical.len() > 1, "empty continuation");
            }
        }
        unfold(body)
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
        assert_eq!(check_physical(&folded), content);
    }

    #[test]
    fn multibyte_characters_are_never_split() {
        for wide in ['é', '€', '😀'] {
            let n = wide.len_utf8();
            // Put the wide character at every position around the limit.
            for prefix in 60..=80 {
                let content = format!("{}{}", "a".repeat(prefix), wide.to_string().repeat(40));
                let folded = fold(&content);
                let unfolded = check_physical(&folded);
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
        assert_eq!(check_physical(&folded), content);
    }

    #[test]
    fn empty_line_folds_to_crlf() {
        assert_eq!(fold(""), "\r\n");
    }

    proptest! {
        #[test]
        fn fold_keeps_limits_and_unfolds(content in "[^\r\n]{0,400}") {
            let folded = fold(&content);
            prop_assert_eq!(check_physical(&folded), content);
        }

        #[test]
        fn escape_round_trips(value in "[^\r\x00-\x08\x0B-\x1F\x7F]{0,200}") {
            let escaped = escape_text(&value);
            prop_assert!(!escaped.contains(['\r', '\n']));
            // Unescaped `;` and `,` never appear.
            let mut prev_backslash = false;
            for c in escaped.chars() {
                if !prev_backslash {
                    prop_assert!(c != ';' && c != ',');
                }
                prev_backslash = c == '\\' && !prev_backslash;
            }
            prop_assert_eq!(unescape_text(&escaped), value);
        }

        #[test]
        fn param_value_is_always_valid(value in "(?s).{0,80}") {
            let p = param_value(&value);
            let inner = match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(inner) => {
                    prop_assert!(inner.contains([':', ';', ',']));
                    inner
                }
                None => {
                    prop_assert!(!p.contains([':', ';', ',']));
                    p.as_str()
                }
            };
            prop_assert!(!inner.contains('"'));
            prop_assert!(!inner.chars().any(is_control));
        }
    }

    #[test]
    fn text_escaping() {
        assert_eq!(escape_text("a,b;c\\d"), "a\\,b\\;c\\\\d");
        assert_eq!(
            escape_text("one\ntwo\r\nthree\rfour"),
            "one\\ntwo\\nthree\\nfour"
        );
        assert_eq!(escape_text("tab\there"), "tab\there");
        assert_eq!(escape_text("bell\u{7}del\u{7f}"), "belldel");
        assert_eq!(
            escape_text("colon: ok \"quoted\" ünï"),
            "colon: ok \"quoted\" ünï"
        );
        assert_eq!(escape_text("\\n"), "\\\\n");
        assert_eq!(unescape_text(&escape_text("\\n")), "\\n");
    }

    #[test]
    fn parameter_values() {
        assert_eq!(param_value("Alice"), "Alice");
        assert_eq!(param_value("Ünïcødé 😀"), "Ünïcødé 😀");
        assert_eq!(param_value("Smith, Jo"), "\"Smith, Jo\"");
        assert_eq!(param_value("a:b"), "\"a:b\"");
        assert_eq!(param_value("a;b"), "\"a;b\"");
        assert_eq!(param_value("Jo \"JJ\" Smith"), "Jo 'JJ' Smith");
        assert_eq!(param_value("Jo \"JJ\", Smith"), "\"Jo 'JJ', Smith\"");
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
        assert_eq!(uid(&id), uid(&MessageId([7; 32])));
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

    #[test]
    fn end_not_after_start_is_left_out() {
        let mut s = state("x");
        let now = Timestamp::UNIX_EPOCH;
        let one = |s: &EventState| {
            calendar(
                &[IcsEvent {
                    state: s,
                    organizer_name: None,
                    attendees: vec![],
                }],
                now,
            )
        };
        assert!(!one(&s).contains("DTEND"));
        s.event.end = Some(EventTime::parse("end", "2027-01-30T21:00:00.7Z").unwrap());
        assert!(!one(&s).contains("DTEND"));
        s.event.end = Some(EventTime::parse("end", "2027-01-30T20:00:00Z").unwrap());
        assert!(!one(&s).contains("DTEND"));
        s.event.end = Some(EventTime::parse("end", "2027-01-30T21:00:01Z").unwrap());
        assert!(one(&s).contains("DTEND:20270130T210001Z\r\n"));
    }

    #[test]
    fn revision_beyond_integer_range_is_clamped() {
        let mut s = state("x");
        s.revision = u32::MAX;
        let text = calendar(
            &[IcsEvent {
                state: &s,
                organizer_name: None,
                attendees: vec![],
            }],
            Timestamp::UNIX_EPOCH,
        );
        assert!(text.contains("\r\nSEQUENCE:2147483647\r\n"));
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
                }],
            };
            let text = calendar(&[ics], Timestamp::UNIX_EPOCH);
            let unfolded = check_lines(&text, false);
            prop_assert!(unfolded.starts_with("BEGIN:VCALENDAR\r\n"));
            prop_assert!(unfolded.ends_with("END:VCALENDAR"));
            let summary = unfolded
                .split("\r\n")
                .find_map(|l| l.strip_prefix("SUMMARY:"))
                .unwrap();
            prop_assert_eq!(summary, escape_text(&title));
        }
    }
}
