//! Answers from a browser, on the endpoint's side (issue 21): a hub's
//! public pages take a guest's signed `about` and `rsvp` at `POST
//! /e/{id}/answer` through the one ingest path, and refuse, with a
//! distinct JSON code and nothing stored, a forged signature, a replayed
//! message, a wrong sequence, a fork, an answer to another event,
//! malformed input and a body over the bound; new browser identities are
//! bounded per address. The messages are signed here, as `feed.js` signs
//! them (tests/browser_sign.rs checks that the two agree byte for byte).
//!
//! Every server listens on 127.0.0.1; every wait is bounded.

mod common;

use std::path::PathBuf;

use common::guest::{Guest, answer_body};
use common::http::{Answer, first_load, page_addr, request, request_with};
use common::public::{
    announce, event_paths, hub_with_public_pages, organizer_with_event, sync_with_hub,
};
use common::sandbox::{Sandbox, Server};
use potluck::content::RsvpStatus;
use potluck::feed::message::{Message, MessageId};
use serde_json::{Value, json};

/// A hub with public pages (`web_answers` set by `answers`), and Ana, a
/// member, whose event with capacity 1 the hub holds. Returns the hub,
/// Ana's home and the event id.
fn hub_with_event(sandbox: &Sandbox, answers: Value) -> (Server, PathBuf, String) {
    let (hub, code) = hub_with_public_pages(sandbox, answers);
    let (ana, event) = organizer_with_event(sandbox, &hub, &code);
    (hub, ana, event)
}

fn answer_path(event: &str) -> String {
    event_paths(event).1
}

/// Posts `msgs` to the event's answer endpoint.
fn post(hub: &Server, event: &str, msgs: &[&Message]) -> Answer {
    post_raw(hub, event, answer_body(msgs).as_bytes())
}

fn post_raw(hub: &Server, event: &str, body: &[u8]) -> Answer {
    let url = hub.public.as_deref().expect("public pages");
    request_with(
        page_addr(url),
        "POST",
        "events.example.org",
        &answer_path(event),
        Some(("application/json", body)),
    )
}

/// `GET path` on the hub's public pages.
fn get(hub: &Server, path: &str) -> Answer {
    let url = hub.public.as_deref().expect("public pages");
    request(page_addr(url), "GET", "events.example.org", path)
}

/// The guest's status as the page's script reads it.
fn status(hub: &Server, event: &str, guest: &Guest) -> Value {
    let feed: String = form_urlencoded::byte_serialize(guest.feed().as_bytes()).collect();
    let answer = get(hub, &format!("{}?feed={feed}", answer_path(event)));
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str(&answer.body).expect("JSON")
}

/// The refusal's status and code.
fn refused(answer: &Answer) -> (u16, String) {
    let body: Value =
        serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"));
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{answer:?}"
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{answer:?}"
    );
    (answer.status, code)
}

#[test]
fn an_answer_is_stored_whole_and_refusals_store_nothing() {
    let sandbox = Sandbox::new();
    let (hub, ana, event) = hub_with_event(&sandbox, json!({}));
    let mut guest = Guest::new(7);

    // The page: reading needs no script; the form stays hidden until the
    // hub's own scripts find a browser that can sign, and a note says
    // what is needed in its place.
    let page = get(&hub, &event_paths(&event).0);
    assert_eq!(page.status, 200, "{page:?}");
    for part in [
        r#"<form id="answer-form" hidden>"#,
        r#"id="answer-note""#,
        "What becomes public: your answer, the name you give and the number of guests",
        r#"<script src="/static/feed.js" defer></script>"#,
        r#"<script src="/static/answer.js" defer></script>"#,
    ] {
        assert!(page.body.contains(part), "{part}: {}", page.body);
    }
    for script in ["/static/feed.js", "/static/answer.js"] {
        let js = get(&hub, script);
        assert_eq!(js.status, 200, "{script}");
        assert!(
            js.header("content-type")
                .is_some_and(|t| t.starts_with("text/javascript")),
            "{script}: {}",
            js.head
        );
    }

    // A name and an answer: stored, and the hub says so.
    let name = guest.about("Guest One");
    let going = guest.rsvp(&event, RsvpStatus::Going);
    let ok = post(&hub, &event, &[&name, &going]);
    assert_eq!(ok.status, 200, "{ok:?}");
    let ok: Value = serde_json::from_str(&ok.body).expect("JSON");
    assert_eq!(ok["held"], 2);
    assert_eq!(ok["name"], "Guest One");
    assert_eq!(ok["answer"]["status"], "going");

    // The same message again: replayed.
    assert_eq!(
        refused(&post(&hub, &event, &[&going])),
        (409, "replayed".into())
    );

    // A message that skips a sequence: wrong sequence.
    let mut ahead = Guest {
        key: guest.key.clone(),
        head: guest.head.clone(),
    };
    ahead.about("Skipped");
    let skipping = ahead.rsvp(&event, RsvpStatus::Maybe);
    assert_eq!(
        refused(&post(&hub, &event, &[&skipping])),
        (409, "wrong_sequence".into())
    );

    // Another message 2 of the same key: a fork, refused.
    let mut other = Guest {
        key: guest.key.clone(),
        head: Some(name.clone()),
    };
    let rival = other.rsvp(&event, RsvpStatus::Maybe);
    assert_eq!(
        refused(&post(&hub, &event, &[&rival])),
        (409, "fork".into())
    );

    // A valid name then a forged answer: the whole submission is refused,
    // the valid name included.
    let mut next = Guest {
        key: guest.key.clone(),
        head: guest.head.clone(),
    };
    let renamed = next.about("Guest Renamed");
    let forged = next.rsvp(&event, RsvpStatus::NotGoing);
    let mut bytes = forged.bytes().to_vec();
    bytes[117] ^= 1; // The signature's first byte (after the 117-byte header).
    let forged = Message::decode(bytes).expect("still framed");
    assert_eq!(
        refused(&post(&hub, &event, &[&renamed, &forged])),
        (400, "bad_signature".into())
    );

    // An answer to another event through this event's page.
    let elsewhere = announce(&sandbox, &ana, "Other", &[]);
    let mut other_event = Guest {
        key: guest.key.clone(),
        head: guest.head.clone(),
    };
    let wrong = other_event.rsvp(&elsewhere, RsvpStatus::Going);
    assert_eq!(
        refused(&post(&hub, &event, &[&wrong])),
        (400, "other_event".into())
    );

    // Malformed input, a body over the bound, no JSON type.
    assert_eq!(
        refused(&post_raw(&hub, &event, b"{\"messages\": 3}")),
        (400, "malformed".into())
    );
    assert_eq!(
        refused(&post_raw(&hub, &event, br#"{"messages": ["!!"]}"#)),
        (400, "malformed".into())
    );
    assert_eq!(
        refused(&post_raw(&hub, &event, br#"{"messages": ["AAAA"]}"#)),
        (400, "malformed".into())
    );
    assert_eq!(
        refused(&post_raw(&hub, &event, br#"{"messages": []}"#)),
        (400, "message_count".into())
    );
    let huge = format!(r#"{{"messages": ["{}"]}}"#, "A".repeat(70 * 1024));
    assert_eq!(
        refused(&post_raw(&hub, &event, huge.as_bytes())),
        (413, "too_large".into())
    );
    let url = hub.public.as_deref().expect("public pages");
    let form = request_with(
        page_addr(url),
        "POST",
        "events.example.org",
        &answer_path(&event),
        Some(("application/x-www-form-urlencoded", b"a=b")),
    );
    assert_eq!(refused(&form), (415, "malformed".into()));

    // After every refusal the hub holds what the first post stored, and
    // the guest's answer and name are unchanged.
    let now = status(&hub, &event, &guest);
    assert_eq!(now["held"], 2, "{now}");
    assert_eq!(now["name"], "Guest One");
    assert_eq!(now["answer"]["status"], "going");

    // The next message in sequence is taken.
    let not_going = guest.rsvp(&event, RsvpStatus::NotGoing);
    let ok = post(&hub, &event, &[&not_going]);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(
        status(&hub, &event, &guest)["answer"]["status"],
        "not-going"
    );

    // An unknown event's endpoint is a 404 like its page.
    let unknown = MessageId([9; 32]).to_string();
    let mut stray = Guest::new(8);
    let lost = stray.rsvp(&unknown, RsvpStatus::Going);
    assert_eq!(
        refused(&post(&hub, &unknown, &[&lost])),
        (404, "unknown_event".into())
    );
    let fresh = status(&hub, &event, &stray);
    assert_eq!(fresh["held"], 0, "{fresh}");
}

#[test]
fn new_browser_identities_are_bounded_per_address() {
    let sandbox = Sandbox::new();
    let (hub, _ana, event) = hub_with_event(&sandbox, json!({ "new_guests_per_ip_per_hour": 2 }));
    let mut guests: Vec<Guest> = (1..=3).map(Guest::new).collect();
    for guest in &mut guests[..2] {
        let going = guest.rsvp(&event, RsvpStatus::Maybe);
        let ok = post(&hub, &event, &[&going]);
        assert_eq!(ok.status, 200, "{ok:?}");
    }
    let third = guests[2].rsvp(&event, RsvpStatus::Maybe);
    assert_eq!(
        refused(&post(&hub, &event, &[&third])),
        (429, "rate_limited".into())
    );
    assert_eq!(status(&hub, &event, &guests[2])["held"], 0);
    // A guest the hub holds already is no new identity: it goes on.
    let again = guests[0].rsvp(&event, RsvpStatus::Going);
    let ok = post(&hub, &event, &[&again]);
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[test]
fn banned_blocked_and_closed_to_the_web_are_refused() {
    let sandbox = Sandbox::new();
    let (hub, ana, event) = hub_with_event(&sandbox, json!({}));
    let mut guest = Guest::new(5);

    // The hub's operator bans the feed (the hub's own block).
    sandbox.json(&hub.home, &["block", &guest.feed()]);
    let going = guest.rsvp(&event, RsvpStatus::Going);
    assert_eq!(
        refused(&post(&hub, &event, &[&going])),
        (403, "banned".into())
    );

    // The organizer blocks a feed: the hub holds Ana's block, and refuses
    // that feed's answers to her events.
    let mut blocked = Guest::new(4);
    sandbox.json(&ana, &["block", &blocked.feed()]);
    sync_with_hub(&sandbox, &ana, &hub);
    let going = blocked.rsvp(&event, RsvpStatus::Going);
    assert_eq!(
        refused(&post(&hub, &event, &[&going])),
        (403, "blocked".into())
    );

    // The organizer closes the event to answers from browsers.
    sandbox.json(&ana, &["update", &event, "--closed-to-web"]);
    sync_with_hub(&sandbox, &ana, &hub);
    let mut other = Guest::new(6);
    let going = other.rsvp(&event, RsvpStatus::Going);
    assert_eq!(
        refused(&post(&hub, &event, &[&going])),
        (403, "closed".into())
    );
    // And its page shows no form.
    let page = get(&hub, &event_paths(&event).0);
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("answer-form"), "{}", page.body);
    assert!(page.body.contains("takes no answers"), "{}", page.body);
}

/// Issue 21's budget: the first load of an event's public page with its
/// answer form, scripts included, is at most 100 KB as served to a
/// browser, which the hub gzips; measured uncompressed too, as a proxy
/// that strips the encoding would serve it. benches/public_web.rs prints
/// the same sizes for an event with 1,233 answers.
#[test]
fn the_first_load_of_an_event_page_is_at_most_100_kb() {
    let sandbox = Sandbox::new();
    let (hub, _ana, event) = hub_with_event(&sandbox, json!({}));
    let url = hub.public.as_deref().expect("public pages");
    let files = first_load(page_addr(url), "events.example.org", &event_paths(&event).0);
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for needed in [
        "/static/style.css",
        "/static/icon.svg",
        "/static/feed.js",
        "/static/answer.js",
    ] {
        assert!(paths.contains(&needed), "{needed} not loaded: {paths:?}");
    }
    assert!(
        files.iter().all(|f| f.body_bytes > 0),
        "an empty file: {files:#?}"
    );
    // Every text file of some size comes gzipped (the icon too: SVG is
    // text).
    for f in &files {
        assert_eq!(f.encoding.as_deref(), Some("gzip"), "{}", f.path);
    }
    let total: usize = files.iter().map(|f| f.head_bytes + f.body_bytes).sum();
    assert!(
        total <= 100_000,
        "the first load is {total} B, over 100 KB: {files:#?}"
    );
    let plain: usize = files.iter().map(|f| f.head_bytes + f.body.len()).sum();
    assert!(
        plain <= 100_000,
        "the first load is {plain} B uncompressed, over 100 KB: {files:#?}"
    );
    assert!(
        total < plain,
        "gzip made it no smaller: {total} B of {plain} B"
    );
}

/// Submissions of different guests are taken side by side, and two
/// different messages 1 of one guest posted at the same moment never
/// both get in: one is taken, the other refused as a fork, and the hub
/// holds one feed with no fork.
#[test]
fn answers_at_the_same_moment_are_all_taken_and_never_fork() {
    let sandbox = Sandbox::new();
    let (hub, _ana, event) = hub_with_event(
        &sandbox,
        json!({ "new_guests_per_ip_per_hour": 1000, "new_guests_per_hour": 1000 }),
    );
    // Sixteen guests at once.
    let mut guests: Vec<Guest> = (20..36).map(Guest::new).collect();
    let bodies: Vec<String> = guests
        .iter_mut()
        .map(|g| {
            let name = g.about("Someone");
            let going = g.rsvp(&event, RsvpStatus::Going);
            answer_body(&[&name, &going])
        })
        .collect();
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let posts: Vec<_> = bodies
            .iter()
            .map(|body| s.spawn(|| post_raw(&hub, &event, body.as_bytes())))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    for guest in &guests {
        assert_eq!(status(&hub, &event, guest)["held"], 2);
    }

    // One guest's two rival first messages, eight times over.
    for seed in 40..48 {
        let mut one = Guest::new(seed);
        let mut rival = Guest::new(seed);
        let a = answer_body(&[&one.rsvp(&event, RsvpStatus::Going)]);
        let b = answer_body(&[&rival.rsvp(&event, RsvpStatus::Maybe)]);
        let (first, second) = std::thread::scope(|s| {
            let first = s.spawn(|| post_raw(&hub, &event, a.as_bytes()));
            let second = s.spawn(|| post_raw(&hub, &event, b.as_bytes()));
            (first.join().unwrap(), second.join().unwrap())
        });
        let mut outcomes = [first.status, second.status];
        outcomes.sort_unstable();
        assert_eq!(outcomes, [200, 409], "{first:?} {second:?}");
        let (taken, other) = if first.status == 200 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        assert_eq!(refused(other), (409, "fork".into()));
        let taken: Value = serde_json::from_str(&taken.body).expect("JSON");
        let now = status(&hub, &event, &one);
        assert_eq!(now["held"], 1, "{now}");
        assert_eq!(now["answer"]["status"], taken["answer"]["status"], "{now}");
    }
}
