//! What the thread's forms do (POST handlers, checked by the security
//! layer as every form is): comment or reply, edit or delete one's own
//! comment, and the organizer's hide. Success redirects (303) to the
//! comment on the event's page; a comment refused for its text comes back
//! in the form with the reason (422); anything else is the page's error.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::pages::{
    EventForms, FORM_ERROR_STATUS, FormState, PageError, comment_anchor, event_page, load_event,
};
use super::paths::event_path;
use super::state::Web;
use crate::app::{AppError, now_ms};
use crate::feed::message::MessageId;

/// The comment and reply forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CommentInput {
    text: String,
    reply: String,
}

/// The forms about one comment: edit (with `text`), delete, hide (with
/// `hidden`, `true` or `false`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CommentChangeInput {
    comment: String,
    text: String,
    hidden: String,
}

/// The event of page key `key` and the comment of id `text` on it.
async fn event_and_comment(
    web: &Web,
    key: &str,
    comment: String,
) -> Result<(MessageId, Option<MessageId>), PageError> {
    let loaded = load_event(web, key, None).await?;
    let event = loaded.detail.summary.state.id;
    if comment.is_empty() {
        return Ok((event, None));
    }
    let comment = web
        .call(move |app| app.resolve_comment(&event, &comment))
        .await?
        .map_err(|_| PageError::NotFound("There is no such comment on this event.".into()))?;
    Ok((event, Some(comment)))
}

/// The event of page key `key` and the comment a form names, which it
/// must.
async fn named_comment(
    web: &Web,
    key: &str,
    comment: String,
) -> Result<(MessageId, MessageId), PageError> {
    match event_and_comment(web, key, comment).await? {
        (event, Some(comment)) => Ok((event, comment)),
        (_, None) => Err(PageError::NotFound("Which comment?".into())),
    }
}

/// After a change: the comment on its event's page.
fn to_comment(event: &MessageId, comment: &MessageId) -> Response {
    Redirect::to(&format!(
        "{}#{}",
        event_path(event),
        comment_anchor(comment)
    ))
    .into_response()
}

/// An error about the text back in the comment form; any other, the page's.
async fn text_refused(
    web: &Web,
    key: &str,
    text: String,
    e: AppError,
) -> Result<Response, PageError> {
    let mut form = FormState::default();
    form.set("text", text);
    match e {
        AppError::Content(c) => form.fail("text", c.to_string()),
        e @ (AppError::CommentsClosed { .. } | AppError::NothingToChange(_)) => {
            form.fail("", e.to_string())
        }
        e => return Err(e.into()),
    }
    let loaded = load_event(web, key, None).await?;
    let forms = EventForms {
        comment: form,
        ..EventForms::default()
    };
    Ok((FORM_ERROR_STATUS, event_page(web, &loaded, forms)).into_response())
}

/// `POST /e/{key}/comment`: comment, or reply (`reply`).
pub(crate) async fn comment(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<CommentInput>,
) -> Result<Response, PageError> {
    let (event, reply) = event_and_comment(&web, &key, input.reply).await?;
    let text = input.text.clone();
    match web
        .call(move |app| app.comment(&event, input.text, reply, now_ms()))
        .await?
    {
        Ok(msg) => Ok(to_comment(&event, &msg.id())),
        Err(e) => text_refused(&web, &key, text, e).await,
    }
}

/// `POST /e/{key}/comment/edit`: a new text for one's own comment.
pub(crate) async fn edit(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<CommentChangeInput>,
) -> Result<Response, PageError> {
    let (event, comment) = named_comment(&web, &key, input.comment).await?;
    let text = input.text.clone();
    match web
        .call(move |app| app.edit_comment(&comment, input.text, now_ms()))
        .await?
    {
        Ok(_) => Ok(to_comment(&event, &comment)),
        Err(e) => text_refused(&web, &key, text, e).await,
    }
}

/// `POST /e/{key}/comment/delete`: remove one's own comment.
pub(crate) async fn delete(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<CommentChangeInput>,
) -> Result<Response, PageError> {
    let (event, comment) = named_comment(&web, &key, input.comment).await?;
    web.call(move |app| app.delete_comment(&comment, now_ms()))
        .await??;
    Ok(to_comment(&event, &comment))
}

/// `POST /e/{key}/comment/hide`: the organizer hides a comment
/// (`hidden=true`) or shows it again (`hidden=false`).
pub(crate) async fn hide(
    State(web): State<Web>,
    Path(key): Path<String>,
    Form(input): Form<CommentChangeInput>,
) -> Result<Response, PageError> {
    let (event, comment) = named_comment(&web, &key, input.comment).await?;
    let hidden = input.hidden != "false";
    web.call(move |app| app.hide_comment(&event, &comment, hidden, now_ms()))
        .await??;
    Ok(to_comment(&event, &comment))
}
