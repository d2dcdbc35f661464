//! The thread under an event (docs/content.md, "Comments"): the comments
//! of one page in thread order, each with its reply link, its marks
//! (edited, removed, hidden) and the forms its viewer may use (reply, and
//! edit and delete for its author, hide for the organizer), the form for
//! a new comment, the way to the next page, and the links shared.

use axum::http::Uri;
use jiff::tz::TimeZone;
use maud::{Markup, html};

use super::form::{FormState, Input, csrf, form_error};
use crate::app::{
    App, AppError, CommentShown, CommentView, SharedLink, THREAD_PAGE, ThreadPage, ThreadView,
    person, when,
};
use crate::content::CommentPolicy;
use crate::feed::message::{FeedId, MessageId};
use crate::web::format::linkify_comment;
use crate::web::paths::{event_key, event_path, parse_event_key};
use crate::web::state::Web;

/// The anchor of a comment on its event's page.
pub(crate) fn comment_anchor(id: &MessageId) -> String {
    format!("c-{}", event_key(id))
}

/// What the viewer of a thread is to it.
pub(crate) struct Reader {
    /// Their feed, if they have an identity.
    pub(crate) me: Option<FeedId>,
    /// They organize the event.
    pub(crate) organizer: bool,
    /// The setting lets them comment.
    pub(crate) may_comment: bool,
}

/// The comment a page of a thread starts after: the `after` of the
/// page's address (a comment's page key), if any.
pub(crate) fn after_param(uri: &Uri) -> Option<MessageId> {
    uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "after")
            .and_then(|(_, v)| parse_event_key(&v))
    })
}

/// The page of `event`'s thread after comment `after` (from the first
/// when that names no comment of the event), and the links shared.
pub(crate) fn load_thread(
    app: &App,
    event: &MessageId,
    after: Option<MessageId>,
) -> Result<(ThreadView, Vec<SharedLink>), AppError> {
    let page = |after| ThreadPage {
        after,
        limit: THREAD_PAGE,
    };
    let thread = match app.thread(event, page(after)) {
        Err(AppError::UnknownComment(_)) => app.thread(event, page(None)),
        other => other,
    }?;
    Ok((thread, app.links_shared(event)?))
}

/// The comments section of an event's page. The list is marked live, so
/// a comment from a peer shows without a reload; the form for a new one
/// is outside it, so that a live change never wipes what is being typed.
pub(crate) fn thread_section(
    web: &Web,
    thread: &ThreadView,
    links: &[SharedLink],
    reader: &Reader,
    form: &FormState,
) -> Markup {
    let path = event_path(&thread.event);
    html! {
        section #comments aria-labelledby="comments-title" {
            h2 #comments-title { "Comments" }
            (thread_list(thread, links, web.viewer().zone, Some((web, reader))))
            @if reader.may_comment {
                form.comment method="post" action=(format!("{path}/comment")) {
                    (csrf(web))
                    (form_error(form))
                    (Input::new("comment-", "text", "Your comment").kind("textarea").required()
                        .hint("Plain text; links to http and https pages become links.").draw(form))
                    button type="submit" { "Comment" }
                }
            }
        }
    }
}

/// The thread as a hub's public pages show it: read only, times in the
/// event's zone.
pub(crate) fn public_thread_section(
    thread: &ThreadView,
    links: &[SharedLink],
    zone: &TimeZone,
) -> Markup {
    html! {
        section #comments aria-labelledby="comments-title" {
            h2 #comments-title { "Comments" }
            (thread_list(thread, links, zone, None))
        }
    }
}

/// The setting, the comments of the page with, for a reader on their own
/// page, the forms they may use, the way to the next page, and the links
/// shared: the live part of the thread.
fn thread_list(
    thread: &ThreadView,
    links: &[SharedLink],
    zone: &TimeZone,
    forms: Option<(&Web, &Reader)>,
) -> Markup {
    let path = event_path(&thread.event);
    html! {
        @match thread.policy {
            CommentPolicy::Everyone => {},
            CommentPolicy::Answered => p.policy { "The organizer shows the comments of people who answered." },
            CommentPolicy::Nobody => p.policy { "The organizer has closed the comments." },
        }
        div #thread data-live {
            @if thread.comments.is_empty() { p.empty { "No comments yet." } }
            ol.thread {
                @for c in &thread.comments {
                    (comment_item(&path, c, zone, forms))
                }
            }
            @if let Some(after) = thread.next_after {
                p.more { a href=(format!("{path}?after={}#comments", event_key(&after))) { "Next comments" } }
            }
            (links_shared(links))
        }
    }
}

/// One comment, with what its reader may do with it (nothing on a hub's
/// public pages).
fn comment_item(
    path: &str,
    c: &CommentView,
    zone: &TimeZone,
    forms: Option<(&Web, &Reader)>,
) -> Markup {
    let at = jiff::Timestamp::from_millisecond(c.timestamp)
        .map(|t| when::format_instant(t, zone))
        .unwrap_or_default();
    // My own comments are never "new" to me (live.js marks the rest).
    let mine = forms.is_some_and(|(_, reader)| reader.me == Some(c.author));
    html! {
        li.comment id=(comment_anchor(&c.id)) data-mine[mine] {
            p.meta {
                strong { (person(c.name.as_deref(), &c.author)) }
                " · " (at)
                @if let Some(parent) = c.reply_to {
                    " · " a href=(format!("#{}", comment_anchor(&parent))) { "in reply" }
                }
                @if c.shown == CommentShown::Edited { " · " span.badge { "edited" } }
            }
            @match (&c.text, c.shown) {
                (Some(text), _) => div.text { (linkify_comment(text)) },
                (None, CommentShown::Hidden) => p.removed { "Hidden by the organizer." },
                (None, _) => p.removed { "Removed by its author." },
            }
            @if let Some((web, reader)) = forms {
                (comment_forms(web, path, c, reader))
            }
        }
    }
}

/// The forms a reader may use on one comment: reply, edit and delete
/// their own, hide as the organizer.
fn comment_forms(web: &Web, path: &str, c: &CommentView, reader: &Reader) -> Markup {
    let mine = reader.me == Some(c.author);
    let id = c.id.to_string();
    html! {
        @if c.text.is_some() && reader.may_comment {
            details {
                summary { "Reply" }
                form method="post" action=(format!("{path}/comment")) {
                    (csrf(web))
                    input type="hidden" name="reply" value=(id);
                    (Input::new(&format!("reply-{}-", event_key(&c.id)), "text", "Your reply").kind("textarea").required().draw(&FormState::default()))
                    button type="submit" { "Reply" }
                }
            }
        }
        @if mine && c.shown != CommentShown::Removed {
            @if let Some(text) = &c.text {
                details {
                    summary { "Edit" }
                    form method="post" action=(format!("{path}/comment/edit")) {
                        (csrf(web))
                        input type="hidden" name="comment" value=(id);
                        (Input::new(&format!("edit-{}-", event_key(&c.id)), "text", "Text").kind("textarea").required().draw(&edit_values(text)))
                        button type="submit" { "Save" }
                    }
                }
            }
            form.inline method="post" action=(format!("{path}/comment/delete")) {
                (csrf(web))
                input type="hidden" name="comment" value=(id);
                button.danger type="submit" { "Delete" }
            }
        }
        @if reader.organizer && c.shown != CommentShown::Removed {
            form.inline method="post" action=(format!("{path}/comment/hide")) {
                (csrf(web))
                input type="hidden" name="comment" value=(id);
                @if c.shown == CommentShown::Hidden {
                    input type="hidden" name="hidden" value="false";
                    button type="submit" { "Show again" }
                } @else {
                    input type="hidden" name="hidden" value="true";
                    button type="submit" { "Hide" }
                }
            }
        }
    }
}

/// The edit form filled with a comment's text.
fn edit_values(text: &str) -> FormState {
    let mut form = FormState::default();
    form.set("text", text);
    form
}

/// The links shared in the thread, latest first.
fn links_shared(links: &[SharedLink]) -> Markup {
    html! {
        @if !links.is_empty() {
            h3 { "Links shared" }
            ul.links {
                @for link in links {
                    li {
                        a href=(link.url) rel="noopener noreferrer nofollow ugc" { (link.url) }
                        " — " (person(link.name.as_deref(), &link.author))
                        " " a href=(format!("#{}", comment_anchor(&link.comment))) { "(comment)" }
                    }
                }
            }
        }
    }
}
