//! Reminders, planned: which notifications are due now, and when to look
//! again. Pure: no clock, no bus, no disk. The running node's reminder
//! task (`app/notify.rs`) reads a [`Snapshot`] from the store, hands it
//! here with "now", the computer's time zone and the [`Memory`] of what
//! was sent, shows what comes back as due, and sleeps until the returned
//! wake-up time or the next change.
//!
//! What is reminded (docs/reminders.md):
//!
//! - **an event I am going to** (a `going` answer with a place, or to an
//!   event without a capacity): an hour before its start
//!   ([`HOUR_BEFORE`]), and at 08:00 local time on its day
//!   ([`MORNING_HOUR`]), unless 08:00 is already within that hour or
//!   after the start. A cancelled event is not reminded.
//! - **a waitlisted answer of mine that is admitted**: once, when an
//!   event the memory saw me waitlisted on shows me admitted.
//! - **news** ([`News`]): one-off happenings each notified once by its
//!   key: replies by others to my comments ([`News::reply`]).
//!
//! Never twice: each reminder has a key (kind, event, and the start or
//! the answer it is about: a moved event is reminded again) kept in the
//! [`Memory`], which the task saves in the home, so a restart does not
//! notify again. The memory keeps at most [`MAX_REMEMBERED`] keys and
//! forgets a key [`FORGET_AFTER`] after its moment.
//!
//! Not late: a moment is only due within its window: the hour before
//! until the start, the morning one for [`MORNING_GRACE`] (and never
//! within the hour before), news for [`NEWS_GRACE`]. A node started (or
//! a laptop woken) later skips it, so a start-up does not bring a burst
//! of old reminders.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::content::{RsvpStatus, shorten_to};
use crate::feed::message::{FeedId, MessageId};
use crate::store::admission::AdmissionStatus;
use crate::store::index::EventStatus;

use super::comments::ReplyToMe;
use super::views::AgendaItem;
use super::{Change, when};

/// How long before an event's start its last reminder comes.
pub const HOUR_BEFORE: SignedDuration = SignedDuration::from_hours(1);

/// The local hour of the morning reminder on an event's day.
pub const MORNING_HOUR: i8 = 8;

/// How late the morning reminder may still come (the node was off or
/// the computer asleep at 08:00).
pub const MORNING_GRACE: SignedDuration = SignedDuration::from_hours(2);

/// How late news may still be notified after it happened.
pub const NEWS_GRACE: SignedDuration = SignedDuration::from_hours(24);

/// Most keys the memory keeps; the oldest moments go first.
pub const MAX_REMEMBERED: usize = 2048;

/// How long after its moment a sent key is kept.
pub const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(14 * 24);

/// Where my answer to an event stands, for reminders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attendance {
    /// Going, with a place (or no capacity to wait for).
    Going,
    /// Going, on the waitlist.
    Waitlisted,
    /// Going, not decided yet by the organizer's node.
    Pending,
    /// Maybe or not going: not reminded.
    NotGoing,
}

impl Attendance {
    /// From an answer and its admission state.
    pub fn of(status: RsvpStatus, admission: Option<AdmissionStatus>) -> Attendance {
        match (status, admission) {
            (RsvpStatus::Going, None | Some(AdmissionStatus::Admitted)) => Attendance::Going,
            (RsvpStatus::Going, Some(AdmissionStatus::Waitlisted)) => Attendance::Waitlisted,
            (RsvpStatus::Going, Some(AdmissionStatus::Pending)) => Attendance::Pending,
            (RsvpStatus::Maybe | RsvpStatus::NotGoing, _) => Attendance::NotGoing,
        }
    }
}

/// An upcoming event I answered, as reminders need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MyEvent {
    /// The event.
    pub id: MessageId,
    /// Its title.
    pub title: String,
    /// Its place, if it says.
    pub location: Option<String>,
    /// When it starts.
    pub start: Timestamp,
    /// Cancelled events are not reminded.
    pub cancelled: bool,
    /// Where my answer stands.
    pub attendance: Attendance,
    /// The sequence of my answer in my feed: a new answer is a new
    /// request, whose admission is news again.
    pub answer: u64,
}

impl MyEvent {
    /// From an item of my agenda (`App::agenda`).
    pub fn of(item: &AgendaItem) -> MyEvent {
        let event = &item.state.event;
        MyEvent {
            id: item.state.id,
            title: event.title.clone(),
            location: event.location.clone(),
            start: event.start.timestamp(),
            cancelled: item.state.status == EventStatus::Cancelled,
            attendance: Attendance::of(item.mine.rsvp.status, item.mine.admission),
            answer: item.mine.rsvp.sequence,
        }
    }
}

/// Most characters of a reply's text in its notification.
pub const REPLY_EXCERPT_CHARS: usize = 120;

/// A one-off happening to notify once (a reply to my comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct News {
    /// What makes it the same news: notified once per key (e.g. `reply`
    /// and the reply's id).
    pub key: String,
    /// When it happened; older than [`NEWS_GRACE`] is not notified.
    pub at: Timestamp,
    /// The event it concerns, if any.
    pub event: Option<MessageId>,
    /// The notification's title.
    pub summary: String,
    /// Its text.
    pub body: String,
}

impl News {
    /// A reply by `name` to my comment: `Bea replied to your comment`,
    /// with the event's title and the start of the reply's text (on one
    /// line, at most [`REPLY_EXCERPT_CHARS`]). Notified once per reply
    /// (its id), at its claimed time, or `now` when that is later (a
    /// peer's clock ahead is not a reason to wait).
    pub fn reply(reply: &ReplyToMe, now: Timestamp) -> News {
        let at = Timestamp::from_millisecond(reply.timestamp)
            .unwrap_or(Timestamp::MIN)
            .min(now);
        let text = reply.text.split_whitespace().collect::<Vec<_>>().join(" ");
        News {
            key: format!("reply {}", hex::encode(reply.id.0)),
            at,
            event: Some(reply.event),
            summary: format!("{} replied to your comment", reply.name),
            body: format!(
                "{}: {}",
                reply.title,
                shorten_to(&text, REPLY_EXCERPT_CHARS)
            ),
        }
    }
}

/// What the planner looks at: my upcoming events with my answers, and
/// news.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Upcoming events I answered (others are ignored).
    pub events: Vec<MyEvent>,
    /// One-off happenings.
    pub news: Vec<News>,
    /// Other events whose changes may bring news (those I commented on:
    /// a reply comes as a change of its event).
    pub watched: Vec<MessageId>,
}

impl Snapshot {
    /// A snapshot of my agenda (`App::agenda`), with no news.
    pub fn of_agenda(items: &[AgendaItem]) -> Snapshot {
        Snapshot {
            events: items.iter().map(MyEvent::of).collect(),
            news: Vec::new(),
            watched: Vec::new(),
        }
    }
}

/// Which moment a reminder is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// An hour before the start.
    HourBefore,
    /// 08:00 on the day.
    Morning,
    /// A waitlisted answer was admitted.
    Admitted,
    /// A one-off happening ([`News`]).
    News,
}

impl ReminderKind {
    /// The word for it (keys, the page's live stream).
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::HourBefore => "hour",
            ReminderKind::Morning => "morning",
            ReminderKind::Admitted => "admitted",
            ReminderKind::News => "news",
        }
    }
}

/// A notification to show now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reminder {
    /// What it is for.
    pub kind: ReminderKind,
    /// The event it concerns, if any.
    pub event: Option<MessageId>,
    /// Its title (names the event).
    pub summary: String,
    /// Its text (when and where).
    pub body: String,
}

/// What was sent (by key, with the moment it was for, in milliseconds)
/// and which of my answers were last seen waitlisted. Saved in the home
/// between runs (`reminders.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Keys of reminders sent, with their moment (Unix milliseconds).
    #[serde(default)]
    pub sent: BTreeMap<String, i64>,
    /// Events (hex ids) on whose waitlist my answer was last seen.
    #[serde(default)]
    pub waitlisted: BTreeSet<String>,
}

/// What is due now and when to look again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Notifications to show now, in the order of their moments.
    pub due: Vec<Reminder>,
    /// The next moment a reminder becomes due, if any is planned.
    pub next_wake: Option<Timestamp>,
    /// Whether the memory changed (and is worth saving).
    pub changed: bool,
}

impl Snapshot {
    /// The events it holds or watches, for [`concerns`].
    pub fn event_ids(&self) -> HashSet<MessageId> {
        self.events
            .iter()
            .map(|e| e.id)
            .chain(self.watched.iter().copied())
            .collect()
    }
}

/// Whether `change` may change what to remind of, given the events of
/// the last snapshot (`known`) and my feed (`me`): a change to one of
/// those events (moved, cancelled, my admission), an append to my own
/// feed (a new answer), or missed changes (a bulk sync's commit that
/// changed more events than a notice names counts as missed: the task
/// then reads again, a few small reads, at most once per settling
/// pause). Other events' changes (a busy sync of strangers' events) are
/// not worth reading the agenda again.
pub fn concerns(change: &Change, known: &HashSet<MessageId>, me: &FeedId) -> bool {
    match change {
        Change::Events(ids) => ids.iter().any(|id| known.contains(id)),
        Change::Appended { feed, .. } => feed == me,
        Change::Missed => true,
        Change::PeerConnected(_) | Change::PeerLeft(_) | Change::Progress(_) => false,
    }
}

/// One planned moment of an event.
struct Moment {
    key: String,
    kind: ReminderKind,
    at: Timestamp,
    /// Due only before this instant.
    until: Timestamp,
}

/// The reminders due at `now` for `snapshot`, given `memory` (which is
/// updated: what is returned as due is remembered as sent), in `zone`
/// (the computer's: "08:00 on the day" is local).
pub fn plan(snapshot: &Snapshot, memory: &mut Memory, now: Timestamp, zone: &TimeZone) -> Plan {
    let before = memory.clone();
    let mut due: Vec<(Timestamp, Reminder)> = Vec::new();
    let mut next_wake: Option<Timestamp> = None;
    let mut waitlisted = BTreeSet::new();

    for event in &snapshot.events {
        let hex = hex::encode(event.id.0);
        match event.attendance {
            Attendance::Waitlisted => {
                waitlisted.insert(hex.clone());
            }
            // A changed answer waits for the organizer's node again: still
            // off the list of those with a place.
            Attendance::Pending if memory.waitlisted.contains(&hex) => {
                waitlisted.insert(hex.clone());
            }
            Attendance::Going if memory.waitlisted.contains(&hex) => {
                let key = format!("admitted {hex} {}", event.answer);
                if !event.cancelled && !memory.sent.contains_key(&key) && now < event.start {
                    memory.sent.insert(key, now.as_millisecond());
                    due.push((now, admitted(event, zone)));
                }
            }
            _ => {}
        }
        if event.attendance != Attendance::Going || event.cancelled {
            continue;
        }
        for moment in moments(event, &hex, zone) {
            if memory.sent.contains_key(&moment.key) {
                continue;
            }
            if moment.at > now {
                next_wake = Some(next_wake.map_or(moment.at, |w| w.min(moment.at)));
            } else if now < moment.until {
                memory.sent.insert(moment.key, moment.at.as_millisecond());
                due.push((moment.at, at_moment(event, moment.kind, now, zone)));
            }
        }
    }

    for news in &snapshot.news {
        let key = format!("news {}", news.key);
        if memory.sent.contains_key(&key) || news.at > now {
            continue;
        }
        if now.duration_since(news.at) <= NEWS_GRACE {
            memory.sent.insert(key, news.at.as_millisecond());
            due.push((
                news.at,
                Reminder {
                    kind: ReminderKind::News,
                    event: news.event,
                    summary: news.summary.clone(),
                    body: news.body.clone(),
                },
            ));
        }
    }

    memory.waitlisted = waitlisted;
    forget(memory, now);
    due.sort_by_key(|(at, _)| *at);
    Plan {
        due: due.into_iter().map(|(_, r)| r).collect(),
        next_wake,
        changed: *memory != before,
    }
}

/// The hour-before and morning moments of an event I am going to.
fn moments(event: &MyEvent, hex: &str, zone: &TimeZone) -> Vec<Moment> {
    let start_ms = event.start.as_millisecond();
    let hour_at = event
        .start
        .checked_sub(HOUR_BEFORE)
        .unwrap_or(Timestamp::MIN);
    let mut out = vec![Moment {
        key: format!("hour {hex} {start_ms}"),
        kind: ReminderKind::HourBefore,
        at: hour_at,
        until: event.start,
    }];
    if let Some(morning) = morning_of(event.start, zone)
        && morning < hour_at
    {
        out.push(Moment {
            key: format!("morning {hex} {start_ms}"),
            kind: ReminderKind::Morning,
            at: morning,
            until: morning
                .checked_add(MORNING_GRACE)
                .unwrap_or(Timestamp::MAX)
                .min(hour_at),
        });
    }
    out
}

/// 08:00 in `zone` on the local day of `start` (the instant after a gap
/// when a change of clocks skips 08:00).
pub fn morning_of(start: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
    let day = start.to_zoned_datetime(zone.clone()).date();
    day.at(MORNING_HOUR, 0, 0, 0)
        .to_zoned_datetime(zone.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// Forgets keys whose moment is older than [`FORGET_AFTER`], and the
/// oldest beyond [`MAX_REMEMBERED`].
fn forget(memory: &mut Memory, now: Timestamp) {
    let horizon = now
        .checked_sub(FORGET_AFTER)
        .unwrap_or(Timestamp::MIN)
        .as_millisecond();
    memory.sent.retain(|_, at| *at >= horizon);
    if memory.sent.len() > MAX_REMEMBERED {
        let mut moments: Vec<i64> = memory.sent.values().copied().collect();
        moments.sort_unstable();
        let cut = moments[memory.sent.len() - MAX_REMEMBERED];
        memory.sent.retain(|_, at| *at >= cut);
        // Equal moments at the cut: drop by key order until in bound.
        while memory.sent.len() > MAX_REMEMBERED {
            let Some(first) = memory
                .sent
                .iter()
                .find(|(_, at)| **at == cut)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            memory.sent.remove(&first);
        }
    }
    if memory.waitlisted.len() > MAX_REMEMBERED {
        let extra: Vec<String> = memory
            .waitlisted
            .iter()
            .skip(MAX_REMEMBERED)
            .cloned()
            .collect();
        for key in extra {
            memory.waitlisted.remove(&key);
        }
    }
}

/// When and where, for a notification's text: `Sat 30 Jan 2027, 18:00
/// EST · Town hall`.
fn when_where(event: &MyEvent, zone: &TimeZone) -> String {
    let when = when::format_instant(event.start, zone);
    match &event.location {
        Some(place) if !place.trim().is_empty() => format!("{when} · {place}"),
        _ => when,
    }
}

fn at_moment(event: &MyEvent, kind: ReminderKind, now: Timestamp, zone: &TimeZone) -> Reminder {
    let summary = match kind {
        ReminderKind::Morning => format!("Today: {}", event.title),
        _ => {
            let minutes = event.start.duration_since(now).as_mins().max(0);
            let left = if minutes >= 60 {
                "in 1 hour".to_owned()
            } else {
                format!(
                    "in {}",
                    when::plural(minutes.max(1) as u64, "minute", "minutes")
                )
            };
            format!("{} starts {left}", event.title)
        }
    };
    Reminder {
        kind,
        event: Some(event.id),
        summary,
        body: when_where(event, zone),
    }
}

fn admitted(event: &MyEvent, zone: &TimeZone) -> Reminder {
    Reminder {
        kind: ReminderKind::Admitted,
        event: Some(event.id),
        summary: format!("You have a place: {}", event.title),
        body: format!(
            "Your answer moved off the waitlist. {}",
            when_where(event, zone)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn going(id: u8, title: &str, start: &str) -> MyEvent {
        MyEvent {
            id: MessageId([id; 32]),
            title: title.to_owned(),
            location: Some("Town hall".to_owned()),
            start: at(start),
            cancelled: false,
            attendance: Attendance::Going,
            answer: 3,
        }
    }

    fn snapshot(events: Vec<MyEvent>) -> Snapshot {
        Snapshot {
            events,
            ..Snapshot::default()
        }
    }

    /// Runs the planner at each of `times` in turn, with one memory;
    /// returns the summaries due at each.
    fn run(snap: &Snapshot, memory: &mut Memory, times: &[&str]) -> Vec<Vec<String>> {
        times
            .iter()
            .map(|t| {
                plan(snap, memory, at(t), &zone())
                    .due
                    .into_iter()
                    .map(|r| r.summary)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_event_is_reminded_at_eight_and_an_hour_before_once_each() {
        // 19:00 in Berlin (CET, +01:00) on 30 Jan 2027.
        let snap = snapshot(vec![going(1, "Soup night", "2027-01-30T18:00:00Z")]);
        let mut memory = Memory::default();
        let first = plan(&snap, &mut memory, at("2027-01-29T12:00:00Z"), &zone());
        assert!(first.due.is_empty());
        // 08:00 local is 07:00Z.
        assert_eq!(first.next_wake, Some(at("2027-01-30T07:00:00Z")));
        let due = run(
            &snap,
            &mut memory,
            &[
                "2027-01-30T06:59:59Z",
                "2027-01-30T07:00:00Z",
                "2027-01-30T07:00:01Z",
                "2027-01-30T16:59:00Z",
                "2027-01-30T17:00:00Z",
                "2027-01-30T17:30:00Z",
                "2027-01-30T18:30:00Z",
            ],
        );
        assert_eq!(
            due,
            vec![
                vec![],
                vec!["Today: Soup night".to_owned()],
                vec![],
                vec![],
                vec!["Soup night starts in 1 hour".to_owned()],
                vec![],
                vec![],
            ]
        );
        assert_eq!(
            plan(&snap, &mut memory, at("2027-01-30T17:30:00Z"), &zone()).next_wake,
            None
        );
    }

    #[test]
    fn the_text_names_the_event_its_time_and_place() {
        let snap = snapshot(vec![going(1, "Soup night", "2027-01-30T18:00:00Z")]);
        let mut memory = Memory::default();
        let p = plan(&snap, &mut memory, at("2027-01-30T17:00:00Z"), &zone());
        assert_eq!(p.due.len(), 1);
        let r = &p.due[0];
        assert_eq!(r.kind, ReminderKind::HourBefore);
        assert_eq!(r.event, Some(MessageId([1; 32])));
        assert_eq!(r.body, "Sat 30 Jan 2027, 19:00 CET · Town hall");
    }

    #[test]
    fn a_node_started_late_skips_what_is_over_and_says_how_soon() {
        let snap = snapshot(vec![going(1, "Soup night", "2027-01-30T18:00:00Z")]);
        // Started at 17:40Z: the morning one is long over, the hour
        // before is 40 minutes late but the event has not started.
        let mut memory = Memory::default();
        let due = run(&snap, &mut memory, &["2027-01-30T17:40:00Z"]);
        assert_eq!(
            due,
            vec![vec!["Soup night starts in 20 minutes".to_owned()]]
        );
        // Started after the start: nothing at all.
        let mut memory = Memory::default();
        let p = plan(&snap, &mut memory, at("2027-01-30T18:00:00Z"), &zone());
        assert!(p.due.is_empty() && p.next_wake.is_none());
        // The morning one within its grace (two hours): still shown.
        let mut memory = Memory::default();
        let due = run(&snap, &mut memory, &["2027-01-30T08:59:00Z"]);
        assert_eq!(due, vec![vec!["Today: Soup night".to_owned()]]);
        let mut memory = Memory::default();
        let due = run(&snap, &mut memory, &["2027-01-30T09:00:00Z"]);
        assert_eq!(due, vec![Vec::<String>::new()]);
    }

    #[test]
    fn an_early_event_has_no_morning_reminder() {
        // 08:30 local: 08:00 is within the hour before.
        let snap = snapshot(vec![going(1, "Breakfast", "2027-01-30T07:30:00Z")]);
        let mut memory = Memory::default();
        let p = plan(&snap, &mut memory, at("2027-01-29T12:00:00Z"), &zone());
        assert_eq!(p.next_wake, Some(at("2027-01-30T06:30:00Z")));
        let due = run(
            &snap,
            &mut memory,
            &[
                "2027-01-30T06:00:00Z",
                "2027-01-30T06:30:00Z",
                "2027-01-30T07:00:00Z",
            ],
        );
        assert_eq!(
            due,
            vec![
                vec![],
                vec!["Breakfast starts in 1 hour".to_owned()],
                vec![]
            ]
        );
    }

    #[test]
    fn only_going_with_a_place_and_not_cancelled_is_reminded() {
        let mut waiting = going(2, "Waiting", "2027-01-30T18:00:00Z");
        waiting.attendance = Attendance::Waitlisted;
        let mut maybe = going(3, "Maybe", "2027-01-30T18:00:00Z");
        maybe.attendance = Attendance::NotGoing;
        let mut pending = going(4, "Pending", "2027-01-30T18:00:00Z");
        pending.attendance = Attendance::Pending;
        let mut cancelled = going(5, "Cancelled", "2027-01-30T18:00:00Z");
        cancelled.cancelled = true;
        let snap = snapshot(vec![waiting, maybe, pending, cancelled]);
        let mut memory = Memory::default();
        let p = plan(&snap, &mut memory, at("2027-01-30T17:00:00Z"), &zone());
        assert!(p.due.is_empty() && p.next_wake.is_none(), "{p:?}");
    }

    #[test]
    fn a_waitlisted_answer_admitted_is_news_once() {
        let mut event = going(1, "Soup night", "2027-01-30T18:00:00Z");
        event.attendance = Attendance::Waitlisted;
        let mut memory = Memory::default();
        let now = at("2027-01-20T12:00:00Z");
        let p = plan(&snapshot(vec![event.clone()]), &mut memory, now, &zone());
        assert!(p.due.is_empty());
        assert!(p.changed, "the waitlist is remembered");
        event.attendance = Attendance::Going;
        let snap = snapshot(vec![event.clone()]);
        let p = plan(&snap, &mut memory, now, &zone());
        assert_eq!(p.due.len(), 1);
        assert_eq!(p.due[0].kind, ReminderKind::Admitted);
        assert_eq!(p.due[0].summary, "You have a place: Soup night");
        assert!(p.due[0].body.contains("Town hall"));
        // Not again, neither now nor after a restart with the saved memory.
        let saved: Memory = serde_json::from_str(&serde_json::to_string(&memory).unwrap()).unwrap();
        let mut restarted = saved;
        assert!(plan(&snap, &mut memory, now, &zone()).due.is_empty());
        assert!(plan(&snap, &mut restarted, now, &zone()).due.is_empty());
        // Waitlisted, then a changed answer pending, then a place: news.
        let mut again = Memory::default();
        for attendance in [Attendance::Waitlisted, Attendance::Pending] {
            event.attendance = attendance;
            event.answer = 4;
            let p = plan(&snapshot(vec![event.clone()]), &mut again, now, &zone());
            assert!(p.due.is_empty());
        }
        event.attendance = Attendance::Going;
        let p = plan(&snapshot(vec![event.clone()]), &mut again, now, &zone());
        assert_eq!(p.due.len(), 1, "{p:?}");
        // Admitted without having been seen waitlisted: nothing (the
        // first run knows no history).
        let mut fresh = Memory::default();
        assert!(plan(&snap, &mut fresh, now, &zone()).due.is_empty());
    }

    #[test]
    fn a_restart_with_the_saved_memory_does_not_notify_again() {
        let snap = snapshot(vec![going(1, "Soup night", "2027-01-30T18:00:00Z")]);
        let mut memory = Memory::default();
        assert_eq!(
            run(&snap, &mut memory, &["2027-01-30T17:00:00Z"])[0].len(),
            1
        );
        let text = serde_json::to_string(&memory).unwrap();
        let mut restarted: Memory = serde_json::from_str(&text).unwrap();
        assert!(run(&snap, &mut restarted, &["2027-01-30T17:05:00Z"])[0].is_empty());
        // A moved event is reminded again, for its new start.
        let moved = snapshot(vec![going(1, "Soup night", "2027-01-30T19:00:00Z")]);
        assert_eq!(
            run(&moved, &mut restarted, &["2027-01-30T18:05:00Z"]),
            vec![vec!["Soup night starts in 55 minutes".to_owned()]]
        );
    }

    #[test]
    fn news_is_notified_once_and_not_when_old() {
        let news = |key: &str, when: &str| News {
            key: key.to_owned(),
            at: at(when),
            event: None,
            summary: format!("Reply {key}"),
            body: "text".to_owned(),
        };
        let snap = Snapshot {
            events: vec![],
            news: vec![
                news("a", "2027-01-30T10:00:00Z"),
                news("old", "2027-01-28T10:00:00Z"),
                news("later", "2027-01-30T13:00:00Z"),
            ],
            ..Snapshot::default()
        };
        let mut memory = Memory::default();
        let due = run(
            &snap,
            &mut memory,
            &[
                "2027-01-30T12:00:00Z",
                "2027-01-30T12:30:00Z",
                "2027-01-30T13:00:00Z",
            ],
        );
        assert_eq!(
            due,
            vec![
                vec!["Reply a".to_owned()],
                vec![],
                vec!["Reply later".to_owned()]
            ]
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut memory = Memory::default();
        for i in 0..(MAX_REMEMBERED as i64 + 500) {
            memory.sent.insert(format!("k{i}"), 1_000_000 + i);
        }
        memory.sent.insert("ancient".into(), 0);
        let now = Timestamp::from_millisecond(2_000_000).unwrap();
        plan(&Snapshot::default(), &mut memory, now, &zone());
        assert_eq!(memory.sent.len(), MAX_REMEMBERED);
        assert!(!memory.sent.contains_key("ancient"));
        assert!(!memory.sent.contains_key("k0"));
        assert!(
            memory
                .sent
                .contains_key(&format!("k{}", MAX_REMEMBERED + 499))
        );
        // Old moments are forgotten after two weeks.
        let later = now
            .checked_add(FORGET_AFTER)
            .unwrap()
            .checked_add(SignedDuration::from_secs(10))
            .unwrap();
        plan(&Snapshot::default(), &mut memory, later, &zone());
        assert!(memory.sent.is_empty());
    }

    #[test]
    fn only_changes_to_my_events_or_my_feed_are_worth_a_look() {
        let me = FeedId([9; 32]);
        let known: HashSet<MessageId> = [MessageId([1; 32])].into();
        let events = |ids: Vec<MessageId>| Change::Events(ids.into());
        assert!(concerns(&events(vec![MessageId([1; 32])]), &known, &me));
        assert!(concerns(
            &events(vec![MessageId([2; 32]), MessageId([1; 32])]),
            &known,
            &me
        ));
        assert!(!concerns(&events(vec![MessageId([2; 32])]), &known, &me));
        let appended = |feed| Change::Appended { feed, sequence: 4 };
        assert!(concerns(&appended(me), &known, &me));
        assert!(!concerns(&appended(FeedId([8; 32])), &known, &me));
        assert!(concerns(&Change::Missed, &known, &me));
        assert!(!concerns(&Change::PeerLeft(FeedId([8; 32])), &known, &me));
    }

    #[test]
    fn the_morning_is_local_and_survives_a_change_of_clocks() {
        // New York, the day clocks spring forward (02:00 skipped): 08:00
        // is still 08:00 EDT (12:00Z).
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(
            morning_of(at("2027-03-14T22:00:00Z"), &ny),
            Some(at("2027-03-14T12:00:00Z"))
        );
        // 23:30 Berlin on 30 Jan is 22:30Z: the morning of 30 Jan local.
        assert_eq!(
            morning_of(at("2027-01-30T22:30:00Z"), &zone()),
            Some(at("2027-01-30T07:00:00Z"))
        );
    }

    fn reply(id: u8, text: &str, written: &str) -> ReplyToMe {
        ReplyToMe {
            id: MessageId([id; 32]),
            event: MessageId([1; 32]),
            title: "Soup night".to_owned(),
            author: FeedId([7; 32]),
            name: "Bea".to_owned(),
            text: text.to_owned(),
            timestamp: at(written).as_millisecond(),
        }
    }

    #[test]
    fn a_reply_to_my_comment_is_news_once_with_its_start_and_not_when_old() {
        let now = at("2027-01-30T12:00:00Z");
        let long = format!("Yes!\n\nI bring {}", "bread ".repeat(40));
        let replies = [
            reply(2, &long, "2027-01-30T11:59:00Z"),
            reply(3, "too late", "2027-01-29T11:00:00Z"),
            // A clock ahead: notified now, not later.
            reply(4, "from the future", "2027-01-30T12:30:00Z"),
        ];
        let snap = Snapshot {
            news: replies.iter().map(|r| News::reply(r, now)).collect(),
            watched: vec![MessageId([1; 32])],
            ..Snapshot::default()
        };
        assert!(snap.event_ids().contains(&MessageId([1; 32])));
        let mut memory = Memory::default();
        let p = plan(&snap, &mut memory, now, &zone());
        assert_eq!(p.due.len(), 2, "{p:?}");
        let first = &p.due[0];
        assert_eq!(first.kind, ReminderKind::News);
        assert_eq!(first.event, Some(MessageId([1; 32])));
        assert_eq!(first.summary, "Bea replied to your comment");
        assert!(
            first
                .body
                .starts_with("Soup night: Yes! I bring bread bread"),
            "{first:?}"
        );
        assert!(first.body.ends_with('…'), "{first:?}");
        assert!(
            first.body.chars().count() <= "Soup night: ".len() + REPLY_EXCERPT_CHARS + 1,
            "{first:?}"
        );
        assert_eq!(p.due[1].body, "Soup night: from the future");
        assert!(
            memory
                .sent
                .contains_key(&format!("news reply {}", hex::encode([2u8; 32])))
        );
        // Once: not again, nor after a restart with the saved memory.
        assert!(plan(&snap, &mut memory, now, &zone()).due.is_empty());
        let mut restarted: Memory =
            serde_json::from_str(&serde_json::to_string(&memory).unwrap()).unwrap();
        assert!(plan(&snap, &mut restarted, now, &zone()).due.is_empty());
    }

    #[test]
    fn a_change_to_an_event_i_commented_on_is_worth_a_look() {
        let me = FeedId([9; 32]);
        let snap = Snapshot {
            watched: vec![MessageId([5; 32])],
            ..Snapshot::default()
        };
        let known = snap.event_ids();
        assert!(concerns(
            &Change::Events(vec![MessageId([5; 32])].into()),
            &known,
            &me
        ));
        assert!(!concerns(
            &Change::Events(vec![MessageId([6; 32])].into()),
            &known,
            &me
        ));
    }
}
