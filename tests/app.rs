//! The application layer: one after-append path for every front end,
//! view types that gather what a person reads about an event, and the
//! stream of changes a page listens to.
//!
//! These use nodes that never open a socket (as a command run while no
//! `serve` runs does), so what is checked is the app's own path.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::node::{event, feed_of, new_key, rsvp, unstarted_node};
use common::{now_ms, open_store};
use potluck::app::{App, AppError, Change, ContactChange, EventList};
use potluck::content::{KnownContent, RsvpStatus};
use potluck::feed::message::MessageId;
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::store::admission::AdmissionStatus;

fn app_for(store: Arc<potluck::store::Store>) -> (App, ed25519_dalek::SigningKey) {
    let key = new_key();
    (
        App::new(unstarted_node(store, key.clone(), DEFAULT_NETWORK_KEY)),
        key,
    )
}

/// The next change that is about events, skipping the others, within a
/// bounded wait.
async fn next_events_change(changes: &mut potluck::app::Changes) -> Option<Arc<[MessageId]>> {
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(5), changes.next()).await {
            Ok(Some(Change::Events(ids))) => return Some(ids),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
    None
}

#[tokio::test]
async fn publishing_through_the_app_decides_admissions_once_and_announces_them() {
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let (organizer, _) = app_for(store.clone());
    let mut changes = organizer
        .subscribe()
        .expect("an app with a node can subscribe");

    let msg = organizer
        .announce(
            &event("Soup night", None, Some(1)),
            potluck::app::Past::Allow,
            now_ms(),
        )
        .unwrap();
    let id = msg.id();
    assert_eq!(
        next_events_change(&mut changes).await.as_deref(),
        Some(&[id][..])
    );

    // A guest's answer arrives by file (the same path as gossip): the
    // organizer's app decides at once, and the decision is announced.
    let guest = new_key();
    let (guest_store_dir, guest_store) = open_store();
    let guest_store = Arc::new(guest_store);
    let event_msg = store.message(&id).unwrap().unwrap();
    guest_store.ingest(vec![event_msg]).unwrap();
    let guest_app = App::new(unstarted_node(
        guest_store.clone(),
        guest.clone(),
        DEFAULT_NETWORK_KEY,
    ));
    guest_app
        .rsvp(&id, RsvpStatus::Going, 0, None, now_ms())
        .unwrap();
    // The guest is not the organizer: nothing was decided on its side.
    let detail = guest_app.event(&id).unwrap();
    assert_eq!(
        detail.summary.mine.as_ref().unwrap().admission,
        Some(AdmissionStatus::Pending)
    );
    let answer: Vec<_> = guest_store
        .feed_messages(&feed_of(&guest), 1)
        .map(Result::unwrap)
        .collect();
    let (report, dropped) = organizer.ingest(answer).unwrap();
    assert_eq!((report.accepted.len(), dropped), (1, 0));
    assert_eq!(report.touched_events, vec![id]);

    let detail = organizer.event(&id).unwrap();
    assert_eq!(detail.rsvps.len(), 1);
    assert_eq!(detail.rsvps[0].admission, Some(AdmissionStatus::Admitted));
    assert_eq!(detail.summary.places_left(), Some(0));
    // One decision: the organizer's feed holds the event and one admission.
    assert_eq!(
        store
            .head(&organizer.feed_id().unwrap())
            .unwrap()
            .unwrap()
            .sequence,
        2
    );
    drop(guest_store_dir);
}

#[tokio::test]
async fn the_waitlist_has_an_order_and_moves_when_someone_drops_out() {
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let (organizer, _) = app_for(store.clone());
    let id = organizer
        .announce(
            &event("Tiny dinner", None, Some(1)),
            potluck::app::Past::Allow,
            now_ms(),
        )
        .unwrap()
        .id();
    let guests: Vec<_> = (0..3).map(|_| new_key()).collect();
    for (i, g) in guests.iter().enumerate() {
        let content = rsvp(id, RsvpStatus::Going, 0, Some(0));
        let msg = potluck::feed::message::Message::sign(
            g,
            1,
            MessageId::default(),
            now_ms() + i as i64,
            &content.to_content_bytes(),
        )
        .unwrap();
        organizer.ingest(vec![msg]).unwrap();
    }
    let detail = organizer.event(&id).unwrap();
    let line: Vec<_> = detail.waitlist().iter().map(|r| r.author).collect();
    assert_eq!(line, vec![feed_of(&guests[1]), feed_of(&guests[2])]);
    assert_eq!(detail.waitlist()[0].waitlist_position, Some(1));
    assert_eq!(detail.summary.admissions.waitlisted, 2);

    // The admitted guest drops out: the first in line moves up.
    let drop_out = rsvp(id, RsvpStatus::NotGoing, 0, Some(0));
    let msg = potluck::feed::message::Message::sign(
        &guests[0],
        2,
        store.head(&feed_of(&guests[0])).unwrap().unwrap().id,
        now_ms() + 10,
        &drop_out.to_content_bytes(),
    )
    .unwrap();
    organizer.ingest(vec![msg]).unwrap();
    let detail = organizer.event(&id).unwrap();
    let status = |k: &ed25519_dalek::SigningKey| {
        detail
            .rsvps
            .iter()
            .find(|r| r.author == feed_of(k))
            .and_then(|r| r.admission)
    };
    assert_eq!(status(&guests[1]), Some(AdmissionStatus::Admitted));
    assert_eq!(status(&guests[2]), Some(AdmissionStatus::Waitlisted));
    assert_eq!(detail.waitlist()[0].waitlist_position, Some(1));
}

#[tokio::test]
async fn lists_and_agenda_carry_the_viewers_answer() {
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let (me, _) = app_for(store.clone());
    let a = me
        .announce(&event("A", None, None), potluck::app::Past::Allow, now_ms())
        .unwrap()
        .id();
    let b = me
        .announce(
            &event("B", None, Some(10)),
            potluck::app::Past::Allow,
            now_ms(),
        )
        .unwrap()
        .id();
    me.rsvp(&a, RsvpStatus::Maybe, 0, None, now_ms()).unwrap();
    me.rsvp(&b, RsvpStatus::Going, 2, Some("soup".into()), now_ms())
        .unwrap();
    let (list, more) = me.events(EventList::Upcoming, now_ms(), 100).unwrap();
    assert!(!more);
    assert_eq!(list.len(), 2);
    let b_summary = list.iter().find(|s| s.state.id == b).unwrap();
    let mine = b_summary.mine.as_ref().unwrap();
    assert_eq!(mine.rsvp.guests, 2);
    // The organizer answering its own event with a capacity decides at once.
    assert_eq!(mine.admission, Some(AdmissionStatus::Admitted));
    assert_eq!(b_summary.places_left(), Some(7));
    let agenda = me.agenda(now_ms()).unwrap();
    assert_eq!(agenda.len(), 2);

    // A page of one says there is more.
    let (list, more) = me.events(EventList::Upcoming, now_ms(), 1).unwrap();
    assert_eq!(list.len(), 1);
    assert!(more);
}

/// The agenda, read from our own answers: our going and maybe answers to
/// events not over yet (cancelled ones too), by start and then id, and
/// the same list the whole upcoming list filtered by our answers gives.
#[tokio::test]
async fn the_agenda_is_our_upcoming_going_and_maybe_answers_by_start() {
    use potluck::content::{Event, EventTime};
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let (me, _) = app_for(store.clone());
    let (other, _) = app_for(store.clone());
    let at = |title: &str, start: &str| Event {
        location: Some("the hall".into()),
        ..Event::new(title, EventTime::parse("start", start).unwrap())
    };
    let announce = |app: &App, title: &str, start: &str| {
        app.announce(&at(title, start), potluck::app::Past::Allow, now_ms())
            .unwrap()
            .id()
    };
    let answer = |event: &MessageId, status: RsvpStatus| {
        me.rsvp(event, status, 0, None, now_ms()).unwrap();
    };
    let late = announce(&other, "late", "2031-03-09T18:00:00Z");
    answer(&late, RsvpStatus::Going);
    let early = announce(&me, "early", "2031-03-02T18:00:00Z");
    answer(&early, RsvpStatus::Maybe);
    let declined = announce(&other, "declined", "2031-03-05T18:00:00Z");
    answer(&declined, RsvpStatus::NotGoing);
    let then_declined = announce(&other, "then declined", "2031-03-04T18:00:00Z");
    answer(&then_declined, RsvpStatus::Going);
    answer(&then_declined, RsvpStatus::NotGoing);
    let then_maybe = announce(&other, "then maybe", "2031-03-06T18:00:00Z");
    answer(&then_maybe, RsvpStatus::NotGoing);
    answer(&then_maybe, RsvpStatus::Maybe);
    let cancelled = announce(&other, "cancelled", "2031-03-07T18:00:00Z");
    answer(&cancelled, RsvpStatus::Going);
    other.cancel(&cancelled, None, now_ms()).unwrap();
    let over = announce(&other, "over", "2020-01-01T10:00:00Z");
    answer(&over, RsvpStatus::Going);
    let theirs_only = announce(&other, "theirs only", "2031-03-03T18:00:00Z");
    other
        .rsvp(&theirs_only, RsvpStatus::Going, 0, None, now_ms())
        .unwrap();
    let mut ties = [
        announce(&other, "tie", "2031-03-08T18:00:00Z"),
        announce(&other, "tie", "2031-03-08T18:00:00Z"),
    ];
    for tie in &ties {
        answer(tie, RsvpStatus::Going);
    }
    ties.sort();

    let agenda: Vec<MessageId> = me
        .agenda(now_ms())
        .unwrap()
        .into_iter()
        .map(|item| item.state.id)
        .collect();
    let expected = vec![early, then_maybe, cancelled, ties[0], ties[1], late];
    assert_eq!(agenda, expected);
    // What the agenda was before it read our answers: every upcoming
    // event, kept where our answer is going or maybe.
    let me_id = me.feed_id().unwrap();
    let by_scan: Vec<MessageId> = store
        .upcoming_events(now_ms(), None)
        .unwrap()
        .into_iter()
        .filter(|state| {
            store
                .rsvp(&state.id, &me_id)
                .unwrap()
                .is_some_and(|r| r.status != RsvpStatus::NotGoing)
        })
        .map(|state| state.id)
        .collect();
    assert_eq!(agenda, by_scan);
    assert_eq!(store.answered_by(&me_id).unwrap().len(), 9);
}

#[tokio::test]
async fn the_apps_rules_refuse_clearly_and_publish_nothing() {
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let (me, _) = app_for(store.clone());
    let (other, _) = app_for(store.clone());
    let id = me
        .announce(
            &event("Mine", None, None),
            potluck::app::Past::Allow,
            now_ms(),
        )
        .unwrap()
        .id();
    let head = |app: &App| {
        store
            .head(&app.feed_id().unwrap())
            .unwrap()
            .map_or(0, |h| h.sequence)
    };
    let err = other.cancel(&id, None, now_ms()).unwrap_err();
    assert!(matches!(err, AppError::NotOrganizer { .. }), "{err}");
    assert_eq!(head(&other), 0);
    let err = me.contact(me.feed_id().unwrap(), ContactChange::Block, now_ms());
    assert!(matches!(err, Err(AppError::OwnFeed)));
    me.cancel(&id, Some("rain".into()), now_ms()).unwrap();
    let err = other
        .rsvp(&id, RsvpStatus::Going, 0, None, now_ms())
        .unwrap_err();
    assert!(matches!(err, AppError::Cancelled { .. }), "{err}");
    assert_eq!(head(&other), 0);
    let read_only = App::read_only(store.clone());
    assert!(matches!(
        read_only.set_name("x".into(), now_ms()),
        Err(AppError::ReadOnly)
    ));
    assert!(read_only.subscribe().is_none());
}

#[tokio::test]
async fn an_own_block_reaches_live_sessions_through_the_one_path() {
    let (_dir, store) = open_store();
    let store = Arc::new(store);
    let key = new_key();
    let node = unstarted_node(store.clone(), key, DEFAULT_NETWORK_KEY);
    let app = App::new(node.clone());
    let mut events = node.subscribe();
    let stranger = feed_of(&new_key());
    app.contact(stranger, ContactChange::Block, now_ms())
        .unwrap();
    let mut saw_block = false;
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(potluck::node::NodeEvent::Blocking { feed, blocked })) => {
                assert_eq!((feed, blocked), (stranger, true));
                saw_block = true;
                break;
            }
            Ok(Ok(_)) => continue,
            _ => break,
        }
    }
    assert!(saw_block, "the block was not announced");
    assert!(
        store
            .blocked_by(&app.feed_id().unwrap())
            .unwrap()
            .contains(&stranger)
    );
}

#[tokio::test]
async fn a_late_page_of_a_list_skips_the_earlier_ones() {
    let (_dir, store) = open_store();
    let (me, _) = app_for(Arc::new(store));
    let now = now_ms();
    let mut upcoming = Vec::new();
    let mut past = Vec::new();
    for i in 0..7i64 {
        let start = |ms: i64| {
            potluck::content::EventTime::parse(
                "start",
                &jiff::Timestamp::from_millisecond(ms).unwrap().to_string(),
            )
            .unwrap()
        };
        let day = 86_400_000;
        let mut e = event(&format!("soon {i}"), None, None);
        e.start = start(now + (i + 1) * day);
        upcoming.push(
            me.announce(&e, potluck::app::Past::Allow, now)
                .unwrap()
                .id(),
        );
        let mut e = event(&format!("gone {i}"), None, None);
        e.start = start(now - (7 - i) * day);
        past.push(
            me.announce(&e, potluck::app::Past::Allow, now)
                .unwrap()
                .id(),
        );
    }
    let ids = |list: &[potluck::app::EventSummary]| -> Vec<MessageId> {
        list.iter().map(|s| s.state.id).collect()
    };
    // Upcoming, soonest first: pages of 3 are 0-2, 3-5, 6.
    let (page, more) = me.events_from(EventList::Upcoming, now, 3, 3).unwrap();
    assert_eq!((ids(&page), more), (upcoming[3..6].to_vec(), true));
    let (page, more) = me.events_from(EventList::Upcoming, now, 6, 3).unwrap();
    assert_eq!((ids(&page), more), (upcoming[6..].to_vec(), false));
    // Past, most recent last: page 1 is the three most recent, page 2 the
    // three before them.
    let (page, more) = me.events_from(EventList::Past, now, 0, 3).unwrap();
    assert_eq!((ids(&page), more), (past[4..].to_vec(), true));
    let (page, more) = me.events_from(EventList::Past, now, 3, 3).unwrap();
    assert_eq!((ids(&page), more), (past[1..4].to_vec(), true));
    let (page, more) = me.events_from(EventList::Past, now, 6, 3).unwrap();
    assert_eq!((ids(&page), more), (past[..1].to_vec(), false));
}
