//! `GET /events`: the changes an open page listens to, as server-sent
//! events fed by [`App::subscribe`](crate::app::App::subscribe).
//!
//! Each change is one SSE event named `change` whose data is a kind and,
//! for `events`, the page keys of the events that changed:
//! `events KEY KEY…`, `peers`, `progress`, `appended` or `missed` (the
//! stream fell behind: refresh everything). The script (`assets/live.js`)
//! refreshes the parts of the page marked live when a kind it cares
//! about arrives. The stream ends when the server stops.
//!
//! The running node's reminders ([`App::subscribe_reminders`]) come on
//! the same stream as SSE events named `reminder`, whose data is a JSON
//! object: `kind` (`hour`, `morning`, `admitted`, `news`), `event` (the
//! page key, or null), `title` and `body` (text, as the desktop shows
//! them). The script shows them as browser notifications where the
//! person asked for that (docs/reminders.md).
//!
//! [`App::subscribe_reminders`]: crate::app::App::subscribe_reminders

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{broadcast, watch};

use super::paths::event_key;
use super::state::Web;
use crate::app::reminders::Reminder;
use crate::app::{Change, Changes};

/// Most event keys one SSE event names; beyond that it says `missed`
/// (a big catch-up changes many events at once).
const MAX_KEYS: usize = 64;

/// Most live streams open at once (one per open tab): each holds a
/// subscription, so any program on this computer could otherwise pile
/// them up. Beyond it, 503: the page still works, without live updates.
pub(crate) const MAX_STREAMS: usize = 32;

/// The SSE data for a change.
pub(crate) fn change_data(change: &Change) -> String {
    match change {
        Change::Events(ids) if ids.len() <= MAX_KEYS => {
            let mut data = String::from("events");
            for id in ids.iter() {
                data.push(' ');
                data.push_str(&event_key(id));
            }
            data
        }
        Change::Events(_) | Change::Missed => "missed".into(),
        Change::PeerConnected(_) | Change::PeerLeft(_) => "peers".into(),
        Change::Progress(_) => "progress".into(),
        Change::Appended { .. } => "appended".into(),
    }
}

/// The SSE data of a reminder: a JSON object (see the module's doc).
pub(crate) fn reminder_data(reminder: &Reminder) -> String {
    serde_json::json!({
        "kind": reminder.kind.as_str(),
        "event": reminder.event.as_ref().map(event_key),
        "title": reminder.summary,
        "body": reminder.body,
    })
    .to_string()
}

/// What the stream tells next.
enum Next {
    Change(Change),
    Reminder(Reminder),
}

/// The next reminder; never, when no reminder task runs (or it ended).
async fn next_reminder(reminders: &mut Option<broadcast::Receiver<Reminder>>) -> Reminder {
    loop {
        let Some(receiver) = reminders.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(reminder) => return reminder,
            // A page that fell behind skips what it missed.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => *reminders = None,
        }
    }
}

/// The next change or reminder, or `None` when the node is gone or the
/// server stops.
async fn next(
    changes: &mut Option<Changes>,
    reminders: &mut Option<broadcast::Receiver<Reminder>>,
    stopping: &mut watch::Receiver<bool>,
) -> Option<Next> {
    if *stopping.borrow() {
        return None;
    }
    match changes {
        Some(changes) => tokio::select! {
            change = changes.next() => change.map(Next::Change),
            reminder = next_reminder(reminders) => Some(Next::Reminder(reminder)),
            _ = stopping.wait_for(|stop| *stop) => None,
        },
        // A read-only app never changes: keep the stream open, quietly.
        None => {
            let _ = stopping.wait_for(|stop| *stop).await;
            None
        }
    }
}

/// `GET /events`.
pub(crate) async fn events(State(web): State<Web>) -> Response {
    // Held by the stream: released when the tab closes or the server stops.
    let Ok(permit) = web.live_streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pages are open with live updates; close some tabs",
        )
            .into_response();
    };
    let changes = web.app.subscribe();
    let reminders = web.app.subscribe_reminders();
    let stopping = web.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (changes, reminders, stopping, permit),
        |(mut changes, mut reminders, mut stopping, permit)| async move {
            let event = match next(&mut changes, &mut reminders, &mut stopping).await? {
                Next::Change(change) => Event::default().event("change").data(change_data(&change)),
                Next::Reminder(reminder) => Event::default()
                    .event("reminder")
                    .data(reminder_data(&reminder)),
            };
            let event: Result<Event, Infallible> = Ok(event);
            Some((event, (changes, reminders, stopping, permit)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::CatchUp;
    use crate::feed::message::{FeedId, MessageId};

    #[test]
    fn each_change_has_its_word_and_many_events_are_missed() {
        let one = MessageId([1; 32]);
        let data = change_data(&Change::Events(vec![one].into()));
        assert_eq!(data, format!("events {}", event_key(&one)));
        let many: Vec<MessageId> = (0..=MAX_KEYS as u8).map(|i| MessageId([i; 32])).collect();
        assert_eq!(change_data(&Change::Events(many.into())), "missed");
        assert_eq!(change_data(&Change::Missed), "missed");
        let peer = FeedId([2; 32]);
        assert_eq!(change_data(&Change::PeerConnected(peer)), "peers");
        assert_eq!(change_data(&Change::PeerLeft(peer)), "peers");
        let progress = Change::Progress(CatchUp {
            peer,
            received: 3,
            remaining: 7,
            caught_up: false,
        });
        assert_eq!(change_data(&progress), "progress");
        let appended = Change::Appended {
            feed: peer,
            sequence: 1,
        };
        assert_eq!(change_data(&appended), "appended");
    }

    #[test]
    fn a_reminder_is_json_with_its_kind_event_title_and_body() {
        use crate::app::reminders::ReminderKind;
        let id = MessageId([3; 32]);
        let data = reminder_data(&Reminder {
            kind: ReminderKind::HourBefore,
            event: Some(id),
            summary: "Soup \"night\" <b> starts in 1 hour".into(),
            body: "Sat 30 Jan 2027, 19:00 CET".into(),
        });
        // One line: SSE data may not hold a newline unsplit.
        assert!(!data.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(value["kind"], "hour");
        assert_eq!(value["event"], event_key(&id));
        assert_eq!(value["title"], "Soup \"night\" <b> starts in 1 hour");
        assert_eq!(value["body"], "Sat 30 Jan 2027, 19:00 CET");
        let none = reminder_data(&Reminder {
            kind: ReminderKind::News,
            event: None,
            summary: "x".into(),
            body: "line\nbreak".into(),
        });
        assert!(!none.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&none).unwrap();
        assert!(value["event"].is_null());
    }
}
