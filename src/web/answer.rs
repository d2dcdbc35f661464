//! Answers from a browser on a hub's public pages (issue 21): the one
//! place those pages take a POST.
//!
//! - `POST /e/{key}/answer`, body `{"messages": ["<base64>", …]}` (at most
//!   [`MAX_ANSWER_BODY`] bytes, `Content-Type: application/json`): the
//!   guest's messages, signed in the browser by `feed.js`, handed to
//!   [`App::web_answer`], which takes them whole or not at all. Answers
//!   the guest's status, or `{"error": {"code", "message"}}` with a
//!   status that fits the code.
//! - `GET /e/{key}/answer?feed=@…`: the guest's status alone, which the
//!   page's script (`assets/answer.js`) polls to show the organizer's
//!   decision as it changes.
//!
//! Neither needs a cookie or token: the messages are signed by the
//! guest's key, so a post from another site can only send what that key
//! signed, and the status is as public as the event's page.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ClientIp;
use super::paths::parse_event_key;
use super::state::on_blocking_pool;
use crate::app::{
    AnswerError, App, AppError, GuestLimitError, GuestStatus, MAX_ANSWER_MESSAGES, PublicNetwork,
    WebAnswers, now_ms,
};
use crate::feed::message::FeedId;

/// Largest answer body: [`MAX_ANSWER_MESSAGES`] messages of a name or an
/// answer (a few hundred bytes each, in base64) fit many times over; a
/// message near the format's 16 KiB content limit does not, and a browser
/// has no business sending one.
pub const MAX_ANSWER_BODY: usize = 64 * 1024;

/// What the answer routes share.
struct Answers {
    app: App,
    network: PublicNetwork,
    web: WebAnswers,
}

/// The answer routes, for the public pages' router (their guards are
/// that router's).
pub(super) fn answer_routes(app: App, network: PublicNetwork, web: WebAnswers) -> Router {
    Router::new()
        .route("/e/{key}/answer", get(status).post(answer))
        .with_state(Arc::new(Answers { app, network, web }))
}

/// A JSON answer.
fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A JSON refusal: the status and `{"error": {"code", "message"}}`.
fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

/// The HTTP status of a refusal.
fn status_of(e: &AnswerError) -> StatusCode {
    match e {
        AnswerError::Closed(_)
        | AnswerError::Blocked
        | AnswerError::Banned
        | AnswerError::Limit(GuestLimitError::FeedFull(_)) => StatusCode::FORBIDDEN,
        AnswerError::UnknownEvent => StatusCode::NOT_FOUND,
        AnswerError::Replayed { .. }
        | AnswerError::Fork { .. }
        | AnswerError::WrongSequence { .. } => StatusCode::CONFLICT,
        AnswerError::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
        AnswerError::App(_) => StatusCode::INTERNAL_SERVER_ERROR,
        AnswerError::Malformed(_)
        | AnswerError::Count(_)
        | AnswerError::SeveralAuthors
        | AnswerError::NotAnAnswer(_)
        | AnswerError::OtherEvent
        | AnswerError::BadSignature { .. }
        | AnswerError::Invalid(_) => StatusCode::BAD_REQUEST,
    }
}

fn refused(e: AnswerError) -> Response {
    if let AnswerError::App(inner) = &e {
        tracing::warn!(error = %inner, "an answer from a browser could not be stored");
    }
    refusal(status_of(&e), e.code(), e.to_string())
}

fn unknown_event() -> Response {
    refused(AnswerError::UnknownEvent)
}

/// The guest's status as the page's script reads it.
fn status_json(s: &GuestStatus) -> Value {
    let answer = s.answer.as_ref().map(|a| {
        json!({
            "status": a.rsvp.status.as_str(),
            "guests": a.rsvp.guests,
            "admission": a.admission.map(|x| x.as_str()),
            "position": a.waitlist_position,
            "stale": a.stale,
        })
    });
    json!({ "feed": s.feed.to_string(), "held": s.held, "name": s.name, "answer": answer })
}

/// The body of `POST /e/{key}/answer`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    messages: Vec<String>,
}

/// `POST /e/{key}/answer`: the guest's signed messages.
async fn answer(
    State(answers): State<Arc<Answers>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(event) = parse_event_key(&key) else {
        return unknown_event();
    };
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_type {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "malformed",
            "send the messages as application/json".into(),
        );
    }
    let Ok(bytes) = to_bytes(body, MAX_ANSWER_BODY).await else {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a submission is at most {MAX_ANSWER_BODY} bytes"),
        );
    };
    let submission: Submission = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            return refused(AnswerError::Malformed(format!(
                "the body must be {{\"messages\": [\"<base64>\", …]}} ({e})"
            )));
        }
    };
    if submission.messages.len() > MAX_ANSWER_MESSAGES {
        return refused(AnswerError::Count(submission.messages.len()));
    }
    let raw = match submission
        .messages
        .iter()
        .map(|m| STANDARD.decode(m))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(raw) => raw,
        Err(e) => {
            return refused(AnswerError::Malformed(format!(
                "a message is not standard base64 ({e})"
            )));
        }
    };
    let network = answers.network;
    let shared = answers.clone();
    let outcome = on_blocking_pool(&answers.app, move |app| {
        app.web_answer(&shared.web, network, &event, raw, client, now_ms())
    })
    .await;
    match outcome {
        Ok(Ok(status)) => json_response(StatusCode::OK, &status_json(&status)),
        Ok(Err(e)) => refused(e),
        Err(e) => refused(AnswerError::App(AppError::Refused(format!("{e:?}")))),
    }
}

/// `GET /e/{key}/answer?feed=@…`: the guest's status.
async fn status(
    State(answers): State<Arc<Answers>>,
    Path(key): Path<String>,
    uri: Uri,
) -> Response {
    let Some(event) = parse_event_key(&key) else {
        return unknown_event();
    };
    let Some(Ok(feed)) = query_feed(&uri).map(|f| FeedId::parse(&f)) else {
        return refused(AnswerError::Malformed(
            "`feed` must be a feed id, @….ed25519".into(),
        ));
    };
    let network = answers.network;
    let outcome = on_blocking_pool(&answers.app, move |app| {
        app.guest_status(network, &event, &feed)
    })
    .await;
    match outcome {
        Ok(Ok(status)) => json_response(StatusCode::OK, &status_json(&status)),
        Ok(Err(AppError::UnknownEvent(_))) => unknown_event(),
        Ok(Err(e)) => refused(AnswerError::App(e)),
        Err(e) => refused(AnswerError::App(AppError::Refused(format!("{e:?}")))),
    }
}

/// The `feed` parameter of a query (`?feed=%40…`), percent-decoded: a
/// feed id holds `@`, `+`, `/` and `=`, which a browser's
/// `encodeURIComponent` escapes (a `+` left bare would read as a space).
fn query_feed(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == "feed")
        .map(|(_, value)| value.into_owned())
}

/// The page's script for answering (`/static/answer.js`).
pub(super) async fn answer_script() -> impl IntoResponse {
    super::javascript(include_str!("assets/answer.js"))
}
