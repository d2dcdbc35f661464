//! Unit tests of the content rules: parsing, limits, exact bytes, times.

use jiff::Timestamp;
use proptest::prelude::*;

use super::error::SHOWN_CHARS;
use super::*;
use crate::feed::message::{FeedId, MAX_CONTENT_LEN, MessageId};

const START: &str = "2027-01-30T16:00:00-05:00";
const END: &str = "2027-01-30T19:00:00-05:00";

fn event_id() -> MessageId {
    MessageId([7; 32])
}

fn feed_id() -> FeedId {
    FeedId([9; 32])
}

fn time(s: &str) -> EventTime {
    EventTime::parse("start", s).unwrap()
}

fn full_event() -> Event {
    Event {
        title: "Winter potluck".into(),
        start: time(START),
        end: Some(time(END)),
        tz: Some("America/New_York".into()),
        location: Some("Community hall, 12 Elm St".into()),
        url: Some("https://example.org/potluck".into()),
        description: Some("Bring a dish.\nVegetarian welcome \"of course\".".into()),
        capacity: Some(40),
        unlisted: false,
        public: false,
        closed_to_web: false,
        comments: CommentPolicy::Everyone,
    }
}

fn minimal_event() -> Event {
    Event::new("Soup", time(START))
}

fn parse_str(s: &str) -> Result<Content, ContentError> {
    parse(s.as_bytes())
}

fn parse_json(v: serde_json::Value) -> Result<Content, ContentError> {
    parse(v.to_string().as_bytes())
}

fn event_json() -> serde_json::Value {
    serde_json::json!({"type": "event", "title": "Soup", "start": START})
}

fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    base[key] = value;
    base
}

fn update_json() -> serde_json::Value {
    serde_json::json!({"type": "event-update", "event": event_id().to_string()})
}

fn rsvp_json() -> serde_json::Value {
    serde_json::json!({"type": "rsvp", "event": event_id().to_string(), "status": "going"})
}

/// Exhaustive: adding a variant breaks this until a case reaches it.
fn variant(e: &ContentError) -> &'static str {
    match e {
        ContentError::TooLarge { .. } => "TooLarge",
        ContentError::BadJson { .. } => "BadJson",
        ContentError::MissingField(_) => "MissingField",
        ContentError::WrongType { .. } => "WrongType",
        ContentError::EmptyTitle => "EmptyTitle",
        ContentError::TitleTooLong { .. } => "TitleTooLong",
        ContentError::BadTime { .. } => "BadTime",
        ContentError::EndBeforeStart => "EndBeforeStart",
        ContentError::UnknownTimeZone(_) => "UnknownTimeZone",
        ContentError::DescriptionTooLong { .. } => "DescriptionTooLong",
        ContentError::LocationTooLong { .. } => "LocationTooLong",
        ContentError::UrlTooLong { .. } => "UrlTooLong",
        ContentError::BadCapacity { .. } => "BadCapacity",
        ContentError::BadId { .. } => "BadId",
        ContentError::CannotClear(_) => "CannotClear",
        ContentError::EmptyUpdate => "EmptyUpdate",
        ContentError::ReasonTooLong { .. } => "ReasonTooLong",
        ContentError::BadStatus(_) => "BadStatus",
        ContentError::BadGuests { .. } => "BadGuests",
        ContentError::TooManyGuests(_) => "TooManyGuests",
        ContentError::NoteTooLong { .. } => "NoteTooLong",
        ContentError::NameEmpty => "NameEmpty",
        ContentError::NameTooLong { .. } => "NameTooLong",
        ContentError::AboutDescriptionTooLong { .. } => "AboutDescriptionTooLong",
        ContentError::BadRevision { .. } => "BadRevision",
        ContentError::BadDecision(_) => "BadDecision",
        ContentError::BadCommentPolicy(_) => "BadCommentPolicy",
        ContentError::EmptyCommentText => "EmptyCommentText",
        ContentError::CommentTextTooLong { .. } => "CommentTextTooLong",
        ContentError::TooManySeen(_) => "TooManySeen",
    }
}

const ALL_VARIANTS: [&str; 30] = [
    "TooLarge",
    "BadJson",
    "MissingField",
    "WrongType",
    "EmptyTitle",
    "TitleTooLong",
    "BadTime",
    "EndBeforeStart",
    "UnknownTimeZone",
    "DescriptionTooLong",
    "LocationTooLong",
    "UrlTooLong",
    "BadCapacity",
    "BadId",
    "CannotClear",
    "EmptyUpdate",
    "ReasonTooLong",
    "BadStatus",
    "BadGuests",
    "TooManyGuests",
    "NoteTooLong",
    "NameEmpty",
    "NameTooLong",
    "AboutDescriptionTooLong",
    "BadRevision",
    "BadDecision",
    "BadCommentPolicy",
    "EmptyCommentText",
    "CommentTextTooLong",
    "TooManySeen",
];

#[test]
fn every_error_variant_is_reached() {
    use serde_json::json;
    let ev = event_json;
    let big = format!(r#"{{"type":"x","pad":"{}"}}"#, "a".repeat(MAX_CONTENT_LEN));
    let cases: Vec<(Result<Content, ContentError>, ContentError)> = vec![
        (
            parse(big.as_bytes()),
            ContentError::TooLarge { len: big.len() },
        ),
        (
            parse(b"not json"),
            ContentError::BadJson {
                reason: "expected ident at line 1 column 2".into(),
            },
        ),
        (
            parse_json(json!({"type": "event", "start": START})),
            ContentError::MissingField("title"),
        ),
        (
            parse_json(with(ev(), "title", json!(5))),
            ContentError::WrongType {
                field: "title",
                expected: "a string",
            },
        ),
        (
            parse_json(with(ev(), "title", json!(" \t\n "))),
            ContentError::EmptyTitle,
        ),
        (
            parse_json(with(ev(), "title", json!("é".repeat(201)))),
            ContentError::TitleTooLong { chars: 201 },
        ),
        (
            parse_json(with(ev(), "start", json!("tomorrow at 4"))),
            ContentError::BadTime {
                field: "start",
                value: "tomorrow at 4".into(),
            },
        ),
        (
            parse_json(with(ev(), "end", json!("2027-01-30T15:59:59-05:00"))),
            ContentError::EndBeforeStart,
        ),
        (
            parse_json(with(ev(), "tz", json!("Mars/Olympus_Mons"))),
            ContentError::UnknownTimeZone("Mars/Olympus_Mons".into()),
        ),
        (
            parse_json(with(ev(), "description", json!("é".repeat(4097)))),
            ContentError::DescriptionTooLong { bytes: 8194 },
        ),
        (
            parse_json(with(ev(), "location", json!("x".repeat(501)))),
            ContentError::LocationTooLong { chars: 501 },
        ),
        (
            parse_json(with(ev(), "url", json!("x".repeat(2001)))),
            ContentError::UrlTooLong { chars: 2001 },
        ),
        (
            parse_json(with(ev(), "capacity", json!(0))),
            ContentError::BadCapacity { value: "0".into() },
        ),
        (
            parse_json(with(rsvp_json(), "event", json!("%abc.blake3"))),
            ContentError::BadId {
                field: "event",
                value: "%abc.blake3".into(),
                expected: "a message id like %<base64 of 32 bytes>.blake3",
            },
        ),
        (
            parse_json(with(update_json(), "title", json!(null))),
            ContentError::CannotClear("title"),
        ),
        (parse_json(update_json()), ContentError::EmptyUpdate),
        (
            parse_json(json!({
                "type": "event-cancel",
                "event": event_id().to_string(),
                "reason": "r".repeat(501),
            })),
            ContentError::ReasonTooLong { chars: 501 },
        ),
        (
            parse_json(with(rsvp_json(), "status", json!("yes"))),
            ContentError::BadStatus("yes".into()),
        ),
        (
            parse_json(with(rsvp_json(), "guests", json!(-1))),
            ContentError::BadGuests { value: "-1".into() },
        ),
        (
            parse_json(with(rsvp_json(), "guests", json!(21))),
            ContentError::TooManyGuests(21),
        ),
        (
            parse_json(with(rsvp_json(), "note", json!("n".repeat(501)))),
            ContentError::NoteTooLong { chars: 501 },
        ),
        (
            parse_json(json!({"type": "about", "name": "  "})),
            ContentError::NameEmpty,
        ),
        (
            parse_json(json!({"type": "about", "name": "n".repeat(101)})),
            ContentError::NameTooLong { chars: 101 },
        ),
        (
            parse_json(json!({"type": "about", "name": "Ana", "description": "d".repeat(1001)})),
            ContentError::AboutDescriptionTooLong { chars: 1001 },
        ),
        (
            parse_json(json!({
                "type": "rsvp", "event": event_id().to_string(), "status": "going",
                "revision": -1
            })),
            ContentError::BadRevision { value: "-1".into() },
        ),
        (
            parse_json(json!({
                "type": "admission", "event": event_id().to_string(),
                "rsvp": event_id().to_string(), "author": FeedId([1; 32]).to_string(),
                "decision": "maybe"
            })),
            ContentError::BadDecision("maybe".into()),
        ),
        (
            parse_json(with(event_json(), "comments", json!("some"))),
            ContentError::BadCommentPolicy("some".into()),
        ),
        (parse_json(comment_json("")), ContentError::EmptyCommentText),
        (
            parse_json(comment_json(&"x".repeat(MAX_COMMENT_TEXT_BYTES + 1))),
            ContentError::CommentTextTooLong {
                bytes: MAX_COMMENT_TEXT_BYTES + 1,
            },
        ),
        (
            parse_json(with(
                comment_json("x"),
                "seen",
                json!(vec![event_id().to_string(); MAX_SEEN + 1]),
            )),
            ContentError::TooManySeen(MAX_SEEN + 1),
        ),
    ];
    let mut reached = std::collections::BTreeSet::new();
    for (got, want) in cases {
        assert_eq!(got, Err(want.clone()));
        // Every message is non-empty prose.
        assert!(want.to_string().len() > 10, "{want}");
        reached.insert(variant(&want));
    }
    let all: std::collections::BTreeSet<_> = ALL_VARIANTS.into_iter().collect();
    assert_eq!(reached, all);
}

#[test]
fn error_messages_say_what_is_expected() {
    let e = parse_time("start", "2027-01-30 16:00").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`start` must be an RFC 3339 time with an offset, like 2027-01-30T16:00:00-05:00 (got `2027-01-30 16:00`)"
    );
    assert_eq!(
        ContentError::TooManyGuests(30).to_string(),
        "30 guests is too many: an RSVP may bring at most 20"
    );
    assert_eq!(
        ContentError::CannotClear("start").to_string(),
        "`start` cannot be cleared: an event always has one; leave it out to keep it unchanged"
    );
    // Long offending values are shortened.
    let long = "x".repeat(1000);
    match parse_time("end", &long) {
        Err(ContentError::BadTime {
            field: "end",
            value,
        }) => {
            assert_eq!(value.chars().count(), SHOWN_CHARS + 1);
            assert!(value.ends_with('…'));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn more_ways_to_be_wrong() {
    use serde_json::json;
    let ev = event_json;
    // Duplicate keys are rejected by the generic check.
    assert!(matches!(
        parse_str(r#"{"type":"event","title":"a","title":"b","start":"2027-01-30T16:00:00Z"}"#),
        Err(ContentError::BadJson { .. })
    ));
    assert!(matches!(
        parse(b"\xff\xfe"),
        Err(ContentError::BadJson { .. })
    ));
    assert!(matches!(parse(b"[1]"), Err(ContentError::BadJson { .. })));
    assert!(matches!(
        parse(br#"{"type":1}"#),
        Err(ContentError::BadJson { .. })
    ));
    assert_eq!(
        parse_json(with(ev(), "title", json!(null))),
        Err(ContentError::MissingField("title"))
    );
    assert_eq!(
        parse_json(json!({"type": "event", "title": "x"})),
        Err(ContentError::MissingField("start"))
    );
    assert_eq!(
        parse_json(with(ev(), "start", json!(1_800_000_000))),
        Err(ContentError::WrongType {
            field: "start",
            expected: "a string"
        })
    );
    for bad in [
        json!(-1),
        json!(1.5),
        json!("10"),
        json!(4_294_967_296u64),
        json!(true),
    ] {
        assert!(
            matches!(
                parse_json(with(ev(), "capacity", bad.clone())),
                Err(ContentError::BadCapacity { .. })
            ),
            "{bad}"
        );
    }
    for bad in [json!(1.5), json!("2"), json!(4_294_967_296u64)] {
        assert!(
            matches!(
                parse_json(with(rsvp_json(), "guests", bad.clone())),
                Err(ContentError::BadGuests { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        parse_json(with(rsvp_json(), "status", json!("Going"))),
        Err(ContentError::BadStatus("Going".into()))
    );
    assert_eq!(
        parse_json(with(rsvp_json(), "status", json!(1))),
        Err(ContentError::WrongType {
            field: "status",
            expected: "a string"
        })
    );
    assert_eq!(
        parse_json(json!({"type": "rsvp", "status": "going"})),
        Err(ContentError::MissingField("event"))
    );
    assert!(matches!(
        parse_json(json!({"type": "contact", "contact": "%abc.blake3"})),
        Err(ContentError::BadId {
            field: "contact",
            ..
        })
    ));
    assert_eq!(
        parse_json(
            json!({"type": "contact", "contact": feed_id().to_string(), "following": "yes"})
        ),
        Err(ContentError::WrongType {
            field: "following",
            expected: "true or false"
        })
    );
    assert_eq!(
        parse_json(with(update_json(), "start", json!(null))),
        Err(ContentError::CannotClear("start"))
    );
    assert_eq!(
        parse_json(json!({"type": "event-update", "title": "x"})),
        Err(ContentError::MissingField("event"))
    );
    assert_eq!(
        parse_json(with(update_json(), "capacity", json!(0))),
        Err(ContentError::BadCapacity { value: "0".into() })
    );
    let mut inverted = with(update_json(), "start", json!(END));
    inverted["end"] = json!(START);
    assert_eq!(parse_json(inverted), Err(ContentError::EndBeforeStart));
}

#[test]
fn limits_are_inclusive() {
    use serde_json::json;
    let ev = event_json;
    // 200 four-byte characters: counted as characters, not bytes.
    parse_json(with(ev(), "title", json!("🍲".repeat(200)))).unwrap();
    parse_json(with(ev(), "description", json!("x".repeat(8192)))).unwrap();
    parse_json(with(ev(), "location", json!("🍲".repeat(500)))).unwrap();
    parse_json(with(ev(), "url", json!("x".repeat(2000)))).unwrap();
    parse_json(with(ev(), "capacity", json!(u32::MAX))).unwrap();
    parse_json(with(ev(), "capacity", json!(1))).unwrap();
    parse_json(with(ev(), "end", json!(START))).unwrap();
    parse_json(with(rsvp_json(), "guests", json!(20))).unwrap();
    parse_json(with(rsvp_json(), "note", json!("🍲".repeat(500)))).unwrap();
    parse_json(json!({"type": "about", "name": "🍲".repeat(100), "description": "d".repeat(1000)}))
        .unwrap();
    parse_json(
        json!({"type": "event-cancel", "event": event_id().to_string(), "reason": "r".repeat(500)}),
    )
    .unwrap();
}

#[test]
fn event_bytes_are_exact_and_round_trip() {
    let event = full_event();
    event.validate().unwrap();
    let bytes = event.to_content_bytes();
    let expected = concat!(
        r#"{"type":"event","title":"Winter potluck","start":"2027-01-30T16:00:00-05:00","#,
        r#""end":"2027-01-30T19:00:00-05:00","tz":"America/New_York","#,
        r#""location":"Community hall, 12 Elm St","url":"https://example.org/potluck","#,
        r#""description":"Bring a dish.\nVegetarian welcome \"of course\".","capacity":40}"#
    );
    assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
    assert_eq!(parse(&bytes), Ok(Content::Event(event.clone())));
    assert_eq!(Content::Event(event).to_json_bytes(), Some(bytes));
}

#[test]
fn absent_fields_are_omitted() {
    let event = minimal_event();
    let bytes = event.to_content_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"type":"event","title":"Soup","start":"2027-01-30T16:00:00-05:00"}"#
    );
    assert_eq!(parse(&bytes), Ok(Content::Event(event)));
}

#[test]
fn every_type_round_trips() {
    let mut update = EventUpdate::new(event_id());
    update.title = Some("New title".into());
    update.end = Change::Clear;
    update.capacity = Change::Set(12);
    update.tz = Change::Set("Europe/Paris".into());
    let all = [
        Content::Event(full_event()),
        Content::Event(minimal_event()),
        Content::EventUpdate(update),
        Content::EventCancel(EventCancel {
            event: event_id(),
            reason: Some("Snow storm".into()),
        }),
        Content::EventCancel(EventCancel {
            event: event_id(),
            reason: None,
        }),
        Content::Rsvp(Rsvp {
            event: event_id(),
            status: RsvpStatus::NotGoing,
            guests: 0,
            note: Some("Next time!".into()),
            revision: None,
        }),
        Content::Rsvp(Rsvp {
            event: event_id(),
            status: RsvpStatus::Going,
            guests: 3,
            note: None,
            revision: None,
        }),
        Content::About(About {
            name: "Ana".into(),
            description: Some("Makes soup.".into()),
        }),
        Content::About(About {
            name: "Bo".into(),
            description: None,
        }),
        Content::Contact(Contact {
            contact: feed_id(),
            following: true,
            blocking: false,
        }),
    ];
    for content in all {
        content.validate().unwrap();
        let bytes = content.to_json_bytes().unwrap();
        assert!(bytes.starts_with(format!(r#"{{"type":"{}","#, content.kind()).as_bytes()));
        assert_eq!(
            parse(&bytes),
            Ok(content.clone()),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        // The generic check agrees on the type.
        assert_eq!(
            crate::feed::validate::content_type(&bytes).unwrap(),
            content.kind()
        );
    }
}

#[test]
fn exact_bytes_of_the_small_types() {
    let id = event_id().to_string();
    let rsvp = Rsvp {
        event: event_id(),
        status: RsvpStatus::Maybe,
        guests: 0,
        note: None,
        revision: None,
    };
    assert_eq!(
        String::from_utf8(rsvp.to_content_bytes()).unwrap(),
        format!(r#"{{"type":"rsvp","event":"{id}","status":"maybe","guests":0}}"#)
    );
    let cancel = EventCancel {
        event: event_id(),
        reason: None,
    };
    assert_eq!(
        String::from_utf8(cancel.to_content_bytes()).unwrap(),
        format!(r#"{{"type":"event-cancel","event":"{id}"}}"#)
    );
    let contact = Contact {
        contact: feed_id(),
        following: false,
        blocking: true,
    };
    assert_eq!(
        String::from_utf8(contact.to_content_bytes()).unwrap(),
        format!(
            r#"{{"type":"contact","contact":"{}","following":false,"blocking":true}}"#,
            feed_id()
        )
    );
    let mut update = EventUpdate::new(event_id());
    update.start = Some(time("2027-02-06T16:00:00-05:00"));
    update.location = Change::Clear;
    assert_eq!(
        String::from_utf8(update.to_content_bytes()).unwrap(),
        format!(
            r#"{{"type":"event-update","event":"{id}","start":"2027-02-06T16:00:00-05:00","location":null}}"#
        )
    );
}

#[test]
fn defaults_unknown_fields_and_nulls() {
    let id = event_id().to_string();
    // guests defaults to 0; unknown fields are ignored.
    let rsvp = parse_str(&format!(
        r#"{{"future":{{"nested":[1,2]}},"status":"going","type":"rsvp","event":"{id}"}}"#
    ))
    .unwrap();
    assert_eq!(
        rsvp,
        Content::Rsvp(Rsvp {
            event: event_id(),
            status: RsvpStatus::Going,
            guests: 0,
            note: None,
            revision: None,
        })
    );
    // Both booleans default to false.
    let contact = parse_str(&format!(
        r#"{{"type":"contact","contact":"{}"}}"#,
        feed_id()
    ))
    .unwrap();
    assert_eq!(
        contact,
        Content::Contact(Contact {
            contact: feed_id(),
            following: false,
            blocking: false,
        })
    );
    // Outside event-update, null is the same as absent.
    let event = parse_str(&format!(
        r#"{{ "type" : "event", "title":"Soup", "start":"{START}", "end":null, "tz":null,
              "location":null, "url":null, "description":null, "capacity":null, "x":null }}"#
    ))
    .unwrap();
    assert_eq!(event, Content::Event(minimal_event()));
    let rsvp = parse_str(&format!(
        r#"{{"type":"rsvp","event":"{id}","status":"maybe","guests":null,"note":null}}"#
    ))
    .unwrap();
    assert!(matches!(
        rsvp,
        Content::Rsvp(Rsvp {
            guests: 0,
            note: None,
            ..
        })
    ));
}

#[test]
fn unknown_type_is_valid_but_opaque() {
    let c = parse_str(r#"{"type":"poll","question":"Soup or salad?","options":[1,{"a":null}]}"#)
        .unwrap();
    assert_eq!(
        c,
        Content::Unknown {
            kind: "poll".into()
        }
    );
    assert_eq!(c.kind(), "poll");
    assert_eq!(c.to_json_bytes(), None);
    assert_eq!(c.validate(), Ok(()));
    // Fields that would be invalid on a known type do not matter.
    assert!(matches!(
        parse_str(r#"{"type":"Event","title":5}"#),
        Ok(Content::Unknown { .. })
    ));
    assert!(matches!(
        parse_str(r#"{"type":""}"#),
        Ok(Content::Unknown { .. })
    ));
}

#[test]
fn update_merges_sets_and_clears() {
    let original = full_event();
    let update = match parse_str(&format!(
        r#"{{"type":"event-update","event":"{}","title":"Spring potluck","location":null,"capacity":null,"url":"https://example.org/spring","unknown":1}}"#,
        event_id()
    ))
    .unwrap()
    {
        Content::EventUpdate(u) => u,
        other => panic!("{other:?}"),
    };
    assert_eq!(update.event, event_id());
    assert_eq!(update.title.as_deref(), Some("Spring potluck"));
    assert_eq!(update.start, None);
    assert_eq!(update.end, Change::Keep);
    assert_eq!(update.location, Change::Clear);
    assert_eq!(update.capacity, Change::Clear);
    assert_eq!(update.url, Change::Set("https://example.org/spring".into()));

    let merged = original.apply(&update).unwrap();
    assert_eq!(
        merged,
        Event {
            title: "Spring potluck".into(),
            location: None,
            capacity: None,
            url: Some("https://example.org/spring".into()),
            ..full_event()
        }
    );
    // The merged event is itself valid, publishable content.
    merged.validate().unwrap();

    // Clearing every optional field leaves the minimal event.
    let mut clear_all = EventUpdate::new(event_id());
    clear_all.title = Some("Soup".into());
    clear_all.end = Change::Clear;
    clear_all.tz = Change::Clear;
    clear_all.location = Change::Clear;
    clear_all.url = Change::Clear;
    clear_all.description = Change::Clear;
    clear_all.capacity = Change::Clear;
    assert_eq!(original.apply(&clear_all).unwrap(), minimal_event());

    // Setting fields on an event that lacks them.
    let mut set = EventUpdate::new(event_id());
    set.end = Change::Set(time(END));
    set.tz = Change::Set("America/New_York".into());
    set.capacity = Change::Set(5);
    let grown = minimal_event().apply(&set).unwrap();
    assert_eq!(grown.end_ms(), Some(time(END).as_millisecond()));
    assert_eq!(grown.tz.as_deref(), Some("America/New_York"));
    assert_eq!(grown.capacity, Some(5));
}

#[test]
fn merged_event_is_revalidated() {
    // Moving the start past the unchanged end.
    let mut later = EventUpdate::new(event_id());
    later.start = Some(time("2027-01-30T20:00:00-05:00"));
    later.validate().unwrap();
    assert_eq!(
        full_event().apply(&later),
        Err(ContentError::EndBeforeStart)
    );
    // Moving both is fine.
    later.end = Change::Set(time("2027-01-30T23:00:00-05:00"));
    let moved = full_event().apply(&later).unwrap();
    assert_eq!(moved.start.as_str(), "2027-01-30T20:00:00-05:00");
    // Clearing the end makes any start acceptable.
    let mut no_end = EventUpdate::new(event_id());
    no_end.start = Some(time("2027-03-01T10:00:00Z"));
    no_end.end = Change::Clear;
    assert_eq!(full_event().apply(&no_end).unwrap().end, None);
    // A bad value built in code is caught by apply too.
    let mut bad = EventUpdate::new(event_id());
    bad.title = Some(String::new());
    assert_eq!(full_event().apply(&bad), Err(ContentError::EmptyTitle));
    assert_eq!(bad.validate(), Err(ContentError::EmptyTitle));
    assert_eq!(
        EventUpdate::new(event_id()).validate(),
        Err(ContentError::EmptyUpdate)
    );
}

#[test]
fn validate_catches_oversize_content() {
    let event = Event {
        title: "🍲".repeat(200),
        location: Some("🍲".repeat(500)),
        url: Some("🍲".repeat(2000)),
        description: Some("x".repeat(8192)),
        ..minimal_event()
    };
    let len = event.to_content_bytes().len();
    assert!(len > MAX_CONTENT_LEN);
    assert_eq!(event.validate(), Err(ContentError::TooLarge { len }));
    assert_eq!(
        Event {
            capacity: Some(0),
            ..minimal_event()
        }
        .validate(),
        Err(ContentError::BadCapacity { value: "0".into() })
    );
    assert_eq!(
        Rsvp {
            event: event_id(),
            status: RsvpStatus::Going,
            guests: 21,
            note: None,
            revision: None,
        }
        .validate(),
        Err(ContentError::TooManyGuests(21))
    );
}

#[test]
fn times_keep_the_original_and_give_milliseconds() {
    let event = full_event();
    let utc: Timestamp = "2027-01-30T21:00:00Z".parse().unwrap();
    assert_eq!(event.start_ms(), utc.as_millisecond());
    assert_eq!(event.start_ms(), 1_801_342_800_000);
    assert_eq!(event.end_ms(), Some(1_801_353_600_000));
    assert_eq!(minimal_event().end_ms(), None);
    assert_eq!(event.start.as_str(), START);
    assert_eq!(event.start.to_string(), START);
    // Same instant written differently: original text is kept.
    let z = time("2027-01-30T21:00:00Z");
    assert_eq!(z.timestamp(), event.start.timestamp());
    assert_ne!(z, event.start);
}

#[test]
fn strict_rfc3339() {
    for good in [
        "2027-01-30T16:00:00-05:00",
        "2027-01-30T21:00:00Z",
        "2027-01-30t21:00:00z",
        "2027-01-30T21:00:00.123456789+05:30",
        "2027-01-30T16:00:00-00:00",
        "2027-01-30T16:00:00+23:59",
        "2016-12-31T23:59:60Z",
        "1969-07-20T20:17:00Z",
    ] {
        parse_time("start", good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "",
        "2027-01-30",
        "2027-01-30T16:00:00",
        "2027-01-30T16:00-05:00",
        "2027-01-30 16:00:00-05:00",
        "2027-01-30T16:00:00-0500",
        "2027-01-30T16:00:00-05",
        "2027-01-30T16:00:00+24:00",
        "2027-01-30T16:00:00+05:60",
        "2027-01-30T16:00:00.Z",
        "2027-01-30T16:00:00.1234567891Z",
        "2027-01-30T16:00:00-05:00[America/New_York]",
        "2027-01-30T16:00:00Z ",
        " 2027-01-30T16:00:00Z",
        "2027-02-29T16:00:00Z",
        "2027-01-30T24:00:00Z",
        "+2027-01-30T16:00:00Z",
        "２０２７-01-30T16:00:00Z",
        "1800000000",
    ] {
        assert_eq!(
            parse_time("end", bad),
            Err(ContentError::BadTime {
                field: "end",
                value: bad.into()
            }),
            "{bad:?}"
        );
    }
}

#[test]
fn display_across_daylight_saving() {
    let ny = Some("America/New_York");
    assert_eq!(
        display_time("2027-01-30T21:00:00Z", ny),
        "2027-01-30T16:00:00-05:00[America/New_York]"
    );
    assert_eq!(
        display_time("2027-07-30T21:00:00Z", ny),
        "2027-07-30T17:00:00-04:00[America/New_York]"
    );
    // The same wall-clock time written with an offset shows as written.
    assert_eq!(
        display_time("2027-01-30T16:00:00-05:00", ny),
        "2027-01-30T16:00:00-05:00[America/New_York]"
    );
    assert_eq!(
        display_time("2027-07-30T16:00:00-04:00", ny),
        "2027-07-30T16:00:00-04:00[America/New_York]"
    );
    // Southern hemisphere: summer time in January.
    assert_eq!(
        display_time("2027-01-30T00:00:00Z", Some("Australia/Sydney")),
        "2027-01-30T11:00:00+11:00[Australia/Sydney]"
    );
    // No tz: the author's original string, unchanged.
    assert_eq!(
        display_time("2027-01-30t21:00:00z", None),
        "2027-01-30t21:00:00z"
    );
    let event = full_event();
    assert_eq!(
        event.display_start(),
        "2027-01-30T16:00:00-05:00[America/New_York]"
    );
    assert_eq!(
        event.display_end().as_deref(),
        Some("2027-01-30T19:00:00-05:00[America/New_York]")
    );
    assert_eq!(minimal_event().display_start(), START);
    assert_eq!(minimal_event().display_end(), None);
}

#[test]
fn display_falls_back_to_the_original() {
    for (original, tz) in [
        ("garbage", Some("America/New_York")),
        ("", Some("UTC")),
        ("2027-01-30T21:00:00Z", Some("Nowhere/Special")),
        ("2027-01-30T21:00:00Z", Some("")),
        ("2027-01-30T21:00:00Z", Some("america/new_york")),
        ("2027-01-30T21:00:00Z", Some("../../etc/passwd")),
        ("9999-12-31T23:59:59-23:59", Some("Pacific/Kiritimati")),
    ] {
        let shown = display_time(original, tz);
        if original == "9999-12-31T23:59:59-23:59" {
            // Out of range for display in that zone, or shown: never a panic.
            assert!(!shown.is_empty());
        } else {
            assert_eq!(shown, original, "{original:?} {tz:?}");
        }
    }
}

#[test]
fn time_zones_must_be_spelled_exactly() {
    validate_tz("America/New_York").unwrap();
    validate_tz("Europe/Paris").unwrap();
    validate_tz("UTC").unwrap();
    for bad in [
        "",
        "america/new_york",
        "EST5EDT,M3.2.0,M11.1.0",
        "+05:00",
        "Mars/Base",
    ] {
        assert_eq!(
            validate_tz(bad),
            Err(ContentError::UnknownTimeZone(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn rsvp_status_words() {
    for (status, word) in [
        (RsvpStatus::Going, "going"),
        (RsvpStatus::Maybe, "maybe"),
        (RsvpStatus::NotGoing, "not-going"),
    ] {
        assert_eq!(status.as_str(), word);
        assert_eq!(status.to_string(), word);
        assert_eq!(word.parse::<RsvpStatus>(), Ok(status));
        assert_eq!(
            serde_json::to_string(&status).unwrap(),
            format!("\"{word}\"")
        );
        assert_eq!(
            serde_json::from_str::<RsvpStatus>(&format!("\"{word}\"")).unwrap(),
            status
        );
    }
    assert_eq!(
        "not_going".parse::<RsvpStatus>(),
        Err(ContentError::BadStatus("not_going".into()))
    );
}

#[test]
fn the_public_page_marks_are_optional_flags_that_updates_change() {
    use serde_json::json;
    let ev = event_json;
    // Absent is false, and old content stays valid.
    assert_eq!(
        parse_json(event_json()),
        Ok(Content::Event(minimal_event()))
    );
    let marked = Event {
        unlisted: true,
        public: true,
        ..full_event()
    };
    marked.validate().unwrap();
    let bytes = marked.to_content_bytes();
    // Written last, only when set, like every optional field.
    assert!(
        String::from_utf8(bytes.clone())
            .unwrap()
            .ends_with(r#""capacity":40,"unlisted":true,"public":true}"#)
    );
    assert_eq!(parse(&bytes), Ok(Content::Event(marked.clone())));
    assert_eq!(
        String::from_utf8(
            Event {
                unlisted: true,
                ..minimal_event()
            }
            .to_content_bytes()
        )
        .unwrap(),
        r#"{"type":"event","title":"Soup","start":"2027-01-30T16:00:00-05:00","unlisted":true}"#
    );
    // `false` and `null` read as absent.
    for value in [json!(false), json!(null)] {
        assert_eq!(
            parse_json(with(with(ev(), "unlisted", value.clone()), "public", value)),
            Ok(Content::Event(minimal_event()))
        );
    }
    for bad in [json!(1), json!("true"), json!([])] {
        for field in ["unlisted", "public"] {
            let err = parse_json(with(ev(), field, bad.clone())).unwrap_err();
            assert_eq!(
                err,
                ContentError::WrongType {
                    field,
                    expected: "true or false"
                },
                "{field}: {bad}"
            );
        }
    }

    // An update sets, unsets or clears (false) each, or keeps it.
    let mut update = EventUpdate::new(event_id());
    update.unlisted = Change::Set(true);
    update.public = Change::Clear;
    update.validate().unwrap();
    let bytes = update.to_content_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        format!(
            r#"{{"type":"event-update","event":"{}","unlisted":true,"public":null}}"#,
            event_id()
        )
    );
    assert_eq!(parse(&bytes), Ok(Content::EventUpdate(update.clone())));
    let changed = Event {
        public: true,
        ..full_event()
    }
    .apply(&update)
    .unwrap();
    assert!(changed.unlisted && !changed.public);
    let mut back = EventUpdate::new(event_id());
    back.unlisted = Change::Set(false);
    assert!(!back.is_empty());
    assert_eq!(changed.apply(&back).unwrap(), full_event());
    assert_eq!(
        String::from_utf8(back.to_content_bytes()).unwrap(),
        format!(
            r#"{{"type":"event-update","event":"{}","unlisted":false}}"#,
            event_id()
        )
    );
    // Kept when the update does not name them.
    let mut retitle = EventUpdate::new(event_id());
    retitle.title = Some("Renamed".into());
    assert!(marked.apply(&retitle).unwrap().unlisted);
}

#[test]
fn event_serde_for_storage() {
    let marked = Event {
        unlisted: true,
        public: true,
        ..minimal_event()
    };
    for event in [full_event(), minimal_event(), marked] {
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("null"), "{json}");
        // Off flags are left out, so states stored before they existed
        // read the same.
        assert_eq!(json.contains("unlisted"), event.unlisted, "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }
    assert!(serde_json::from_str::<Event>(r#"{"title":"x","start":"not a time"}"#).is_err());
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_known_shapes(
        kind in prop::sample::select(vec!["event", "event-update", "event-cancel", "rsvp", "about", "contact"]),
        key in prop::sample::select(vec!["title", "start", "end", "tz", "capacity", "guests", "status", "event", "contact", "following", "name", "note"]),
        value in prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,40}".prop_map(serde_json::Value::from),
        ],
    ) {
        let mut obj = serde_json::json!({"type": kind, "title": "t", "start": START,
            "event": event_id().to_string(), "status": "going", "name": "n",
            "contact": feed_id().to_string(), "end": END});
        obj[key] = value;
        if let Ok(content) = parse(obj.to_string().as_bytes())
            && let Some(bytes) = content.to_json_bytes()
        {
            prop_assert_eq!(parse(&bytes), Ok(content));
        }
    }

    #[test]
    fn display_never_panics(original in ".{0,40}", tz in proptest::option::of(".{0,30}")) {
        let _ = display_time(&original, tz.as_deref());
    }

    #[test]
    fn display_of_valid_times_names_the_zone(secs in -10_000_000_000i64..10_000_000_000) {
        let t = Timestamp::from_second(secs).unwrap().to_string();
        let shown = display_time(&t, Some("America/New_York"));
        prop_assert!(shown.ends_with("[America/New_York]"), "{}", shown);
    }
}

#[test]
fn closed_to_web_is_an_optional_flag_that_updates_change() {
    let closed = Event {
        unlisted: true,
        closed_to_web: true,
        ..minimal_event()
    };
    let bytes = closed.to_content_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"type":"event","title":"Soup","start":"2027-01-30T16:00:00-05:00","unlisted":true,"closed_to_web":true}"#
    );
    assert_eq!(parse(&bytes), Ok(Content::Event(closed.clone())));
    let err = parse_json(with(event_json(), "closed_to_web", serde_json::json!(1))).unwrap_err();
    assert_eq!(
        err,
        ContentError::WrongType {
            field: "closed_to_web",
            expected: "true or false"
        }
    );
    let mut open = EventUpdate::new(event_id());
    open.closed_to_web = Change::Set(false);
    assert!(!open.is_empty());
    let bytes = open.to_content_bytes();
    assert_eq!(parse(&bytes), Ok(Content::EventUpdate(open.clone())));
    let opened = closed.apply(&open).unwrap();
    assert!(!opened.closed_to_web && opened.unlisted);
}

// ---------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------

fn comment_id(n: u8) -> MessageId {
    MessageId([n; 32])
}

fn comment_json(text: &str) -> serde_json::Value {
    serde_json::json!({"type": "comment", "event": event_id().to_string(), "text": text})
}

#[test]
fn a_comment_round_trips_with_its_reply_and_seen() {
    let comment = Comment {
        event: event_id(),
        reply: Some(comment_id(1)),
        seen: vec![comment_id(1), comment_id(2)],
        text: "I'll bring <b>bread</b> & soup".into(),
    };
    comment.validate().unwrap();
    let bytes = comment.to_content_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"type":"comment","event":"%Bw"#),
        "{text}"
    );
    assert!(text.contains(r#""seen":["%AQ"#), "{text}");
    assert!(
        text.ends_with(r#""text":"I'll bring <b>bread</b> & soup"}"#),
        "{text}"
    );
    assert_eq!(parse(&bytes).unwrap(), Content::Comment(comment));
    // The smallest: no reply, nothing seen (absent or null).
    let smallest = parse_json(comment_json("hi")).unwrap();
    let Content::Comment(c) = smallest else {
        panic!("a comment")
    };
    assert_eq!((c.reply, c.seen.len()), (None, 0));
    assert!(parse_json(with(comment_json("hi"), "seen", serde_json::Value::Null)).is_ok());
}

#[test]
fn comment_text_is_required_not_empty_and_bounded() {
    assert_eq!(
        parse_json(comment_json(" \n\t")),
        Err(ContentError::EmptyCommentText)
    );
    let mut missing = comment_json("x");
    missing.as_object_mut().unwrap().remove("text");
    assert_eq!(parse_json(missing), Err(ContentError::MissingField("text")));
    let longest = "é".repeat(MAX_COMMENT_TEXT_BYTES / 2);
    assert!(parse_json(comment_json(&longest)).is_ok());
    assert_eq!(
        parse_json(comment_json(&format!("{longest}x"))),
        Err(ContentError::CommentTextTooLong {
            bytes: MAX_COMMENT_TEXT_BYTES + 1
        })
    );
}

#[test]
fn a_comment_at_the_content_limit_is_valid_and_one_byte_more_is_not() {
    // Control characters are written as \u00XX: 6 bytes for each 1 of text.
    let fill = |n: usize| Comment {
        event: event_id(),
        reply: None,
        seen: Vec::new(),
        text: format!("a{}", "\u{1}".repeat(n)),
    };
    let base = fill(0).to_content_bytes().len();
    let controls = (MAX_CONTENT_LEN - base) / 6;
    let pad = MAX_CONTENT_LEN - base - controls * 6;
    let mut at_limit = fill(controls);
    at_limit.text.push_str(&"b".repeat(pad));
    assert_eq!(at_limit.to_content_bytes().len(), MAX_CONTENT_LEN);
    at_limit.validate().unwrap();
    assert!(parse(&at_limit.to_content_bytes()).is_ok());
    at_limit.text.push('c');
    assert_eq!(
        at_limit.validate(),
        Err(ContentError::TooLarge {
            len: MAX_CONTENT_LEN + 1
        })
    );
}

#[test]
fn seen_is_a_bounded_list_of_message_ids() {
    let ids: Vec<String> = (0..=MAX_SEEN as u8)
        .map(|n| comment_id(n).to_string())
        .collect();
    let at_most = with(
        comment_json("x"),
        "seen",
        serde_json::json!(ids[..MAX_SEEN]),
    );
    assert!(parse_json(at_most).is_ok());
    assert_eq!(
        parse_json(with(comment_json("x"), "seen", serde_json::json!(ids))),
        Err(ContentError::TooManySeen(MAX_SEEN + 1))
    );
    assert!(matches!(
        parse_json(with(
            comment_json("x"),
            "seen",
            serde_json::json!(["%nope"])
        )),
        Err(ContentError::BadId { field: "seen", .. })
    ));
    assert!(matches!(
        parse_json(with(comment_json("x"), "seen", serde_json::json!("%x"))),
        Err(ContentError::WrongType { field: "seen", .. })
    ));
}

#[test]
fn edits_deletes_and_hides_round_trip() {
    let edit = CommentEdit {
        comment: comment_id(3),
        text: "fixed typo".into(),
    };
    let delete = CommentDelete {
        comment: comment_id(3),
    };
    let hide = CommentHide {
        event: event_id(),
        comment: comment_id(3),
        hidden: true,
    };
    assert_eq!(
        parse(&edit.to_content_bytes()).unwrap(),
        Content::CommentEdit(edit.clone())
    );
    assert_eq!(
        parse(&delete.to_content_bytes()).unwrap(),
        Content::CommentDelete(delete)
    );
    let hide_bytes = hide.to_content_bytes();
    assert!(
        String::from_utf8(hide_bytes.clone())
            .unwrap()
            .ends_with(r#""hidden":true}"#)
    );
    assert_eq!(parse(&hide_bytes).unwrap(), Content::CommentHide(hide));
    let empty_edit = CommentEdit {
        text: " ".into(),
        ..edit
    };
    assert_eq!(empty_edit.validate(), Err(ContentError::EmptyCommentText));
    let no_hidden = serde_json::json!({"type": "comment-hide", "event": event_id().to_string(), "comment": comment_id(3).to_string()});
    assert_eq!(
        parse_json(no_hidden),
        Err(ContentError::MissingField("hidden"))
    );
}

#[test]
fn the_comment_policy_is_an_event_field_that_updates_change() {
    let closed = Event {
        comments: CommentPolicy::Answered,
        ..minimal_event()
    };
    let bytes = closed.to_content_bytes();
    assert!(
        String::from_utf8(bytes.clone())
            .unwrap()
            .ends_with(r#","comments":"answered"}"#)
    );
    assert_eq!(parse(&bytes).unwrap(), Content::Event(closed.clone()));
    // The default is not written.
    assert!(
        !String::from_utf8(minimal_event().to_content_bytes())
            .unwrap()
            .contains("comments")
    );
    assert!(matches!(
        parse_json(with(event_json(), "comments", serde_json::json!("friends"))),
        Err(ContentError::BadCommentPolicy(_))
    ));
    let mut update = EventUpdate::new(event_id());
    update.comments = Change::Set(CommentPolicy::Nobody);
    assert_eq!(
        closed.apply(&update).unwrap().comments,
        CommentPolicy::Nobody
    );
    update.comments = Change::Clear;
    assert_eq!(
        closed.apply(&update).unwrap().comments,
        CommentPolicy::Everyone
    );
    assert!(
        String::from_utf8(update.to_content_bytes())
            .unwrap()
            .ends_with(r#""comments":null}"#)
    );
}
