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
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::{Web, event_key};
use crate::app::{Change, Changes};

/// Most event keys one SSE event names; beyond that it says `missed`
/// (a big catch-up changes many events at once).
const MAX_KEYS: usize = 64;

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
        Change::Progress { .. } => "progress".into(),
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
pub(crate) async fn events(
    State(web): State<Web>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = web.app.subscribe();
    let stopping = web.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (changes, stopping),
        |(mut changes, mut stopping)| async move {
            let change = next(&mut changes, &mut stopping).await?;
            let event = Event::default().event("change").data(change_data(&change));
            Some((Ok(event), (changes, stopping)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
