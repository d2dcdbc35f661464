//! The iCalendar export read back by an independent parser (the
//! `icalendar` crate), with every required property asserted one by one:
//! parsers are lenient, so parsing alone proves little.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use icalendar::parser::{Component, Property, read_calendar, unfold};
use icalendar::{CalendarComponent, CalendarDateTime, Component as _, DatePerhapsTime, EventLike};
use jiff::Timestamp;
use potluck::app::ics::{IcsAttendee, IcsEvent, calendar};
use potluck::content::{Event, EventTime, RsvpStatus};
use potluck::feed::message::{FeedId, MessageId};
use potluck::store::admission::AdmissionStatus;
use potluck::store::index::{EventState, EventStatus};

const NOW: &str = "2027-01-01T12:34:56.789Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn time(s: &str) -> EventTime {
    EventTime::parse("time", s).unwrap()
}

fn event(title: &str, start: &str, end: Option<&str>) -> Event {
    Event {
        end: end.map(time),
        ..Event::new(title, time(start))
    }
}

fn state(id: u8, author: u8, event: Event) -> EventState {
    EventState {
        id: MessageId([id; 32]),
        author: FeedId([author; 32]),
        event,
        revision: 0,
        status: EventStatus::Scheduled,
        cancel_reason: None,
        plan_revision: 0,
    }
}

/// 300 characters, mixing ASCII, escapes and 2-, 3- and 4-octet characters,
/// so the SUMMARY line must be folded, in places next to a wide character.
fn long_title() -> String {
    let unit = "Potluck, große Feier; ☃ \\ 🎉 ";
    let title: String = unit.chars().cycle().take(300).collect();
    assert_eq!(title.chars().count(), 300);
    title
}

const DESCRIPTION: &str = "Bring a dish, a fork; and a smile.\n\
    Second line with a backslash \\ and \"quotes\".\n\n\
    Ünïcødé: 日本語, émoji 🍲; done\\n (a literal backslash-n)";
const LOCATION: &str = "Café \"Zur Post\", Hauptstraße 5; 2nd floor \\ back room";
const URL: &str = "https://example.org/events/42?a=1&b=2;c,d#top";

/// The full event (organizer name with a comma and quotes, three RSVPs)
/// and a cancelled one with no end and nothing optional.
fn fixture() -> (EventState, EventState) {
    let mut full = state(
        1,
        2,
        event(
            &long_title(),
            // Given with an offset: the export must show the same instant in UTC.
            "2027-01-30T16:00:00-05:00",
            Some("2027-01-30T18:30:00-05:00"),
        ),
    );
    full.event.tz = Some("America/New_York".to_owned());
    full.event.location = Some(LOCATION.to_owned());
    full.event.url = Some(URL.to_owned());
    full.event.description = Some(DESCRIPTION.to_owned());
    full.event.capacity = Some(30);
    full.revision = 3;

    let mut cancelled = state(9, 2, event("Picnic", "2027-06-01T12:00:00+02:00", None));
    cancelled.revision = 2;
    cancelled.status = EventStatus::Cancelled;
    cancelled.cancel_reason = Some("Rain, sadly; sorry".to_owned());
    (full, cancelled)
}

fn attendees() -> Vec<IcsAttendee> {
    vec![
        IcsAttendee {
            feed: FeedId([10; 32]),
            name: Some("Bob; Jr.".to_owned()),
            status: RsvpStatus::Going,
            admission: Some(AdmissionStatus::Admitted),
            guests: 0,
        },
        IcsAttendee {
            feed: FeedId([11; 32]),
            name: None,
            status: RsvpStatus::Maybe,
            admission: None,
            guests: 0,
        },
        IcsAttendee {
            feed: FeedId([12; 32]),
            name: Some("Zoë \"Z\"\nLine:two".to_owned()),
            status: RsvpStatus::NotGoing,
            admission: None,
            guests: 0,
        },
    ]
}

fn export(full: &EventState, cancelled: &EventState) -> String {
    calendar(
        &[
            IcsEvent {
                state: full,
                organizer_name: Some("Ana María, \"the cook\"".to_owned()),
                attendees: attendees(),
            },
            IcsEvent {
                state: cancelled,
                organizer_name: None,
                attendees: vec![],
            },
        ],
        now(),
        Some(60),
    )
}

fn b64url(bytes: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The only property called `name`; fails if there are none or several.
fn one<'a>(props: &'a [Property<'a>], name: &str) -> &'a Property<'a> {
    let found: Vec<_> = props.iter().filter(|p| p.name == name).collect();
    assert_eq!(found.len(), 1, "expected exactly one {name}");
    found[0]
}

fn value<'a>(props: &'a [Property<'a>], name: &str) -> &'a str {
    one(props, name).val.as_str()
}

fn param<'a>(prop: &'a Property<'a>, key: &str) -> Option<&'a str> {
    let found: Vec<_> = prop.params.iter().filter(|p| p.key == key).collect();
    assert!(found.len() <= 1, "{key} given twice");
    found
        .first()
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str())
}

fn events<'a>(components: &'a [Component<'a>]) -> Vec<&'a Component<'a>> {
    components.iter().filter(|c| c.name == "VEVENT").collect()
}

fn typed(component: &Component) -> icalendar::Event {
    match CalendarComponent::from(component.clone()) {
        CalendarComponent::Event(event) => event,
        _ => panic!("not an event"),
    }
}

/// Seconds since the epoch of a UTC DATE-TIME as the parser reads it.
fn utc_seconds(value: Option<DatePerhapsTime>) -> i64 {
    match value {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(dt))) => dt.timestamp(),
        other => panic!("not a UTC date-time: {other:?}"),
    }
}

#[test]
fn raw_text_has_crlf_lines_of_at_most_75_octets() {
    let (full, cancelled) = fixture();
    let text = export(&full, &cancelled);
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    let body = text.strip_suffix("\r\n").unwrap();
    let mut folded = 0;
    for physical in body.split("\r\n") {
        assert!(
            !physical.contains(['\r', '\n']),
            "line not ended by CRLF: {physical:?}"
        );
        assert!(
            physical.len() <= 75,
            "{} octets: {physical:?}",
            physical.len()
        );
        assert!(!physical.is_empty(), "empty line");
        if physical.starts_with(' ') {
            folded += 1;
        }
    }
    // The 300-character title (~420 octets escaped) alone needs 5 or more.
    assert!(folded >= 5, "only {folded} continuation lines");
    // Folding never splits a character: every physical line is UTF-8 on
    // its own (a &str split can't show that, so check the bytes).
    for physical in text.as_bytes().split(|&b| b == b'\n') {
        assert!(std::str::from_utf8(physical).is_ok());
    }
}

#[test]
fn calendar_properties() {
    let (full, cancelled) = fixture();
    let text = export(&full, &cancelled);
    let unfolded = unfold(&text);
    let cal = read_calendar(&unfolded).unwrap();
    assert_eq!(value(&cal.properties, "VERSION"), "2.0");
    assert_eq!(value(&cal.properties, "PRODID"), potluck::app::ics::PRODID);
    assert!(potluck::app::ics::PRODID.starts_with("-//potluck//potluck "));
    assert!(potluck::app::ics::PRODID.ends_with("//EN"));
    assert_eq!(value(&cal.properties, "CALSCALE"), "GREGORIAN");
    assert_eq!(events(&cal.components).len(), 2);
    assert_eq!(cal.components.len(), 2);
    // The alarms sit inside the events, not beside them.
    assert!(cal.components.iter().all(|c| c.name != "VALARM"));
}

#[test]
fn full_event_properties() {
    let (full, cancelled) = fixture();
    let text = export(&full, &cancelled);
    let unfolded = unfold(&text);
    let cal = read_calendar(&unfolded).unwrap();
    let vevents = events(&cal.components);
    let ev = vevents[0];
    let p = &ev.properties;

    // UID: base64url of the id bytes + "@potluck".
    assert_eq!(value(p, "UID"), format!("{}@potluck", b64url(&[1; 32])));

    // DTSTAMP is `now` in UTC, fractions dropped.
    assert_eq!(value(p, "DTSTAMP"), "20270101T123456Z");

    // DTSTART/DTEND: the same instants as the event, written in UTC.
    assert_eq!(value(p, "DTSTART"), "20270130T210000Z");
    assert_eq!(value(p, "DTEND"), "20270130T233000Z");
    let typed = typed(ev);
    assert_eq!(
        utc_seconds(typed.get_start()),
        full.event.start.timestamp().as_second()
    );
    assert_eq!(
        utc_seconds(typed.get_end()),
        full.event.end.as_ref().unwrap().timestamp().as_second()
    );
    assert_eq!(
        typed.get_timestamp().unwrap().timestamp(),
        now().as_second()
    );
    for name in ["DTSTART", "DTEND", "DTSTAMP"] {
        assert!(one(p, name).params.is_empty(), "{name} has a TZID");
    }

    // TEXT values round-trip through escaping and folding.
    assert_eq!(value(p, "SUMMARY"), long_title());
    assert_eq!(value(p, "DESCRIPTION"), DESCRIPTION);
    assert_eq!(value(p, "LOCATION"), LOCATION);
    assert_eq!(value(p, "URL"), URL);
    assert_eq!(typed.get_summary(), Some(long_title().as_str()));
    assert_eq!(typed.get_description(), Some(DESCRIPTION));
    assert_eq!(typed.get_location(), Some(LOCATION));
    assert_eq!(typed.get_url(), Some(URL));
    assert_eq!(value(p, "X-POTLUCK-TZ"), "America/New_York");

    // The raw text really is escaped (not just accepted by a lenient parser).
    assert!(
        unfolded.contains(
            "LOCATION:Café \"Zur Post\"\\, Hauptstraße 5\\; 2nd floor \\\\ back room\r\n"
        )
    );
    assert!(unfolded.contains("\\n\\nÜnïcødé: 日本語\\, émoji 🍲\\; done\\\\n (a literal"));

    // SEQUENCE is the revision; STATUS is confirmed.
    assert_eq!(value(p, "SEQUENCE"), "3");
    assert_eq!(typed.get_sequence(), Some(full.revision));
    assert_eq!(value(p, "STATUS"), "CONFIRMED");
    assert!(p.iter().all(|prop| prop.name != "COMMENT"));

    // ORGANIZER: the URN of the author's feed; CN the name, with the DQUOTEs
    // replaced and the comma kept inside a quoted value.
    let organizer = one(p, "ORGANIZER");
    assert_eq!(
        organizer.val.as_str(),
        format!("urn:potluck:feed:{}", b64url(&[2; 32]))
    );
    assert_eq!(param(organizer, "CN"), Some("Ana María, 'the cook'"));
    assert!(unfolded.contains("ORGANIZER;CN=\"Ana María, 'the cook'\":urn:potluck:feed:"));
    // The URN carries the feed's bytes: re-encoded, they are its usual id.
    let urn_body = organizer
        .val
        .as_str()
        .strip_prefix("urn:potluck:feed:")
        .unwrap();
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(urn_body)
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        FeedId::parse(&format!("@{}.ed25519", STANDARD.encode(bytes))).unwrap(),
        full.author
    );

    // One ATTENDEE per RSVP, in order, with CN and PARTSTAT.
    let attendees: Vec<_> = p.iter().filter(|prop| prop.name == "ATTENDEE").collect();
    assert_eq!(attendees.len(), 3);
    let expected = [
        (10u8, "Bob; Jr.".to_owned(), "ACCEPTED"),
        // No name: the CN falls back to the feed id.
        (11, FeedId([11; 32]).to_string(), "TENTATIVE"),
        // DQUOTE replaced, newline turned into a space, quoted for the colon.
        (12, "Zoë 'Z' Line:two".to_owned(), "DECLINED"),
    ];
    for (attendee, (feed, cn, partstat)) in attendees.iter().zip(expected) {
        assert_eq!(
            attendee.val.as_str(),
            format!("urn:potluck:feed:{}", b64url(&[feed; 32]))
        );
        assert_eq!(param(attendee, "CN"), Some(cn.as_str()));
        assert_eq!(param(attendee, "PARTSTAT"), Some(partstat));
    }
}

#[test]
fn cancelled_event_properties() {
    let (full, cancelled) = fixture();
    let text = export(&full, &cancelled);
    let unfolded = unfold(&text);
    let cal = read_calendar(&unfolded).unwrap();
    let vevents = events(&cal.components);
    let ev = vevents[1];
    let p = &ev.properties;
    assert_eq!(value(p, "UID"), format!("{}@potluck", b64url(&[9; 32])));
    assert_eq!(value(p, "DTSTAMP"), "20270101T123456Z");
    assert_eq!(value(p, "DTSTART"), "20270601T100000Z");
    // No end: the default two hours, as DTEND (no DURATION).
    assert_eq!(value(p, "DTEND"), "20270601T120000Z");
    assert_eq!(
        potluck::app::ics::DEFAULT_DURATION_MINUTES,
        120,
        "docs/content.md says two hours"
    );
    assert!(p.iter().all(|prop| prop.name != "DURATION"));
    assert_eq!(value(p, "STATUS"), "CANCELLED");
    assert_eq!(
        typed(ev).get_status(),
        Some(icalendar::EventStatus::Cancelled)
    );
    assert_eq!(value(p, "SEQUENCE"), "2");
    assert_eq!(value(p, "SUMMARY"), "Picnic");
    assert_eq!(value(p, "COMMENT"), "Rain, sadly; sorry");
    for absent in ["DESCRIPTION", "LOCATION", "URL", "ATTENDEE", "X-POTLUCK-TZ"] {
        assert!(p.iter().all(|prop| prop.name != absent), "{absent}");
    }
    // No organizer name: the CN is the feed id.
    let organizer = one(p, "ORGANIZER");
    assert_eq!(
        param(organizer, "CN"),
        Some(FeedId([2; 32]).to_string().as_str())
    );
}

#[test]
fn uid_is_stable_across_exports_and_revisions() {
    let (mut full, cancelled) = fixture();
    let first = export(&full, &cancelled);
    // Deterministic: the same input gives the same bytes.
    assert_eq!(first, export(&fixture().0, &fixture().1));
    full.revision += 1;
    full.event.title = "Renamed".to_owned();
    let second = calendar(
        &[IcsEvent {
            state: &full,
            organizer_name: None,
            attendees: vec![],
        }],
        Timestamp::UNIX_EPOCH,
        Some(60),
    );
    let uid_of = |text: &str| {
        let unfolded = unfold(text);
        let cal = read_calendar(&unfolded).unwrap();
        value(&events(&cal.components)[0].properties, "UID").to_owned()
    };
    assert_eq!(uid_of(&first), uid_of(&second));
}

#[test]
fn empty_calendar_and_hostile_input_parse() {
    let empty = calendar(&[], now(), Some(60));
    assert_eq!(
        empty,
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{}\r\nCALSCALE:GREGORIAN\r\nEND:VCALENDAR\r\n",
            potluck::app::ics::PRODID
        )
    );

    // Control characters, CRLF injection attempts and a lone CR: none may
    // start a property of their own.
    let mut hostile = state(
        3,
        4,
        event(
            "x\r\nATTENDEE:mailto:evil@example.org\rEND:VEVENT\u{0}\u{7f}",
            "2027-01-30T16:00:00Z",
            Some("2027-01-30T16:00:00Z"),
        ),
    );
    hostile.event.url = Some("https://x.org/\r\nUID:evil\"<>".to_owned());
    let text = calendar(
        &[IcsEvent {
            state: &hostile,
            organizer_name: Some("\r\nX:1\"".to_owned()),
            attendees: vec![IcsAttendee {
                feed: FeedId([5; 32]),
                name: Some("   ".to_owned()),
                status: RsvpStatus::Going,
                admission: None,
                guests: 0,
            }],
        }],
        now(),
        Some(60),
    );
    let unfolded = unfold(&text);
    let cal = read_calendar(&unfolded).unwrap();
    let vevents = events(&cal.components);
    assert_eq!(vevents.len(), 1);
    let p = &vevents[0].properties;
    assert_eq!(
        value(p, "SUMMARY"),
        "x\nATTENDEE:mailto:evil@example.org\nEND:VEVENT"
    );
    assert_eq!(value(p, "URL"), "https://x.org/%0D%0AUID:evil%22%3C%3E");
    assert_eq!(value(p, "UID"), format!("{}@potluck", b64url(&[3; 32])));
    // End equal to start: RFC 5545 wants DTEND later, so the default
    // duration applies.
    assert_eq!(value(p, "DTEND"), "20270130T180000Z");
    assert_eq!(param(one(p, "ORGANIZER"), "CN"), Some("  X:1'"));
    let attendee = one(p, "ATTENDEE");
    // A blank name falls back to the feed id.
    assert_eq!(
        param(attendee, "CN"),
        Some(FeedId([5; 32]).to_string().as_str())
    );
    assert_eq!(
        attendee.val.as_str(),
        format!("urn:potluck:feed:{}", b64url(&[5; 32]))
    );
    for physical in text.strip_suffix("\r\n").unwrap().split("\r\n") {
        assert!(physical.len() <= 75 && !physical.contains(['\r', '\n']));
    }
}

/// The only sub-component `name` of a component.
fn only<'a>(component: &'a Component<'a>, name: &str) -> &'a Component<'a> {
    let found: Vec<_> = component
        .components
        .iter()
        .filter(|c| c.name == name)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {name}");
    found[0]
}

/// Issue 22: each scheduled event carries one display alarm an hour
/// before its start (by default), with each property RFC 5545 requires of
/// a DISPLAY alarm (ACTION, TRIGGER, DESCRIPTION) present once; the
/// cancelled event carries none.
#[test]
fn each_scheduled_event_has_a_display_alarm_an_hour_before() {
    let (full, cancelled) = fixture();
    let text = export(&full, &cancelled);
    let unfolded = unfold(&text);
    // The raw lines, in order, inside the VEVENT.
    assert!(
        unfolded.contains("BEGIN:VALARM\r\n"),
        "no VALARM: {unfolded}"
    );
    let cal = read_calendar(&unfolded).unwrap();
    let vevents = events(&cal.components);
    let alarm = only(vevents[0], "VALARM");
    let p = &alarm.properties;
    assert_eq!(value(p, "ACTION"), "DISPLAY");
    assert_eq!(value(p, "TRIGGER"), "-PT1H");
    // Relative to the start (the default): no RELATED=END, no VALUE.
    assert!(one(p, "TRIGGER").params.is_empty());
    assert_eq!(
        value(p, "DESCRIPTION"),
        format!("Reminder: {}", long_title())
    );
    // DURATION and REPEAT come together or not at all: neither here.
    for absent in ["DURATION", "REPEAT"] {
        assert!(p.iter().all(|prop| prop.name != absent), "{absent}");
    }
    assert_eq!(p.len(), 3, "{:?}", p);
    // The cancelled event has no alarm.
    assert!(vevents[1].components.is_empty());
}

/// Other alarm times are written in the largest whole unit, and no alarm
/// (config.json's 0 or null) means no VALARM at all.
#[test]
fn alarm_minutes_are_written_in_whole_units_or_left_out() {
    let (full, _) = fixture();
    let one_event = |minutes| {
        let text = calendar(
            &[IcsEvent {
                state: &full,
                organizer_name: None,
                attendees: vec![],
            }],
            now(),
            minutes,
        );
        unfold(&text)
    };
    for (minutes, trigger) in [
        (15, "-PT15M"),
        (90, "-PT90M"),
        (120, "-PT2H"),
        (1440, "-P1D"),
    ] {
        let unfolded = one_event(Some(minutes));
        let cal = read_calendar(&unfolded).unwrap();
        let alarm = only(events(&cal.components)[0], "VALARM");
        assert_eq!(value(&alarm.properties, "TRIGGER"), trigger);
        assert_eq!(value(&alarm.properties, "ACTION"), "DISPLAY");
    }
    for minutes in [None, Some(0)] {
        let unfolded = one_event(minutes);
        assert!(!unfolded.contains("VALARM"), "{minutes:?}: {unfolded}");
    }
}
