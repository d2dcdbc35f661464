//! `GET /events`: the changes an open page listens to, as server-sent
//! events fed by [`App::subscribe`](crate::app::App::subscribe).
//!
//! Each change is one SSE event named `change` whose data is a kind and,
//! for `events`, the page keys of the events that changed:
//! `events KEY KEY…`, `peers`, `progress`, `appended` or `missed` (the
//! stream fell behind: refresh everything). The script (`assets/live.js`)
//! refreshes the parts of the page marked live when a kind it cares
//! about arrives. The stream ends when the server stops.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::paths::event_key;
use super::state::Web;
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

/// The next change, or `None` when the node is gone or the server stops.
async fn next(
    changes: &mut Option<Changes>,
    stopping: &mut watch::Receiver<bool>,
) -> Option<Change> {
    if *stopping.borrow() {
        return None;
    }
    match changes {
        Some(changes) => tokio::select! {
            change = changes.next() => change,
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
    let stopping = web.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (changes, stopping, permit),
        |(mut changes, mut stopping, permit)| async move {
            let change = next(&mut changes, &mut stopping).await?;
            let event: Result<Event, Infallible> =
                Ok(Event::default().event("change").data(change_data(&change)));
            Some((event, (changes, stopping, permit)))
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
}
