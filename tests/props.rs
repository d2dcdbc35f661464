//! Property tests of the feed format, the store and the indexes.

mod common;

use std::collections::BTreeMap;

use common::open_store;
use ed25519_dalek::SigningKey;
use potluck::content::KnownContent;
use potluck::feed::message::{Message, MessageId};
use potluck::feed::validate;
use proptest::prelude::*;

/// What one message of a generated feed says; event references are
/// resolved against events generated earlier (in any feed).
#[derive(Clone, Debug)]
enum Step {
    Event { title: String, start_day: u16 },
    Update { pick: usize, title: String },
    Cancel { pick: usize },
    Rsvp { pick: usize, status: u8, guests: u8 },
    About { name: String },
    Unknown,
    Invalid,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        ("[a-z ]{1,20}", 0u16..2000)
            .prop_map(|(title, start_day)| Step::Event { title, start_day }),
        (any::<usize>(), "[a-z]{1,10}").prop_map(|(pick, title)| Step::Update { pick, title }),
        any::<usize>().prop_map(|pick| Step::Cancel { pick }),
        (any::<usize>(), 0u8..3, 0u8..25).prop_map(|(pick, status, guests)| Step::Rsvp {
            pick,
            status,
            guests
        }),
        "[A-Za-z]{1,12}".prop_map(|name| Step::About { name }),
        Just(Step::Unknown),
        Just(Step::Invalid),
    ]
}

const STATUSES: [&str; 3] = ["going", "maybe", "not-going"];

fn content(step: &Step, events: &[MessageId]) -> Vec<u8> {
    let pick = |i: usize| {
        events
            .get(i % events.len().max(1))
            .copied()
            .unwrap_or_default()
    };
    let json = match step {
        Step::Event { title, start_day } => serde_json::json!({
            "type": "event",
            "title": format!("e {title}"),
            "start": jiff::Timestamp::from_second(1_893_456_000 + i64::from(*start_day) * 86_400)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }),
        Step::Update { pick: p, title } => {
            serde_json::json!({"type":"event-update","event": pick(*p),"title": title})
        }
        Step::Cancel { pick: p } => serde_json::json!({"type":"event-cancel","event": pick(*p)}),
        Step::Rsvp {
            pick: p,
            status,
            guests,
        } => serde_json::json!({
            "type": "rsvp",
            "event": pick(*p),
            "status": STATUSES[usize::from(*status)],
            "guests": guests,
        }),
        Step::About { name } => serde_json::json!({"type":"about","name": name}),
        Step::Unknown => serde_json::json!({"type":"poll","question":"soup?"}),
        // A known type with invalid fields: stored, not indexed.
        Step::Invalid => serde_json::json!({"type":"event","title":"","start":"soon"}),
    };
    serde_json::to_vec(&json).unwrap()
}

/// Signs feeds for `keys` from the generated steps. Feeds are built one
/// after another so RSVPs and updates can point at events of earlier
/// feeds (and of their own).
fn build_feeds(plan: &[Vec<Step>]) -> Vec<Vec<Message>> {
    let mut events = Vec::new();
    let mut feeds = Vec::new();
    for (n, steps) in plan.iter().enumerate() {
        let key = SigningKey::from_bytes(&[n as u8 + 1; 32]);
        let mut prev = MessageId::default();
        let mut feed = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let msg =
                Message::sign(&key, i as u64 + 1, prev, i as i64, &content(step, &events)).unwrap();
            if matches!(step, Step::Event { .. }) {
                events.push(msg.id());
            }
            prev = msg.id();
            feed.push(msg);
        }
        feeds.push(feed);
    }
    feeds
}

fn plan() -> impl Strategy<Value = Vec<Vec<Step>>> {
    prop::collection::vec(prop::collection::vec(step(), 1..12), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any valid feed round-trips through the store and passes fsck.
    #[test]
    fn feeds_round_trip_and_pass_fsck(plan in plan()) {
        let feeds = build_feeds(&plan);
        let (_dir, store) = open_store();
        for feed in &feeds {
            let report = store.ingest(feed.clone()).unwrap();
            prop_assert!(report.rejected.is_none(), "{:?}", report.rejected);
            prop_assert_eq!(report.accepted.len(), feed.len());
        }
        for feed in &feeds {
            let back: Vec<Message> = store
                .feed_messages(&feed[0].author(), 1)
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(&back, feed);
            for m in feed {
                let held = store.message(&m.id()).unwrap();
                prop_assert_eq!(held.as_ref(), Some(m));
            }
        }
        let fsck = store.fsck().unwrap();
        prop_assert!(fsck.problems.is_empty(), "{:?}", fsck.problems);
        prop_assert_eq!(fsck.messages, feeds.iter().map(|f| f.len() as u64).sum::<u64>());
    }

    /// Ingesting the feeds in any interleaving that keeps each feed's
    /// order, in any batch sizes, gives the same indexes as in-order.
    #[test]
    fn any_interleaving_gives_the_same_indexes(
        plan in plan(),
        choices in prop::collection::vec(any::<usize>(), 64),
        batch in 1usize..7,
    ) {
        let feeds = build_feeds(&plan);
        let (_a, in_order) = open_store();
        for feed in &feeds {
            in_order.ingest(feed.clone()).unwrap();
        }
        // Interleave: repeatedly take the next message of a chosen feed.
        let mut cursors = vec![0usize; feeds.len()];
        let mut order = Vec::new();
        let total: usize = feeds.iter().map(Vec::len).sum();
        let mut c = 0;
        while order.len() < total {
            let live: Vec<usize> =
                (0..feeds.len()).filter(|&f| cursors[f] < feeds[f].len()).collect();
            let f = live[choices[c % choices.len()] % live.len()];
            c += 1;
            order.push(feeds[f][cursors[f]].clone());
            cursors[f] += 1;
        }
        let (_b, shuffled) = open_store();
        for chunk in order.chunks(batch) {
            let report = shuffled.ingest(chunk.to_vec()).unwrap();
            prop_assert!(report.rejected.is_none());
        }
        let announced = plan.iter().flatten().filter(|s| matches!(s, Step::Event { .. })).count();
        prop_assert_eq!(in_order.all_events().unwrap().len(), announced);
        let a: BTreeMap<_, _> = in_order.index_snapshot().unwrap();
        let b: BTreeMap<_, _> = shuffled.index_snapshot().unwrap();
        prop_assert_eq!(a, b);
    }

    /// Flipping any single byte of an encoded message makes it fail
    /// decoding or validation.
    #[test]
    fn any_single_byte_flip_is_caught(
        title in "[a-z]{1,40}",
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let body = format!(r#"{{"type":"about","name":"{title}"}}"#);
        let msg = Message::sign(&key, 1, MessageId::default(), 42, body.as_bytes()).unwrap();
        let mut bytes = msg.bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= mask;
        let outcome = Message::decode(bytes)
            .map_err(validate::ValidationError::from)
            .and_then(|m| validate::validate(None, &m));
        prop_assert!(outcome.is_err(), "flip at {} by {:#x} went unnoticed", i, mask);
    }
}

/// An RFC 3339 time `hours` after 2030-01-01T00:00:00Z.
fn time_at(hours: i64) -> potluck::content::EventTime {
    let t = jiff::Timestamp::from_second(1_893_456_000 + hours * 3600).unwrap();
    potluck::content::EventTime::parse("start", &t.to_string()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A page of upcoming or past events (read through the by-start and
    /// long-event indexes) is exactly the start, or the end, of the full
    /// list (read through the by-finish index), whatever mix of short,
    /// long, ongoing, past and future events the store holds.
    #[test]
    fn event_pages_agree_with_the_full_lists(
        events in proptest::collection::vec((-200i64..200, proptest::option::of(0i64..100)), 0..14),
        now_hours in -150i64..150,
        limit in 1usize..6,
    ) {
        let (_dir, store) = open_store();
        let key = SigningKey::from_bytes(&[5; 32]);
        for (i, (start, hours)) in events.iter().enumerate() {
            let event = potluck::content::Event {
                end: hours.map(|h| time_at(start + h)),
                ..potluck::content::Event::new(format!("e{i}"), time_at(*start))
            };
            store.publish(&key, &event.to_content_bytes(), i as i64).unwrap();
        }
        let now_ms = (1_893_456_000 + now_hours * 3600) * 1000;
        let ids = |list: Vec<potluck::store::index::EventState>| -> Vec<MessageId> {
            list.into_iter().map(|e| e.id).collect()
        };
        let upcoming = ids(store.upcoming_events(now_ms, None).unwrap());
        let page = ids(store.upcoming_events(now_ms, Some(limit)).unwrap());
        prop_assert_eq!(&page[..], &upcoming[..limit.min(upcoming.len())]);
        let past = ids(store.past_events(now_ms, None).unwrap());
        let page = ids(store.past_events(now_ms, Some(limit)).unwrap());
        prop_assert_eq!(&page[..], &past[past.len().saturating_sub(limit)..]);
        prop_assert_eq!(upcoming.len() + past.len(), events.len());
    }
}
