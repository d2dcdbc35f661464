//! Calendar files: `/calendar.ics`, a subscription of every upcoming
//! event that calendar apps poll, and `/e/{key}/event.ics`, one event to
//! add. Both are what `potluck ics` writes (see [`App::calendar`]).
//!
//! [`App::calendar`]: crate::app::App::calendar

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::pages::{PageError, blocking};
use super::paths::parse_event_key;
use super::state::Web;
use crate::app::now_ms;

fn ics_response(text: String, filename: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        text,
    )
        .into_response()
}

/// `GET /calendar.ics`: every upcoming event, with the current answers.
pub(crate) async fn feed(State(web): State<Web>) -> Result<Response, PageError> {
    let now = now_ms();
    let (text, _) = blocking(&web, move |app| app.calendar(None, now)).await?;
    Ok(ics_response(text, "potluck.ics"))
}

/// `GET /e/{key}/event.ics`: one event.
pub(crate) async fn one_event(
    State(web): State<Web>,
    Path(key): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_event_key(&key)
        .ok_or_else(|| PageError::NotFound("There is no such event here.".into()))?;
    let now = now_ms();
    let (text, _) = blocking(&web, move |app| app.calendar(Some(&id), now)).await?;
    Ok(ics_response(text, "event.ics"))
}
